"""AccountingWriter on a real event loop: its commit delay with an in-memory sink, and chains
of batches on SQLite's real write thread."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from radius_contracts.aaa.accounting_writer import AccountingWriter
from radius_contracts.db.sqlite_writer import SqliteWriter
from radius_contracts.store.accounting import START, AcctRecord, Applied

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Sink:
    def __init__(self) -> None:
        self.batches: list[int] = []

    async def __call__(self, records: list[AcctRecord]) -> Applied:
        self.batches.append(len(records))
        return Applied()


async def _run(writer: AccountingWriter, records: int, gap: float) -> list[bool]:
    """Submit ``records`` records ``gap`` seconds apart; wait until all are answered."""
    answers: list[bool] = []
    everything = asyncio.Event()

    def done(ok: bool) -> None:
        answers.append(ok)
        if len(answers) == records:
            everything.set()

    task = asyncio.create_task(writer.run())
    try:
        for n in range(records):
            assert writer.submit(AcctRecord(kind=START, nas_id=1, at=NOW, key=f"s{n}"), done)
            if gap:
                await asyncio.sleep(gap)
        async with asyncio.timeout(2):
            await everything.wait()
    finally:
        await writer.close(1.0)
        await task
    return answers


async def test_a_few_records_wait_for_more_to_share_a_commit() -> None:
    sink = Sink()
    answers = await _run(AccountingWriter(sink, commit_delay=0.2), records=3, gap=0.02)
    assert answers == [True] * 3
    assert sink.batches == [3]


async def test_without_a_delay_each_record_commits_at_once() -> None:
    sink = Sink()
    await _run(AccountingWriter(sink, commit_delay=0.0), records=3, gap=0.02)
    assert sink.batches == [1, 1, 1]


async def test_a_long_queue_commits_without_waiting() -> None:
    sink = Sink()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await _run(AccountingWriter(sink, commit_delay=1.0), records=40, gap=0.0)
    # Queued at once: 40 is enough for one commit, so no 1 s wait.
    assert sink.batches == [40]
    assert loop.time() - started < 0.5


class Chained:
    """A BatchChain over SQLite's real write thread: each record's key becomes a row; a key
    starting with "bad" breaks a CHECK constraint (a record the database refuses)."""

    def __init__(self, path: Path) -> None:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE r (key TEXT NOT NULL CHECK (key NOT LIKE 'bad%'))")
        self.path = path
        self.writer = SqliteWriter(str(path), "NORMAL")
        self.chains: list[int] = []  # batches written per chain
        self.batches: list[int] = []  # records per batch, in commit order (loop's view)
        self.follow_pause = 0.0  # seconds the thread waits before taking the next batch
        self.failed_at: list[int] = []  # where in its chain each failed batch was (0: first)

    @staticmethod
    def _work(records: list[AcctRecord]) -> Callable[[sqlite3.Connection], Applied]:
        def work(connection: sqlite3.Connection) -> Applied:
            connection.executemany("INSERT INTO r (key) VALUES (?)", [(r.key,) for r in records])
            return Applied()

        return work

    async def __call__(
        self,
        records: list[AcctRecord],
        following: Callable[[], list[AcctRecord] | None],
        committed: Callable[[Applied], None],
    ) -> Exception | None:
        sizes = [len(records)]

        def follow() -> Callable[[sqlite3.Connection], Applied] | None:
            time.sleep(self.follow_pause)
            more = following()
            if more is None:
                return None
            sizes.append(len(more))
            return self._work(more)

        def done(applied: Applied) -> None:
            self.batches.append(sizes[len(self.batches) - sum(self.chains)])
            committed(applied)

        failed = await self.writer.run_chain(self._work(records), follow, done)
        self.chains.append(len(sizes) - (failed is not None))
        if failed is not None:
            self.failed_at.append(len(sizes) - 1)
        return None if failed is None else failed[1]

    async def sink(self, records: list[AcctRecord]) -> Applied:
        """The single-batch path (after a failure: the halves)."""
        return await self.writer.run(self._work(records))

    def keys(self) -> list[str]:
        with sqlite3.connect(self.path) as db:
            return [key for (key,) in db.execute("SELECT key FROM r ORDER BY rowid")]


async def _submit_all(writer: AccountingWriter, keys: list[str]) -> dict[str, bool]:
    answers: dict[str, bool] = {}
    everything = asyncio.Event()

    def answer(key: str) -> Callable[[bool], None]:
        def done(ok: bool) -> None:
            answers[key] = ok
            if len(answers) == len(keys):
                everything.set()

        return done

    task = asyncio.create_task(writer.run())
    try:
        for n, key in enumerate(keys):
            record = AcctRecord(kind=START, nas_id=1, at=NOW, key=key)
            assert writer.submit(record, answer(key))
            if n % 10 == 9:
                await asyncio.sleep(0.005)  # arrivals spread over several commits
        async with asyncio.timeout(5):
            await everything.wait()
        assert writer.pending == 0
    finally:
        await writer.close(1.0)
        await task
    return answers


async def test_a_chain_writes_what_arrives_meanwhile_without_returning_to_the_loop(
    tmp_path: Path,
) -> None:
    chained = Chained(tmp_path / "a.db")
    chained.follow_pause = 0.01  # records arrive while the thread is between batches
    writer = AccountingWriter(chained.sink, chain=chained)
    keys = [f"s{n}" for n in range(100)]
    try:
        answers = await _submit_all(writer, keys)
    finally:
        await asyncio.to_thread(chained.writer.close)
    assert answers == dict.fromkeys(keys, True)
    assert chained.keys() == keys  # arrival order
    assert sum(chained.chains) > len(chained.chains)  # some chain wrote more than one batch
    assert writer.records == 100 and writer.batches == len(chained.batches)


async def test_a_batch_refused_inside_a_chain_is_split_and_only_the_bad_record_unanswered(
    tmp_path: Path,
) -> None:
    chained = Chained(tmp_path / "a.db")
    chained.follow_pause = 0.01
    writer = AccountingWriter(
        chained.sink, chain=chained, is_data_error=lambda exc: isinstance(exc, sqlite3.Error)
    )
    keys = [f"s{n}" for n in range(60)]
    keys[45] = "bad45"  # in a batch a chain takes, not the first
    try:
        answers = await _submit_all(writer, keys)
    finally:
        await asyncio.to_thread(chained.writer.close)
    assert answers == {key: key != "bad45" for key in keys}
    assert len(chained.failed_at) == 1 and chained.failed_at[0] >= 1  # a batch the thread took
    assert chained.keys() == [key for key in keys if key != "bad45"]
    assert writer.failed == 1


async def test_a_stop_during_a_chain_answers_every_record_once(tmp_path: Path) -> None:
    """close() gives up what is still queued when its grace runs out while the thread keeps
    taking batches: each record is answered once, True if written, False if given up."""
    chained = Chained(tmp_path / "a.db")
    chained.follow_pause = 0.02  # slower than close()'s grace allows for 2,000 records
    writer = AccountingWriter(chained.sink, chain=chained, max_batch=50)
    answers: dict[str, list[bool]] = {}
    keys = [f"s{n}" for n in range(2_000)]
    everything = asyncio.Event()

    def answer(key: str) -> Callable[[bool], None]:
        def done(ok: bool) -> None:
            answers.setdefault(key, []).append(ok)
            if len(answers) == len(keys):
                everything.set()

        return done

    task = asyncio.create_task(writer.run())
    try:
        for key in keys:
            assert writer.submit(AcctRecord(kind=START, nas_id=1, at=NOW, key=key), answer(key))
        await asyncio.sleep(0.05)  # the chain is under way
        assert not await writer.close(0.1)
        await task
        async with asyncio.timeout(5):
            await everything.wait()  # batches the thread took before the stop commit too
    finally:
        await asyncio.to_thread(chained.writer.close)
    assert all(len(given) == 1 for given in answers.values())
    written = set(chained.keys())
    assert {key for key, given in answers.items() if given == [True]} == written
    assert 0 < len(written) < len(keys)
    assert writer.pending == 0
