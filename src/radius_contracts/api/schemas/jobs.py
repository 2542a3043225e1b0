"""The daemon's periodic jobs (read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from radius_contracts.api.schemas.common import Output


class JobPublic(Output):
    """A periodic job of this daemon: its schedule and how its last run went."""

    name: str = Field(description="The job's name, e.g. stale-sessions.")
    description: str = Field(description="What the job does.")
    schedule: str = Field(
        description='When it runs: "every 60 s", or "daily at 00:00:05" in the host\'s local '
        "time (the time zone contract dates are read in)."
    )
    shared: bool = Field(
        description="True: one run per turn across every daemon node sharing the database "
        "(whichever claims it first), recorded in the database, so the fields below are the "
        "cluster's. False: runs on each node; the fields below are this node's since it started."
    )
    next_run_at: datetime | None = Field(
        description="When it is due next (UTC). A shared job due while every node was down "
        "runs as soon as one starts."
    )
    running: bool = Field(description="A node is running it now.")
    runs: int = Field(description="Completed runs, failed ones included.")
    last_started_at: datetime | None = Field(description="When the last run started (UTC).")
    last_finished_at: datetime | None = Field(description="When the last run ended (UTC).")
    last_node: str | None = Field(
        description="The node that ran it last ([scheduler] node_name, default <hostname>:<pid>)."
    )
    last_result: int | dict[str, Any] | None = Field(
        description="What the last run did: a count (e.g. sessions closed) or named counts, "
        'e.g. {"ended": 2, "disconnected": 3, "started": 1}; null when it failed.'
    )
    last_error: str | None = Field(description="Why the last run failed; null when it did not.")
