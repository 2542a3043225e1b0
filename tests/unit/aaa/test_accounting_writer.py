"""AccountingWriter's commit delay on a real event loop with an in-memory sink."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from radius_contracts.aaa.accounting import AccountingWriter
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
