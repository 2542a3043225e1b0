"""Access-Reject reasons as a short, fixed set of labels, counted for the metrics.

A reject's ``reason`` is a phrase for the auth log and Reply-Message, and some phrases carry
values (a date, a MAC address, a pool name, a limit). Metrics need a bounded label set, so
each phrase maps to one label; the handler counts by label on every reject.
"""

from __future__ import annotations

# Fixed phrases, as the handler and the authorization rules write them.
_EXACT = {
    "NAS is not active": "nas_inactive",
    "EAP is not supported": "eap_unsupported",
    "no User-Name": "no_username",
    "no password, CHAP or MS-CHAPv2 credentials": "no_credentials",
    "unknown user": "unknown_user",
    "wrong password": "wrong_password",
    "contract is inactive": "contract_inactive",
    "contract is cancelled": "contract_cancelled",
    "contract is suspended": "contract_suspended",
    "contract is bound to a MAC address and the NAS sent no Calling-Station-Id": "mac_binding",
    "session state is not available; simultaneous use cannot be checked": "session_state",
    "CHAP-Challenge shorter than 5 octets": "chap_challenge_short",
    "CHAP challenge reused": "chap_challenge_reused",
}
# Phrases with a value in them: (prefix, suffix, label).
_SHAPED = (
    ("contract starts on ", "", "contract_not_started"),
    ("contract ended on ", "", "contract_ended"),
    ("MAC address ", " is not the one bound to the contract", "mac_binding"),
    ("simultaneous use limit of ", " reached", "simultaneous_use"),
    ("pool ", " is exhausted", "pool_exhausted"),
    ("reply too large (", " octets, at most 4096)", "reply_too_large"),
)
OTHER = "other"

LABELS: tuple[str, ...] = tuple(
    dict.fromkeys([*_EXACT.values(), *(label for _, _, label in _SHAPED), OTHER])
)


def reject_label(reason: str) -> str:
    """The metrics label of a reject ``reason``; ``other`` for a phrase not known here."""
    label = _EXACT.get(reason)
    if label is not None:
        return label
    for prefix, suffix, shaped in _SHAPED:
        if reason.startswith(prefix) and reason.endswith(suffix):
            return shaped
    return OTHER
