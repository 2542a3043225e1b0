"""The scheduler on real databases: a shared job runs once per turn across nodes, a dead node's
claim is taken over, and the job's turn and record survive restarts.

Each "node" is a Scheduler with its own name, as each daemon has one; they share one database
per backend (an SQLite file, and a fresh PostgreSQL database when one is reachable). Every
test uses job names of its own.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import migrated_database
from radius_contracts.db.engine import create_engine, session_factory
from radius_contracts.db.models import JobState
from radius_contracts.errors import NotFound
from radius_contracts.jobs import Scheduler
from radius_contracts.store import jobs as job_rows

Sessions = async_sessionmaker[AsyncSession]
HOUR = 3600.0


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from migrated_database(request, tmp_path_factory, "jobs")


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def nodes() -> AsyncIterator[list[Scheduler]]:
    """Schedulers made by the test; shut down at its end."""
    made: list[Scheduler] = []
    yield made
    for node in made:
        await node.shutdown(grace=1.0)


@pytest.fixture
def name() -> str:
    return f"job-{secrets.token_hex(4)}"


class Counter:
    """A job body that counts its runs and can be held mid-run."""

    def __init__(self, *, hold: bool = False) -> None:
        self.runs = 0
        self.started = asyncio.Event()
        self.go_on = asyncio.Event()
        if not hold:
            self.go_on.set()

    async def __call__(self) -> int:
        self.runs += 1
        self.started.set()
        await self.go_on.wait()
        return self.runs


async def row(sessions: Sessions, name: str) -> JobState:
    async with sessions() as session:
        found = await session.scalar(select(JobState).where(JobState.name == name))
    assert found is not None
    return found


async def set_row(sessions: Sessions, name: str, **values: object) -> None:
    async with sessions() as session, session.begin():
        await session.execute(update(JobState).where(JobState.name == name).values(**values))


async def new_row(sessions: Sessions, name: str, next_run_at: datetime | None) -> None:
    async with sessions() as session, session.begin():
        await job_rows.ensure(session, {name: next_run_at})


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Wait (bounded) for ``check`` to hold."""
    for _ in range(int(seconds / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {seconds} s")


def now() -> datetime:
    return datetime.now(UTC)


async def node(
    nodes: list[Scheduler],
    sessions: Sessions,
    label: str,
    name: str,
    job: Callable[[], Awaitable[int]],
    **options: float,
) -> Scheduler:
    """A started node with ``job`` shared as ``name``, every hour."""
    scheduler = Scheduler(label, **options)
    nodes.append(scheduler)
    scheduler.every(name, HOUR, job, shared=True, description="test job")
    await scheduler.start(sessions)
    return scheduler


async def test_two_nodes_firing_at_once_run_the_job_once(
    sessions: Sessions, nodes: list[Scheduler], name: str
) -> None:
    body = Counter(hold=True)
    # Next turn in an hour: the triggers stay quiet, the test fires the nodes itself.
    await new_row(sessions, name, now() + timedelta(hours=1))
    a, b = await asyncio.gather(
        node(nodes, sessions, "node-a", name, body), node(nodes, sessions, "node-b", name, body)
    )
    await set_row(sessions, name, next_run_at=now() - timedelta(seconds=1))  # the turn is due

    firing = [asyncio.create_task(a.fire(name)), asyncio.create_task(b.fire(name))]
    await asyncio.wait_for(body.started.wait(), 5)
    await asyncio.sleep(0.05)  # let the other node's claim be refused, not merely pending
    # While it runs, the other node sees it claimed.
    held = await row(sessions, name)
    assert held.locked_by in ("node-a", "node-b")
    assert held.locked_until is not None and held.locked_until > now()
    assert (await b.status(name)).running and (await a.status(name)).running
    assert await a.fire(name) is False and await b.fire(name) is False
    body.go_on.set()
    ran = await asyncio.gather(*firing)

    assert sorted(ran) == [False, True] and body.runs == 1
    winner = "node-a" if ran[0] else "node-b"
    done = await row(sessions, name)
    assert (done.runs, done.last_node, done.last_result, done.last_error) == (1, winner, 1, None)
    assert done.locked_by is None and done.locked_until is None
    assert done.next_run_at is not None and done.next_run_at > now() + timedelta(minutes=59)
    # Both nodes tell the same record; the turn is not due again on either.
    seen = [await a.status(name), await b.status(name)]
    assert seen[0] == seen[1] and seen[0].runs == 1 and not seen[0].running
    assert await a.fire(name) is False and await b.fire(name) is False
    assert body.runs == 1


async def test_a_dead_nodes_claim_is_taken_over_and_a_live_one_is_not(
    sessions: Sessions, nodes: list[Scheduler], name: str
) -> None:
    body = Counter()
    await new_row(sessions, name, now() + timedelta(hours=1))
    a = await node(nodes, sessions, "node-a", name, body)
    due = now() - timedelta(minutes=5)
    # The node that claimed it is alive (its claim holds): nobody else runs the job.
    await set_row(
        sessions, name, next_run_at=due, locked_by="busy", locked_until=now() + timedelta(minutes=5)
    )
    assert await a.fire(name) is False and body.runs == 0
    assert (await a.status(name)).running
    # It died mid-run: once its claim lapses, the job is taken over.
    await set_row(sessions, name, locked_by="dead", locked_until=now() - timedelta(seconds=1))
    assert not (await a.status(name)).running
    assert await a.fire(name) is True and body.runs == 1
    done = await row(sessions, name)
    assert (done.locked_by, done.last_node, done.runs) == (None, "node-a", 1)


async def test_a_turn_missed_while_down_runs_once_at_start(
    sessions: Sessions, nodes: list[Scheduler], name: str
) -> None:
    body = Counter()
    await new_row(sessions, name, now() - timedelta(minutes=10))  # due while no node ran
    first = await node(nodes, sessions, "node-a", name, body)

    async def ran_once() -> bool:
        return (await row(sessions, name)).runs == 1

    await until(ran_once)
    assert body.runs == 1
    stored = (await row(sessions, name)).next_run_at
    assert stored is not None and stored > now() + timedelta(minutes=59)
    assert (await first.status(name)).next_run_at == stored

    # A restart before the next turn: the record and the turn survive, nothing runs at start.
    await first.shutdown()
    again = await node(nodes, sessions, "node-a", name, body)
    await asyncio.sleep(0.1)  # the catch-up above ran within this; nothing is due here
    assert body.runs == 1 and (await row(sessions, name)).runs == 1
    assert await again.fire(name) is False
    status = await again.status(name)
    assert (status.runs, status.next_run_at, status.last_result) == (1, stored, 1)
    assert again._scheduler.get_job(name).next_run_time == stored


async def test_a_daily_job_catches_up_at_start_only_when_its_turn_passed(
    sessions: Sessions, nodes: list[Scheduler], name: str
) -> None:
    body = Counter()
    late, on_time = f"{name}-late", f"{name}-on-time"
    await new_row(sessions, late, now() - timedelta(hours=3))
    await new_row(sessions, on_time, now() + timedelta(hours=3))
    scheduler = Scheduler("node-a")
    nodes.append(scheduler)
    at = clock_time(0, 0, 5)
    zone = ZoneInfo("America/Sao_Paulo")  # the ISP's zone (settings.timezone), not the host's
    scheduler.daily(late, at, body, shared=True, description="missed", zone=zone)
    scheduler.daily(on_time, at, body, shared=True, description="not due", zone=zone)
    await scheduler.start(sessions)

    async def late_ran() -> bool:
        return (await row(sessions, late)).runs == 1

    await until(late_ran)
    assert body.runs == 1 and (await row(sessions, on_time)).runs == 0
    late_status = await scheduler.status(late)
    assert late_status.schedule == "daily at 00:00:05 (America/Sao_Paulo)"
    # The next turn is the next 00:00:05 in the ISP's time zone.
    upcoming = late_status.next_run_at
    assert upcoming is not None and now() < upcoming <= now() + timedelta(days=1)
    local = upcoming.astimezone(zone)
    assert (local.hour, local.minute, local.second) == (0, 0, 5)


async def test_a_job_that_fails_is_recorded_and_runs_again_next_turn(
    sessions: Sessions, nodes: list[Scheduler], name: str
) -> None:
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database on fire")
        return 7

    await new_row(sessions, name, now() - timedelta(seconds=1))
    a = await node(nodes, sessions, "node-a", name, flaky)

    async def ran() -> bool:
        return (await row(sessions, name)).runs == 1

    await until(ran)
    failed = await row(sessions, name)
    assert failed.last_error == "RuntimeError('database on fire')" and failed.last_result is None
    assert failed.locked_by is None
    await set_row(sessions, name, next_run_at=now())
    assert await a.fire(name) is True
    recovered = await row(sessions, name)
    assert (recovered.runs, recovered.last_result, recovered.last_error) == (2, 7, None)


async def test_a_long_run_keeps_its_claim_and_shutdown_lets_go_of_a_cancelled_one(
    sessions: Sessions, nodes: list[Scheduler], name: str
) -> None:
    body = Counter(hold=True)
    await new_row(sessions, name, now() - timedelta(seconds=1))
    # A lease of 0.3 s, renewed every 0.1 s while the job runs.
    a = await node(nodes, sessions, "node-a", name, body, lease=0.3)
    await asyncio.wait_for(body.started.wait(), 5)  # node-a caught up at start
    b = await node(nodes, sessions, "node-b", name, body, lease=0.3)
    await asyncio.sleep(0.6)  # two leases: held only through renewals
    assert await b.fire(name) is False and body.runs == 1
    # Stopping node-a cancels the run (it does not end within the grace): the claim is let go
    # at once, unrecorded, so node-b can run the turn.
    await a.shutdown(grace=0.05)
    left = await row(sessions, name)
    assert (left.locked_by, left.locked_until, left.runs) == (None, None, 0)
    body.go_on.set()
    assert await b.fire(name) is True and body.runs == 2


async def test_a_turn_handed_out_as_shutdown_begins_does_not_run(
    sessions: Sessions, nodes: list[Scheduler], name: str
) -> None:
    body = Counter()
    scheduler = Scheduler("node-a")
    nodes.append(scheduler)
    scheduler.every(name, HOUR, body, description="a local job: its turns need no claim")
    await scheduler.start(sessions)
    # APScheduler hands a due turn to a task of its own; here the task exists but has not
    # started when the daemon's SIGTERM stops the scheduler.
    late = asyncio.get_running_loop().create_task(scheduler._fired(name))
    await scheduler.shutdown(grace=5.0)
    await asyncio.wait_for(late, 5)
    assert body.runs == 0


async def test_a_run_cancelled_at_shutdown_is_one_warning_not_a_traceback(
    sessions: Sessions, nodes: list[Scheduler], name: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = Counter(hold=True)
    await new_row(sessions, name, now() - timedelta(seconds=1))
    scheduler = await node(nodes, sessions, "node-a", name, body)
    await asyncio.wait_for(body.started.wait(), 5)  # caught up at start, through APScheduler
    await scheduler.shutdown(grace=0.05)
    await asyncio.sleep(0.1)  # APScheduler's task ends and logs how the job ended
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert failures == []
    assert f"job {name} cancelled: it did not finish within the shutdown budget" in caplog.text


async def test_local_jobs_stay_in_memory_and_unknown_names_are_not_found(
    sessions: Sessions, nodes: list[Scheduler], name: str
) -> None:
    body = Counter()
    scheduler = Scheduler("node-a")
    nodes.append(scheduler)
    scheduler.every(name, HOUR, body, description="mine only")
    await scheduler.start(sessions)
    assert await scheduler.fire(name) is True
    status = await scheduler.status(name)
    assert (status.shared, status.runs, status.last_result, status.last_node) == (
        False,
        1,
        1,
        "node-a",
    )
    assert status.schedule == "every 3600 s" and status.next_run_at is not None
    async with sessions() as session:
        assert await session.get(JobState, name) is None
    with pytest.raises(NotFound):
        await scheduler.status("no-such-job")
