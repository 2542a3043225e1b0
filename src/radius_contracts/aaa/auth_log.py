"""The auth log: every Access-Request outcome, recorded on the hot path, written in batches.

``record`` is called for every packet, so it only appends to a bounded in-memory queue (see
aaa.batch_log): a database that is slow or down never slows authentication.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from radius_contracts.aaa.batch_log import BatchLog, LogPurge

__all__ = ["AuthEvent", "AuthLogPurge", "AuthLogSink", "AuthLogWriter"]

AuthLogSink = Callable[[Sequence["AuthEvent"]], Awaitable[None]]
"""Writes one batch durably (e.g. AuthLogService.write); raises when it could not."""


AuthLogPurge = LogPurge


class AuthEvent(NamedTuple):
    """One Access-Request outcome, as support staff read it later.

    A NamedTuple rather than a frozen dataclass: one is built for every Access-Request, and a
    tuple is built in a fraction of the time.
    """

    at: datetime  # UTC
    contract_id: int | None  # None: no contract matched the User-Name
    username: str | None
    nas_id: int | None
    calling_station_id: str | None
    accept: bool
    reason: str  # why it was rejected, or what was accepted ("accepted")
    method: str | None  # "pap", "chap", "mschapv2", "mac"; None when it never got that far


class AuthLogWriter(BatchLog[AuthEvent]):
    """The batch log of AuthEvents (see BatchLog)."""

    def __init__(self, sink: AuthLogSink, **options: Any) -> None:
        super().__init__(sink, what="auth log", **options)
