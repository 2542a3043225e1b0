"""What the management API may ask of the daemon's scheduler: each job's schedule and record.

The scheduler (radius_contracts.jobs) answers it; the API depends on this protocol only, so
neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = ["JobBoard", "JobStatus", "JobValue"]

JobValue = int | dict[str, Any]
"""What a job run returns, recorded as JSON: a count, or named counts."""


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One job as the scheduler sees it now.

    For a shared job the record is the ``jobs`` row, i.e. the whole cluster's; for a local job
    it is this daemon's memory since it started.
    """

    name: str
    description: str
    schedule: str  # "every 60 s", "daily at 00:00:05"
    shared: bool
    next_run_at: datetime | None
    running: bool
    runs: int
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_node: str | None
    last_result: JobValue | None
    last_error: str | None


class JobBoard(Protocol):
    async def statuses(self) -> list[JobStatus]:
        """Every job, in the order they were registered."""
        ...

    async def status(self, name: str) -> JobStatus:
        """One job; raises errors.NotFound for a name that is no job here."""
        ...
