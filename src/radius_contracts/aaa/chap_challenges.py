"""CHAP challenge checks: long enough, and not used before by the same NAS.

RFC 2865 §5.40 wants a CHAP-Challenge of at least 5 octets. A shorter one makes the response
nearly a fixed function of the password (an empty one: MD5 of the CHAP Identifier and the
password), so whoever saw one login can answer for it again. And a challenge is only worth
anything once: a NAS that sends the same challenge twice, or someone replaying a captured
CHAP-Password with its challenge in a new request, is refused.

Reuse means the same NAS and the same challenge octets in a different request. Without a
CHAP-Challenge the Request Authenticator is the challenge (RFC 2865 §2.2) and is held to the
same rule; RFC 2865 §3 wants it unique anyway. A NAS's retransmit repeats the Identifier and
Request Authenticator (RFC 5080 §2.2.2): the listener answers those from its reply cache for
``duplicate_window``, and one that comes later (the first reply was lost, or the request was
dropped for load) is the same request, not a reuse, so it is handled afresh.

Only challenges whose response verified are remembered: a flood of made-up requests adds
nothing, and a wrong password is refused as such anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

MIN_CHALLENGE: Final = 5  # octets, RFC 2865 §5.40
SHORT_CHALLENGE: Final = "CHAP-Challenge shorter than 5 octets"
REUSED_CHALLENGE: Final = "CHAP challenge reused"
MAX_ENTRIES: Final = 100_000
"""Challenges remembered per generation; the window shortens beyond this many per window."""
_IDENTIFIERS: Final = tuple(bytes((identifier,)) for identifier in range(256))


class ChallengeWindow:
    """Challenges seen by NAS, kept between ``window`` and twice ``window`` seconds.

    Two generations of dicts, rotated when one is ``window`` old (checked on use, so an idle
    daemon runs no timer) or holds :data:`MAX_ENTRIES`: memory stays at most two generations
    whatever the request rate, and every reuse within ``window`` is caught as long as fewer
    than MAX_ENTRIES challenges verify per window. ``window`` 0 turns reuse checks off.
    """

    __slots__ = ("_clock", "_current", "_max_entries", "_previous", "_rotate_at", "window")

    def __init__(
        self,
        window: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self._max_entries = max_entries
        self._clock = clock
        # nas id + challenge → Request Authenticator + Identifier of the request that used it
        self._current: dict[bytes, bytes] = {}
        self._previous: dict[bytes, bytes] = {}
        self._rotate_at = clock() + window

    def reused(self, nas_id: int, challenge: bytes, identifier: int, authenticator: bytes) -> bool:
        """Whether another request from ``nas_id`` used ``challenge``; else remember this one."""
        if self.window <= 0:
            return False
        current = self._current
        if len(current) >= self._max_entries or self._clock() >= self._rotate_at:
            current = self._rotate()
        # One bytes object per key and value (about 160 octets an entry with the dict's share).
        key = challenge + nas_id.to_bytes(8)  # a fixed-size tail keeps keys unambiguous
        request = authenticator + _IDENTIFIERS[identifier]
        first = current.get(key)
        if first is None:
            first = self._previous.get(key)
            if first is None:
                current[key] = request
                return False
        return first != request

    def _rotate(self) -> dict[bytes, bytes]:
        now = self._clock()
        if now >= self._rotate_at + self.window:
            # Idle for a whole window: what the current generation holds is older than that.
            self._previous = {}
        else:
            self._previous = self._current
        self._current = {}
        self._rotate_at = now + self.window
        return self._current

    def clear(self) -> None:
        self._current, self._previous = {}, {}

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)
