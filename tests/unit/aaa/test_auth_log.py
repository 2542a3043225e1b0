"""AuthLogWriter on a real event loop with an in-memory sink: batching, bound, retries, close."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from radius_contracts.aaa.auth_log import AuthEvent, AuthLogWriter

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def event(n: int, *, accept: bool = True) -> AuthEvent:
    return AuthEvent(
        at=NOW,
        contract_id=n,
        username=f"user-{n}",
        nas_id=1,
        calling_station_id="00:11:22:33:44:55",
        accept=accept,
        reason="accepted" if accept else "wrong password",
        method="pap",
    )


class MemorySink:
    """Keeps every batch; fails the next ``failures`` calls with ConnectionError."""

    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[AuthEvent]] = []
        self.failures = failures
        self.calls = 0

    async def __call__(self, events: Sequence[AuthEvent]) -> None:
        self.calls += 1
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database is down")
        self.batches.append(list(events))

    @property
    def written(self) -> list[int | None]:
        return [e.contract_id for batch in self.batches for e in batch]


async def wait_for(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    """Poll ``condition``: the writer's counters change without an event to wait on."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def test_record_only_queues() -> None:
    sink = MemorySink()
    writer = AuthLogWriter(sink)

    writer.record(event(1))
    writer.record(event(2))

    assert writer.pending == 2
    assert sink.calls == 0
    assert (writer.written, writer.dropped) == (0, 0)


def test_full_queue_drops_the_oldest_and_counts() -> None:
    writer = AuthLogWriter(MemorySink(), max_pending=3, batch_size=10)

    for n in range(5):
        writer.record(event(n))

    assert writer.pending == 3
    assert writer.dropped == 2


async def test_run_flushes_every_interval_in_order() -> None:
    sink = MemorySink()
    writer = AuthLogWriter(sink, flush_interval=0.02)
    task = asyncio.create_task(writer.run())
    try:
        for n in range(3):
            writer.record(event(n))
        await wait_for(lambda: writer.written == 3)
        writer.record(event(3))
        await wait_for(lambda: writer.written == 4)
    finally:
        await writer.close()
        await task

    assert sink.written == [0, 1, 2, 3]
    assert writer.pending == 0


async def test_a_full_batch_is_written_before_the_interval() -> None:
    sink = MemorySink()
    writer = AuthLogWriter(sink, flush_interval=60, batch_size=4)
    task = asyncio.create_task(writer.run())
    try:
        for n in range(10):
            writer.record(event(n))
        await wait_for(lambda: writer.written >= 8)
    finally:
        await writer.close()
        await task

    assert all(len(batch) <= 4 for batch in sink.batches)
    assert [len(b) for b in sink.batches][:2] == [4, 4]
    assert sink.written == list(range(10))


class SlowSink(MemorySink):
    """Takes ``seconds`` per write, as a database write through a busy event loop does."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def __call__(self, events: Sequence[AuthEvent]) -> None:
        await asyncio.sleep(self.seconds)
        await super().__call__(events)


async def test_entries_arriving_during_a_write_wait_for_the_next_interval() -> None:
    # A steady trickle (one entry every 5 ms) and writes of 20 ms: the writer must not chase
    # what arrives while it writes with one small write after another.
    sink = SlowSink(0.02)
    writer = AuthLogWriter(sink, flush_interval=0.25)
    task = asyncio.create_task(writer.run())
    try:
        for n in range(120):  # 0.6 s
            writer.record(event(n))
            await asyncio.sleep(0.005)
    finally:
        await writer.close()
        await task

    # About one write per interval (0.6 s / 0.25 s) and the one of close().
    assert sink.calls <= 5, [len(batch) for batch in sink.batches]
    assert sink.written == list(range(120))


async def test_failing_sink_keeps_events_and_retries() -> None:
    sink = MemorySink(failures=2)
    writer = AuthLogWriter(sink, flush_interval=0.01)
    task = asyncio.create_task(writer.run())
    try:
        writer.record(event(1))
        writer.record(event(2))
        await wait_for(lambda: writer.written == 2, seconds=5)
        writer.record(event(3))
        await wait_for(lambda: writer.written == 3)
    finally:
        await writer.close()
        await task

    assert sink.calls >= 4
    assert sink.written == [1, 2, 3]
    assert writer.dropped == 0


async def test_failing_sink_keeps_the_bound_and_drops_the_oldest() -> None:
    sink = MemorySink(failures=1)
    writer = AuthLogWriter(sink, max_pending=3, batch_size=3)
    for n in range(3):
        writer.record(event(n))

    assert await writer.flush() is False  # the batch 0,1,2 is out while the sink fails ...
    assert writer.pending == 3
    writer.record(event(3))  # ... and newer events arrive while it is requeued

    assert writer.pending == 3
    assert writer.dropped == 1
    assert await writer.flush() is True
    assert sink.written == [1, 2, 3]


async def test_requeue_after_failure_never_exceeds_the_bound() -> None:
    writer = AuthLogWriter(MemorySink(failures=1), max_pending=4, batch_size=4)
    for n in range(4):
        writer.record(event(n))
    original = writer._sink

    async def fill_then_fail(events: Sequence[AuthEvent]) -> None:
        for n in range(10, 14):  # the queue refills while the batch is being written
            writer.record(event(n))
        await original(events)

    writer._sink = fill_then_fail

    assert await writer.flush() is False
    assert writer.pending == 4
    assert writer.dropped == 4


async def test_close_flushes_what_is_left() -> None:
    sink = MemorySink()
    writer = AuthLogWriter(sink, flush_interval=60)
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0)
    for n in range(7):
        writer.record(event(n, accept=n % 2 == 0))

    await writer.close()
    await asyncio.wait_for(task, 1)

    assert sink.written == list(range(7))
    assert writer.written == 7


async def test_close_without_run_flushes_too() -> None:
    sink = MemorySink()
    writer = AuthLogWriter(sink)
    writer.record(event(1))

    await writer.close()

    assert sink.written == [1]


async def test_close_gives_up_after_its_timeout() -> None:
    async def hangs(events: Sequence[AuthEvent]) -> None:
        await asyncio.sleep(60)

    writer = AuthLogWriter(hangs, close_timeout=0.05)
    writer.record(event(1))

    async with asyncio.timeout(2):
        await writer.close()

    assert writer.written == 0


async def test_close_ends_a_retry_backoff_at_once() -> None:
    sink = MemorySink(failures=1000)
    writer = AuthLogWriter(sink, flush_interval=0.01, close_timeout=0.2)
    task = asyncio.create_task(writer.run())
    writer.record(event(1))
    await wait_for(lambda: sink.calls >= 3, seconds=5)

    async with asyncio.timeout(2):
        await writer.close()
        await task

    assert writer.pending == 1  # still failing: kept, and reported by close()


async def test_purge_runs_at_start_and_every_interval() -> None:
    calls: list[tuple[datetime, int]] = []

    async def purge(*, older_than: datetime, max_rows: int) -> int:
        calls.append((older_than, max_rows))
        return 3

    writer = AuthLogWriter(
        MemorySink(),
        purge=purge,
        retention_days=7,
        max_rows=1000,
        flush_interval=0.01,
        purge_interval=0.05,
        clock=lambda: NOW,
    )
    task = asyncio.create_task(writer.run())
    try:
        await wait_for(lambda: len(calls) >= 2)
    finally:
        await writer.close()
        await task

    assert calls[0] == (NOW - timedelta(days=7), 1000)
    assert writer.purged >= 6


async def test_purge_soon_purges_after_the_next_write_not_at_the_interval() -> None:
    calls: list[int] = []

    async def purge(*, older_than: datetime, max_rows: int) -> int:
        calls.append(max_rows)
        return 0

    writer = AuthLogWriter(MemorySink(), purge=purge, flush_interval=0.01, purge_interval=3600)
    task = asyncio.create_task(writer.run())
    try:
        await wait_for(lambda: len(calls) == 1)  # the one at start
        await asyncio.sleep(0.05)
        assert len(calls) == 1  # the next one is an hour away
        writer.purge_soon()  # the auth log started a new table
        await wait_for(lambda: len(calls) == 2)
    finally:
        await writer.close()
        await task


async def test_a_failing_purge_does_not_stop_the_writer() -> None:
    async def purge(*, older_than: datetime, max_rows: int) -> int:
        raise ConnectionError("database is down")

    sink = MemorySink()
    writer = AuthLogWriter(sink, purge=purge, flush_interval=0.01, purge_interval=0.01)
    task = asyncio.create_task(writer.run())
    try:
        writer.record(event(1))
        await wait_for(lambda: writer.written == 1)
    finally:
        await writer.close()
        await task

    assert not task.cancelled() and task.exception() is None


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        AuthLogWriter(MemorySink(), max_pending=0)
