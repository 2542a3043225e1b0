"""Periodic work on APScheduler inside the daemon: stale sessions, history, leases, session view.

Each job is a coroutine over the database and the in-memory views; the scheduler runs them on
the daemon's event loop. A job that fails logs why and runs again at its next turn.

Jobs are shared or local. A shared job's work is the cluster's (the database's): every node
fires it, and only the node that claims its row in the ``jobs`` table runs that turn. The row
also keeps its next turn across restarts, so a turn missed while every node was down runs as
soon as one starts (catch-up). A local job (e.g. reading other nodes' sessions into this
node's view) runs on every node, kept in memory only.

Why not APScheduler's SQLAlchemyJobStore for this: it is synchronous (it would need a sync
driver beside our async ones), and APScheduler 3 does not support several schedulers sharing
one job store (each node would run every job). So each node keeps its triggers in memory and
the ``jobs`` row decides who runs each turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as clock_time
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from radius_contracts.aaa.sessions import OpenSession, SessionView
from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import JobState
from radius_contracts.db.writer import write_transaction
from radius_contracts.errors import NotFound
from radius_contracts.index import AuthIndex
from radius_contracts.services.jobs import JobStatus, JobValue
from radius_contracts.settings import AccountingSettings
from radius_contracts.store import jobs as job_rows
from radius_contracts.store import quota as quota_store
from radius_contracts.store import session_queries as store

log = logging.getLogger("radius_contracts.jobs")

_NEVER = 100 * 365 * 86400.0
FIRST_RUN_WITHIN = 5.0  # an interval job's first turn after start comes this soon (seconds)
# History purge: rows per transaction, and seconds between transactions (bench/soak.py
# --old-history measures what a backlog costs RADIUS; see bench/README.md).
PURGE_BATCH = 500
PURGE_PAUSE = 0.05
LEASE = 600.0  # seconds a claim holds; renewed while the job runs, so it only ends a dead node's
# A node may claim a turn this early: its clock may run a little behind the one that set it.
SLACK = timedelta(seconds=2)

__all__ = ["Job", "Scheduler", "SessionJobs", "node_name"]

Job = Callable[[], Awaitable[JobValue]]


def node_name(configured: str = "") -> str:
    """This daemon's name in the jobs table: the configured one, or <hostname>:<pid>."""
    return configured or f"{socket.gethostname()}:{os.getpid()}"


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
        count = await self._reload(None)
        self.last_refresh = time.monotonic()
        return count

    async def reload_contracts(self, contract_ids: Sequence[int]) -> int:
        """Read these contracts' open sessions into the view (other nodes started or stopped
        some: the change feed says which)."""
        return await self._reload(contract_ids)

    async def _reload(self, contract_ids: Sequence[int] | None) -> int:
        replay = self._view.begin_reload()
        try:
            async with self._sessions() as session:
                rows = await store.open_sessions(session, contract_ids)
        except BaseException:
            self._view.reload_failed(replay)
            raise
        self._view.finish_reload(
            (
                (contract_id, OpenSession(nas_id, key, started, calling, port, port_id))
                for contract_id, nas_id, key, started, calling, port, port_id in rows
            ),
            replay,
            contract_ids,
        )
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
        """Close the sessions without an update for too long (cluster-wide: a shared job)."""
        limits = self.stale_limits()
        if not limits:
            return 0
        now = self._clock()
        # Look before taking the write lock: most turns find nothing, and a write transaction
        # through the async engine holds the lock across thread hops of a busy event loop
        # while accounting batches wait behind it (bench/soak.py, jobs every 5 s).
        async with self._sessions() as session:
            if not await store.any_stale(session, now, limits):
                return 0
        async with write_transaction(self._sessions) as session:
            closed = await store.close_stale(session, now, limits)
        if closed:
            log.info("closed %d stale sessions", closed)
            # Other nodes see the closed sessions at their next refresh-sessions.
            await self.reload_view()
        return closed

    async def forget_logins(self) -> int:
        """Forget this node's accepted logins whose Accounting-Start never came (local job)."""
        return self._view.sweep()

    async def purge_history(self) -> int:
        """Delete old sessions and daily usage in batches of PURGE_BATCH rows, one short
        transaction each with a pause between: a year's backlog costs RADIUS accounting a
        few milliseconds of waiting per batch, never one long lock. Returns sessions deleted."""
        now = self._clock()
        sessions_before = now - timedelta(days=self._settings.history_days)
        usage_before = (now - timedelta(days=self._settings.usage_days)).date()
        total = await self._in_batches(store.purge_sessions, sessions_before)
        usage = await self._in_batches(store.purge_usage, usage_before)
        async with write_transaction(self._sessions) as session:
            # Quota periods are kept as long as the daily usage they summarise (one row per
            # contract and period: few, so one statement).
            await quota_store.purge(session, usage_before)
        if total:
            log.info("deleted %d sessions closed before %s", total, sessions_before.date())
        if usage:
            log.info("deleted %d daily usage rows before %s", usage, usage_before)
        return total

    async def _in_batches(
        self, purge: Callable[[AsyncSession, Any, int], Awaitable[int]], before: Any
    ) -> int:
        total = 0
        while True:
            async with write_transaction(self._sessions) as session:
                deleted = await purge(session, before, PURGE_BATCH)
            total += deleted
            if deleted < PURGE_BATCH:
                return total
            await asyncio.sleep(PURGE_PAUSE)  # let the accounting writer have the database


class _Every:
    """Every ``seconds``; for a shared job, in step with the turn the cluster stored."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.text = f"every {seconds:g} s"

    def initial(self, now: datetime) -> datetime:
        """The first turn of a job the database has no row for yet."""
        return now + timedelta(seconds=min(self.seconds, FIRST_RUN_WITHIN))

    def first(self, stored: datetime | None, now: datetime) -> datetime:
        if stored is None:
            return self.initial(now)
        if stored <= now:
            return now  # catch-up: the turn was due while no node ran it
        # Not later than one interval, should the interval have shrunk since the row was set.
        return min(stored, now + timedelta(seconds=self.seconds))

    def trigger(self, first: datetime) -> Any:
        return IntervalTrigger(seconds=self.seconds, start_date=first, timezone=UTC)


class _Daily:
    """Every day at a wall-clock time of the ISP's time zone (settings.timezone), in which
    contract dates and quota periods are read; DST changes included."""

    def __init__(self, at: clock_time, zone: tzinfo) -> None:
        self.text = f"daily at {at:%H:%M:%S} ({zone})"
        self._cron = CronTrigger(hour=at.hour, minute=at.minute, second=at.second, timezone=zone)

    def initial(self, now: datetime) -> datetime:
        # A daily job that never ran anywhere is due: what it enforces may be stale already.
        return now

    def first(self, stored: datetime | None, now: datetime) -> datetime:
        if stored is not None and stored <= now:
            return now  # catch-up
        fire: datetime = self._cron.get_next_fire_time(None, now)
        return fire

    def trigger(self, first: datetime) -> Any:
        return self._cron


class _Minutely:
    """Every minute, on the minute (a local job: plans' time windows begin on the minute)."""

    text = "every minute, on the minute"

    def __init__(self) -> None:
        self._cron = CronTrigger(second=0, timezone=UTC)

    def initial(self, now: datetime) -> datetime:
        return now

    def first(self, stored: datetime | None, now: datetime) -> datetime:
        return now  # right after start: what changed while the daemon was down is caught up

    def trigger(self, first: datetime) -> Any:
        return self._cron


class _Entry:
    """A registered job, and its record on this node (the whole record, for a local job)."""

    def __init__(
        self,
        name: str,
        schedule: _Every | _Daily | _Minutely,
        job: Job,
        shared: bool,
        description: str,
    ) -> None:
        self.name = name
        self.schedule = schedule
        self.job = job
        self.shared = shared
        self.description = description
        self.trigger: Any = None  # set at start
        self.running = False
        self.runs = 0
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.result: JobValue | None = None
        self.error: str | None = None

    def next_turn(self, now: datetime) -> datetime | None:
        """This node's next turn after ``now``, as its trigger has it."""
        if self.trigger is None:
            return None
        fire: datetime | None = self.trigger.get_next_fire_time(None, now)
        return fire.astimezone(UTC) if fire is not None else None


class Scheduler:
    """APScheduler on the daemon's loop; shared jobs run once per turn across the nodes.

    Register jobs with every() and daily(), then start(). fire() is what each trigger calls:
    a local job runs; a shared one runs when this node claims its ``jobs`` row (one atomic
    UPDATE: unclaimed, or the claim lapsed, and its turn has come), and the row then records
    the run, the next turn and lets go.
    """

    def __init__(
        self,
        node: str = "",
        *,
        lease: float = LEASE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.node = node_name(node)
        self.lease = lease
        self._clock = clock
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._jobs: dict[str, _Entry] = {}
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._firing: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def every(
        self, name: str, seconds: float, job: Job, *, shared: bool = False, description: str = ""
    ) -> None:
        """Run ``job`` every ``seconds``, the first time soon after start."""
        self._add(_Entry(name, _Every(seconds), job, shared, description))

    def daily(
        self,
        name: str,
        at: clock_time,
        job: Job,
        *,
        shared: bool = False,
        description: str = "",
        zone: tzinfo = UTC,
    ) -> None:
        """Run ``job`` every day at ``at``, wall-clock time in ``zone``."""
        self._add(_Entry(name, _Daily(at, zone), job, shared, description))

    def minutely(self, name: str, job: Job, *, description: str = "") -> None:
        """Run ``job`` on this node every minute, on the minute, and once right after start."""
        self._add(_Entry(name, _Minutely(), job, False, description))

    def _add(self, entry: _Entry) -> None:
        if self._scheduler.running:
            raise RuntimeError("jobs are registered before the scheduler starts")
        if entry.name in self._jobs:
            raise ValueError(f"job {entry.name} is registered already")
        self._jobs[entry.name] = entry

    async def start(self, sessions: async_sessionmaker[AsyncSession] | None = None) -> None:
        """Create the rows of shared jobs that have none, then start the triggers.

        A shared job fires first at the turn its row holds; right away when that turn passed
        while no node ran it (catch-up).
        """
        now = self._clock()
        stored: dict[str, datetime | None] = {}
        shared = {name: e.schedule.initial(now) for name, e in self._jobs.items() if e.shared}
        if shared:
            if sessions is None:
                raise ValueError("shared jobs need the database")
            self._sessions = sessions
            async with write_transaction(sessions) as session:
                stored = await job_rows.ensure(session, shared)
        for entry in self._jobs.values():
            turn = stored.get(entry.name)
            first = entry.schedule.first(turn, now)
            if turn is not None and turn <= now:
                since = turn.isoformat(timespec="seconds")
                log.info("job %s is due since %s: running it now", entry.name, since)
            entry.trigger = entry.schedule.trigger(first)
            self._scheduler.add_job(
                self._fired,
                entry.trigger,
                args=[entry.name],
                id=entry.name,
                name=entry.name,
                next_run_time=first,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,  # a late turn still runs (once: coalesce)
            )
        self._scheduler.start()

    async def _fired(self, name: str) -> None:
        if self._stopping:
            # APScheduler hands a due turn to a task of its own, which may start only after
            # shutdown() began (pausing does not recall it): it does not run now. The turn
            # stays due in the database, so the next start or another node takes it.
            return
        # Tracked so that shutdown can wait for the jobs that are running.
        task = asyncio.current_task()
        assert task is not None
        self._firing.add(task)
        try:
            await self.fire(name)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # shutdown() cancelled it when the grace ran out: say so in one line, rather than
            # let APScheduler log it as a job that failed, with a traceback.
            log.warning("job %s cancelled: it did not finish within the shutdown budget", name)
        finally:
            self._firing.discard(task)

    async def fire(self, name: str) -> bool:
        """Run the job now if it is this node's turn; True when it ran here.

        A local job runs unless it is running already; a shared one when this node claims it.
        """
        entry = self._jobs[name]
        if not entry.shared:
            if entry.running:
                return False
            await self._call(entry)
            return True
        return await self._run_shared(entry)

    async def _call(self, entry: _Entry) -> None:
        """Run the job, keeping its outcome; a job that fails is logged, never raised."""
        entry.running, entry.started_at = True, self._clock()
        started = time.monotonic()
        try:
            value = await entry.job()
        except Exception as exc:
            log.warning("job %s failed: %r", entry.name, exc)
            entry.result, entry.error = None, repr(exc)
        else:
            entry.result, entry.error = value, None
            # DEBUG: every turn of every job. A job that did something says so itself, at INFO.
            log.debug("job %s ran in %.3f s: %s", entry.name, time.monotonic() - started, value)
        finally:
            entry.running = False
        entry.runs += 1
        entry.finished_at = self._clock()

    async def _run_shared(self, entry: _Entry) -> bool:
        assert self._sessions is not None
        now = self._clock()
        try:
            async with write_transaction(self._sessions) as session:
                mine = await job_rows.claim(
                    session, entry.name, self.node, now, now + self._lease(), now + SLACK
                )
        except Exception as exc:  # the database is down: a later turn (here or elsewhere) runs
            log.warning("job %s: could not claim its turn: %r", entry.name, exc)
            return False
        if not mine:
            return False
        holding = asyncio.create_task(self._hold(entry.name), name=f"hold-{entry.name}")
        try:
            await self._call(entry)
        finally:
            holding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holding
        assert entry.finished_at is not None
        try:
            async with write_transaction(self._sessions) as session:
                kept = await job_rows.finish(
                    session,
                    entry.name,
                    self.node,
                    next_run_at=entry.next_turn(entry.finished_at),
                    finished_at=entry.finished_at,
                    result=entry.result,
                    error=entry.error,
                )
        except Exception as exc:
            # The claim lapses by itself; the turn runs again then (the jobs are idempotent).
            log.warning("job %s ran, but its record could not be written: %r", entry.name, exc)
        else:
            if not kept:
                log.warning("job %s outlasted its claim: another node took it over", entry.name)
        return True

    def _lease(self) -> timedelta:
        return timedelta(seconds=self.lease)

    async def _hold(self, name: str) -> None:
        """Renew this node's claim while the job runs: only a dead node's claim runs out."""
        assert self._sessions is not None
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                async with write_transaction(self._sessions) as session:
                    held = await job_rows.extend(
                        session, name, self.node, self._clock() + self._lease()
                    )
            except Exception as exc:
                log.warning("job %s: could not renew its claim: %r", name, exc)
                continue
            if not held:
                log.warning("job %s: another node took it over while it ran here", name)
                return

    async def statuses(self) -> list[JobStatus]:
        """Every job; shared ones as the ``jobs`` table has them (the whole cluster's record)."""
        rows: dict[str, JobState] = {}
        shared = [name for name, entry in self._jobs.items() if entry.shared]
        if shared and self._sessions is not None:
            with wrap_db_errors():
                async with self._sessions() as session:
                    rows = {row.name: row for row in await job_rows.rows(session, shared)}
        now = self._clock()
        return [self._status(entry, rows.get(entry.name), now) for entry in self._jobs.values()]

    async def status(self, name: str) -> JobStatus:
        if name not in self._jobs:
            raise NotFound(f"there is no job {name!r}", field="name")
        return next(status for status in await self.statuses() if status.name == name)

    def _status(self, entry: _Entry, row: JobState | None, now: datetime) -> JobStatus:
        if row is not None:
            until = row.locked_until
            return JobStatus(
                name=entry.name,
                description=entry.description,
                schedule=entry.schedule.text,
                shared=entry.shared,
                next_run_at=row.next_run_at,
                running=row.locked_by is not None and until is not None and until > now,
                runs=row.runs,
                last_started_at=row.last_started_at,
                last_finished_at=row.last_finished_at,
                last_node=row.last_node,
                last_result=row.last_result,
                last_error=row.last_error,
            )
        job = self._scheduler.get_job(entry.name)
        upcoming: datetime | None = job.next_run_time if job is not None else None
        return JobStatus(
            name=entry.name,
            description=entry.description,
            schedule=entry.schedule.text,
            shared=entry.shared,
            next_run_at=upcoming.astimezone(UTC) if upcoming is not None else None,
            running=entry.running,
            runs=entry.runs,
            last_started_at=entry.started_at,
            last_finished_at=entry.finished_at,
            last_node=self.node if entry.started_at is not None else None,
            last_result=entry.result,
            last_error=entry.error,
        )

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop firing, let running jobs finish within ``grace`` seconds, cancel the rest.

        A shared job cancelled mid-run is let go, unrecorded, so another node can run its
        turn now instead of after the claim lapses.
        """
        if not self._scheduler.running:
            return
        # From here no turn starts (see _fired): every run that started is in _firing, so
        # this set is complete. Without it, a turn handed out just before the pause started
        # after the set was taken, and was cancelled mid-run by the scheduler's shutdown.
        self._stopping = True
        self._scheduler.pause()
        running = set(self._firing)
        if running:
            _done, running = await asyncio.wait(running, timeout=grace)
        self._scheduler.shutdown(wait=False)  # cancels the jobs still running
        if running:
            await asyncio.wait(running, timeout=1.0)
            if self._sessions is not None:
                try:
                    async with write_transaction(self._sessions) as session:
                        await job_rows.release(session, self.node)
                except Exception as exc:
                    log.warning("could not let go of the jobs cancelled here: %r", exc)
