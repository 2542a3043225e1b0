"""The daemon's periodic jobs: what runs when, and whether one node or every node runs it.

Shared jobs act on the database, so with several nodes on one database one node runs each turn
(jobs.Scheduler holds a lease per job). Local ones keep this node's memory true and run
everywhere. Each job's description is what the API's jobs listing shows.
"""

from __future__ import annotations

import logging
from datetime import tzinfo

from radius_contracts.aaa.pools import Leaser
from radius_contracts.aaa.quota import QuotaKeeper
from radius_contracts.aaa.windows import PlanWindows
from radius_contracts.contract_dates import CONTRACT_DATES_AT, ContractDates
from radius_contracts.jobs import Scheduler, SessionJobs
from radius_contracts.settings import AccountingSettings

__all__ = ["schedule_jobs"]

log = logging.getLogger("radius_contracts.daemon")


def schedule_jobs(
    scheduler: Scheduler,
    settings: AccountingSettings,
    *,
    sessions: SessionJobs,
    leaser: Leaser,
    dates: ContractDates,
    quota: QuotaKeeper,
    windows: PlanWindows,
    zone: tzinfo,
    other_nodes: bool,
) -> None:
    """Add the jobs to ``scheduler`` (not yet started). ``other_nodes``: the database is
    shared, so this node reads the sessions the others record too."""
    every = settings.jobs_interval

    async def expire_leases() -> int:
        expired = await leaser.expire()
        if expired:
            log.info("expired %d pool leases (never confirmed or no longer renewed)", expired)
        return expired

    scheduler.every(
        "stale-sessions",
        every,
        sessions.close_stale,
        shared=True,
        description="Close sessions without an update for stale_after interim intervals "
        "(terminate cause Stale).",
    )
    scheduler.every(
        "purge-history",
        max(every, 3600.0),
        sessions.purge_history,
        shared=True,
        description="Delete sessions closed more than history_days ago and daily usage "
        "totals older than usage_days.",
    )
    scheduler.every(
        "expire-leases",
        every,
        expire_leases,
        shared=True,
        description="Free pool addresses whose lease ran out (offered and never confirmed "
        "by an Accounting-Start, or no longer renewed).",
    )
    scheduler.daily(
        "contract-dates",
        CONTRACT_DATES_AT,
        dates.run,
        shared=True,
        description="Disconnect the sessions of contracts past their end date; count the "
        "contracts that start today.",
        zone=zone,
    )
    scheduler.daily(
        "quota-periods",
        CONTRACT_DATES_AT,
        quota.end_periods,
        shared=True,
        description="Give contracts whose over-quota period ended full speed back (CoA).",
        zone=zone,
    )
    scheduler.minutely(
        "plan-windows",
        windows.run,
        description="Follow plans' time windows: logins get the window's speeds, and at a "
        "boundary one node moves the online sessions by CoA.",
    )
    scheduler.every(
        "forget-logins",
        every,
        sessions.forget_logins,
        description="Forget logins accepted by this node whose Accounting-Start never came "
        "(they count against simultaneous use for start_wait seconds).",
    )
    if other_nodes:
        scheduler.every(
            "refresh-sessions",
            settings.session_refresh,
            sessions.reload_view,
            description="Read the open sessions every node recorded into this node's view "
            "(for the simultaneous-use check).",
        )
