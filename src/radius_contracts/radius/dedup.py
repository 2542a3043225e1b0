"""The duplicate-request cache of RFC 5080 §2.2.2.

A NAS that gets no answer in time retransmits the same packet (same source, Identifier and
Request Authenticator). Running AAA again could answer differently and, for accounting, count
twice; so a retransmit seen within the window gets the cached reply bytes, and one that comes
while the first copy is still being handled (e.g. a Reject waiting out its delay) is dropped.
"""

from __future__ import annotations

import asyncio
from typing import Final

Key = tuple[object, object, int, bytes]
"""(source host, source port, Identifier, Request Authenticator).

Flat, and made only of strings, ints and bytes: the garbage collector stops tracking such a
tuple at the first collection it survives. A key with the address as a nested tuple stayed
tracked until a generation-1 collection: at 2,000 req/s those keys were half of the ~30,000
young objects each such collection walked (12-21 ms with the event loop stopped, bench/soak.py).
"""

IN_PROGRESS: Final = b""
"""Cached in place of a reply while the request is still being handled."""


# Entries of an expired generation freed per turn of the event loop. Dropping the whole
# generation at once freed rate x window entries in one go: 40 ms without an answer to any
# packet after a minute at 25,000 req/s, 10-13 ms every window at 10,000/s (bench/auth.py
# open loop), one stall every 5 s. 2,000 entries take about 0.4 ms.
DRAIN_STEP: Final = 2_000


class ReplyCache:
    """Replies by request key, kept between ``window`` and twice ``window`` seconds.

    Two generations of plain dicts rotated by a timer: O(1) per packet, no per-entry
    timestamps, and memory bounded by the request rate times the window. The generation
    that expires is freed a slice per loop turn, between packets.
    """

    __slots__ = ("_current", "_handle", "_previous", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._current: dict[Key, bytes] = {}
        self._previous: dict[Key, bytes] = {}
        self._handle: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = loop.call_later(self.window, self._rotate, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _rotate(self, loop: asyncio.AbstractEventLoop) -> None:
        expired, self._previous, self._current = self._previous, self._current, {}
        self._handle = loop.call_later(self.window, self._rotate, loop)
        if expired:
            loop.call_soon(_drain, expired, loop)

    def get(self, key: Key) -> bytes | None:
        """The reply sent for ``key``, IN_PROGRESS, or None for a request not seen lately."""
        reply = self._current.get(key)
        if reply is None:
            reply = self._previous.get(key)
        return reply

    def put(self, key: Key, reply: bytes) -> None:
        self._current[key] = reply

    def discard(self, key: Key) -> None:
        self._current.pop(key, None)
        self._previous.pop(key, None)

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)


def _drain(expired: dict[Key, bytes], loop: asyncio.AbstractEventLoop) -> None:
    """Free ``DRAIN_STEP`` entries of an expired generation, then yield to the loop."""
    for _ in range(min(DRAIN_STEP, len(expired))):
        expired.popitem()
    if expired:
        loop.call_soon(_drain, expired, loop)
