"""What a committed change means for one live session, and how to name that session to its NAS.

Pure functions over rendered replies and snapshots. A session got the reply attributes its
contract rendered to when it connected; after a change it would get others. The difference
decides (RFC 5176):

- nothing changed for this NAS → nothing is sent;
- the contract may no longer connect (inactive, cancelled, ended, deleted, no suspended layout)
  → Disconnect-Request;
- only attributes this manufacturer's NAS change live (its CoA policy) differ → CoA-Request
  with their new values, service attributes deactivated first where the policy says so;
- anything else differs (an address, a pool, an attribute a CoA cannot carry) → Disconnect, so
  the subscriber reconnects and gets the new reply in full.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from radius_contracts.domain import CoaPolicy, NasSnapshot, SessionTarget
from radius_contracts.radius import codec
from radius_contracts.radius.dictionary import AttributeSpec, encode_value, split_tag

__all__ = [
    "CoaChange",
    "CoaError",
    "DisconnectChange",
    "Pairs",
    "destination",
    "encode_pairs",
    "identification",
    "plan_change",
    "plan_layout_change",
    "service_name",
]

Pairs = tuple[tuple[str, str], ...]
"""Reply attributes as (dictionary name, value text), in reply order."""


@dataclass(frozen=True, slots=True)
class CoaChange:
    """Send a CoA-Request carrying ``attributes`` (besides the session identification)."""

    attributes: Pairs
    reason: str


@dataclass(frozen=True, slots=True)
class DisconnectChange:
    """Send a Disconnect-Request: the session must end (and may reconnect)."""

    reason: str


Change = CoaChange | DisconnectChange


class CoaError(Exception):
    """The request cannot be built or addressed (recorded as outcome ``error``)."""


def _values(pairs: Pairs) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = defaultdict(list)
    for name, value in pairs:
        by_name[name.casefold()].append(value)
    return by_name


def service_name(value: str) -> str:
    """The service a service-activation value names, without its parameters.

    ``internet(10000000,50000000)`` → ``internet``: JunosE/Junos deactivate a service by name.
    """
    return value.split("(", 1)[0].strip()


def _coa_for(
    old: Pairs, new: Pairs, policy: CoaPolicy, reason: str, *, others_disconnect: bool
) -> Change | None:
    before, after = _values(old), _values(new)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    if not changed:
        return None
    live = {name.casefold() for name in policy.attributes}
    deactivate = {name.casefold(): off for name, off in policy.deactivate.items()}
    blocked = sorted(
        name
        for name in changed
        # Not changeable live, or removed without a way to switch the old value off.
        if _base(name) not in live or (name not in after and _base(name) not in deactivate)
    )
    if blocked and others_disconnect:
        names = ", ".join(_spelling(old, new, name) for name in blocked)
        return DisconnectChange(f"{reason} ({names} cannot change by CoA)")
    sendable = changed - set(blocked)
    if not sendable:
        return None
    pairs: list[tuple[str, str]] = []
    for name in sorted(n for n in sendable if _base(n) in deactivate):
        # The old service goes off before the new one comes on (Juniper Service-Deactivate).
        off = deactivate[_base(name)]
        pairs += [(off, service_name(value)) for value in before.get(name, ())]
    # Every live-changeable attribute the reply now has, not only the changed ones: some NAS
    # (MikroTik) treat a CoA as the session's new set of those attributes.
    pairs += [(name, value) for name, value in new if _base(name) in live]
    return CoaChange(tuple(pairs), reason)


def _base(name: str) -> str:
    # A CoA policy names attributes; a reply row may carry a tag (ERX-Service-Activate:1).
    return name.partition(":")[0].casefold()


def _spelling(old: Pairs, new: Pairs, folded: str) -> str:
    return next((name for name, _ in (*new, *old) if name.casefold() == folded), folded)


def plan_change(
    old: Pairs | None, new: Pairs | str, policy: CoaPolicy, reason: str
) -> Change | None:
    """What to send a session that got ``old`` and would now get ``new`` (a refusal: str).

    ``old`` is None when what the session got is unknown (it connected while the contract
    was refused, e.g. before its start date): then the live attributes are sent as they are.
    """
    if isinstance(new, str):
        return DisconnectChange(new)
    if old is None:
        live = {name.casefold() for name in policy.attributes}
        pairs = tuple((name, value) for name, value in new if name.casefold() in live)
        return CoaChange(pairs, reason) if pairs else None
    return _coa_for(old, new, policy, reason, others_disconnect=True)


def plan_layout_change(old: Pairs, new: Pairs, policy: CoaPolicy, reason: str) -> CoaChange | None:
    """What to send after a layout edit: a CoA for what can change live, never a Disconnect.

    A layout edit touches every session of a manufacturer at once; dropping all of them for an
    attribute that cannot change live would be an outage, so those changes wait for the next
    login.
    """
    change = _coa_for(old, new, policy, reason, others_disconnect=False)
    assert change is None or isinstance(change, CoaChange)
    return change


def identification(target: SessionTarget, policy: CoaPolicy) -> Pairs:
    """The policy's identification attributes with the values recorded for the session."""
    recorded: dict[str, object] = {
        "User-Name": target.username,
        "Acct-Session-Id": target.acct_session_id,
        "Framed-IP-Address": target.framed_ip,
        "Framed-IPv6-Prefix": target.framed_ipv6_prefix,
        "NAS-IP-Address": target.nas_ip_address,
        "NAS-Identifier": target.nas_identifier,
        "Calling-Station-Id": target.calling_station_id,
        "NAS-Port": target.nas_port,
        "NAS-Port-Id": target.nas_port_id,
    }
    pairs = tuple(
        (name, str(value))
        for name in policy.identifiers
        if (value := recorded.get(name)) is not None and value != ""
    )
    if not pairs:
        wanted = ", ".join(policy.identifiers) or "none configured"
        raise CoaError(f"the session has none of the identifiers its NAS takes ({wanted})")
    return pairs


def destination(nas: NasSnapshot, target: SessionTarget) -> tuple[str, int]:
    """Where the NAS takes CoA: its coa_address, its address, or (for a NAS known by a CIDR)
    the NAS-IP-Address its accounting reported when that lies inside the CIDR."""
    if nas.coa_address:
        return nas.coa_address, nas.coa_port
    network = ipaddress.ip_network(nas.address, strict=False)
    if network.num_addresses == 1:
        return str(network.network_address), nas.coa_port
    reported = target.nas_ip_address
    if reported is not None:
        try:
            if ipaddress.ip_address(reported) in network:
                return reported, nas.coa_port
        except ValueError:
            pass
    raise CoaError(
        f"NAS {nas.name} is known by the network {nas.address} and the session reported no "
        "NAS-IP-Address inside it; set the NAS's coa_address"
    )


def encode_pairs(
    lookup: Callable[[str], AttributeSpec | None], pairs: Sequence[tuple[str, str]]
) -> bytes:
    """Encode ``pairs`` as attributes; CoaError names the first that cannot be encoded."""
    encoded: list[bytes] = []
    for name, value in pairs:
        try:
            base, tag = split_tag(name)
        except ValueError as exc:
            raise CoaError(str(exc)) from None
        spec = lookup(base)
        if spec is None:
            raise CoaError(f"attribute {name} is not in the loaded dictionaries")
        if spec.encrypt:
            # A CoA-Request's authenticator is an MD5 over the packet itself (RFC 5176 §2.3), so
            # values hidden with the request authenticator (RFC 2865 §5.2) cannot be computed.
            raise CoaError(f"attribute {name} is encrypted and cannot be sent in a CoA-Request")
        try:
            encoded.append(codec.encode_attribute(spec, encode_value(spec, value), tag))
        except ValueError as exc:
            raise CoaError(f"{name} = {value!r} cannot be encoded: {exc}") from None
    return b"".join(encoded)
