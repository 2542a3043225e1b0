"""Refused API requests and connections: counted by reason, logged once per client per minute.

A client that floods the API with refused requests must not flood the log as well, and must not
make this bookkeeping grow without bound: the table of who was logged when is pruned.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

log = logging.getLogger("radius_contracts.api.guard")

LOG_INTERVAL: Final = 60.0  # seconds between two log lines about the same client and reason
_MAX_TRACKED: Final = 10_000  # (client, reason) pairs remembered; beyond it old ones go

REASONS: Final = (
    "unauthenticated",  # /api/ without a token, or with one that is not valid
    "body_too_large",  # Content-Length or the streamed body over the limit (413)
    "body_timeout",  # the body did not arrive within api.body_timeout (408)
    "busy",  # api.max_requests already being handled (503)
    "too_many_connections",  # api.max_connections already open (closed at once)
    "header_timeout",  # headers not complete within api.header_timeout (closed)
    "headers_too_large",  # request line and headers over api.max_header_bytes (closed)
)


class Refusals:
    """Counts by reason (``/metrics``: api_refusals_total) and rate-limited log lines."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: Counter[str] = Counter({reason: 0 for reason in REASONS})
        self._clock = clock
        self._logged: dict[tuple[str, str], float] = {}

    def refuse(self, reason: str, client: str | None, detail: str) -> None:
        """Count one refusal; log it unless this client was logged for it within a minute."""
        self.counts[reason] += 1
        now = self._clock()
        key = (client or "-", reason)
        last = self._logged.get(key)
        if last is not None and now - last < LOG_INTERVAL:
            return
        if len(self._logged) >= _MAX_TRACKED:
            self._prune(now)
        self._logged[key] = now
        log.warning(
            "API refused %s: %s (further refusals of this client for this reason are counted, "
            "not logged, for %d s)",
            key[0],
            detail,
            LOG_INTERVAL,
            extra={"client": key[0], "reason": reason},
        )

    def _prune(self, now: float) -> None:
        fresh = {k: at for k, at in self._logged.items() if now - at < LOG_INTERVAL}
        if len(fresh) >= _MAX_TRACKED:
            # A flood from many addresses within one minute: forget them all rather than grow.
            fresh = {}
        self._logged = fresh


def client_of(client: tuple[str, int] | None) -> str | None:
    """The client's address (no port: one client opens many connections)."""
    return client[0] if client else None
