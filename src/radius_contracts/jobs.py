"""Periodic work on APScheduler inside the daemon: stale sessions, history, leases, session view.

Each job is a coroutine over the database and the in-memory views; the scheduler runs them on
the daemon's event loop. A job that fails logs why and runs again at its next turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from radius_contracts.aaa.sessions import OpenSession, SessionView
from radius_contracts.index import AuthIndex
from radius_contracts.settings import AccountingSettings
from radius_contracts.store import accounting as store

log = logging.getLogger("radius_contracts.jobs")

_NEVER = 100 * 365 * 86400.0

__all__ = ["JobResult", "Scheduler", "SessionJobs"]


class JobResult:
    """The outcome of a job's last run, for /metrics and the logs."""

    __slots__ = ("error", "finished_at", "runs", "value")

    def __init__(self) -> None:
        self.runs = 0
        self.finished_at: datetime | None = None
        self.value: int | None = None
        self.error: str | None = None


class SessionJobs:
    """The accounting jobs: close stale sessions, purge history, keep the session view true."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        index: AuthIndex,
        view: SessionView,
        settings: AccountingSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._index = index
        self._view = view
        self._settings = settings
        self._clock = clock
        self.last_refresh = 0.0  # monotonic time of the last successful view reload

    async def reload_view(self) -> int:
        """Read every open session into the view; returns how many."""
        self._view.begin_reload()
        try:
            async with self._sessions() as session:
                rows = await store.open_sessions(session)
        except BaseException:
            self._view.reload_failed()
            raise
        self._view.finish_reload(
            (contract_id, OpenSession(nas_id, key, started, calling, port, port_id))
            for contract_id, nas_id, key, started, calling, port, port_id in rows
        )
        self.last_refresh = time.monotonic()
        return len(rows)

    def stale_limits(self) -> dict[int | None, float]:
        """Seconds without an update after which a session is stale, per NAS (None: others)."""
        k = self._settings.stale_after
        limits: dict[int | None, float] = {}
        if self._settings.interim_interval > 0:
            limits[None] = k * self._settings.interim_interval
        for nas in self._index.all_nas():
            if nas.interim_interval is not None:
                # A NAS asked for no Interim-Updates can't have its sessions judged stale.
                limits[nas.id] = k * nas.interim_interval if nas.interim_interval else _NEVER
        return limits

    async def close_stale(self) -> int:
        limits = self.stale_limits()
        if not limits:
            return 0
        async with self._sessions() as session, session.begin():
            closed = await store.close_stale(session, self._clock(), limits)
        if closed:
            log.info("closed %d stale sessions", closed)
            await self.reload_view()
        self._view.sweep()
        return closed

    async def purge_history(self) -> int:
        now = self._clock()
        sessions_before = now - timedelta(days=self._settings.history_days)
        usage_before = (now - timedelta(days=self._settings.usage_days)).date()
        total = 0
        while True:
            async with self._sessions() as session, session.begin():
                deleted = await store.purge_history(session, sessions_before, usage_before)
            total += deleted
            if deleted < 10_000:
                break
        if total:
            log.info("deleted %d sessions closed before %s", total, sessions_before.date())
        return total


class Scheduler:
    """APScheduler on the daemon's loop, with each job's last result kept for /metrics."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self.results: dict[str, JobResult] = {}

    def every(self, name: str, seconds: float, job: Callable[[], Awaitable[int]]) -> None:
        result = self.results.setdefault(name, JobResult())

        async def run() -> None:
            try:
                value = await job()
            except Exception as exc:
                result.error = repr(exc)
                log.warning("job %s failed: %r", name, exc)
            else:
                result.value, result.error = value, None
            result.runs += 1
            result.finished_at = datetime.now(UTC)

        kwargs: dict[str, Any] = {"seconds": seconds}
        self._scheduler.add_job(
            run,
            "interval",
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=min(seconds, 5.0)),
            **kwargs,
        )

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
