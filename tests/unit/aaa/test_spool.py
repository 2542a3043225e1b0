"""The accounting spool on real files: order, segments, what a crash leaves, the size limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from radius_contracts.aaa import spool as spool_module
from radius_contracts.aaa.spool import AccountingSpool, SpoolFull
from radius_contracts.store.accounting import AcctRecord

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def segments(directory: Path) -> list[Path]:
    return list(directory.glob("*.jsonl"))


def record(n: int) -> AcctRecord:
    return AcctRecord(
        kind=3,
        nas_id=1,
        at=T0 + timedelta(seconds=n),
        key=f"S-{n}",
        contract_id=n % 7 or None,
        username=f"user-{n} ünïcode",
        input_octets=n * 1000,
        framed_ip="100.64.0.1",
    )


async def drain(spool: AccountingSpool, limit: int = 7) -> list[AcctRecord]:
    out: list[AcctRecord] = []
    for _ in range(1_000):  # bounded: a spool that never empties fails the test
        chunk = await spool.read(limit)
        if chunk is None:
            return out
        out += chunk.records
        await spool.done(chunk)
    raise AssertionError("the spool did not empty")


def test_records_come_back_in_order_and_identical(tmp_path: Path) -> None:
    async def run() -> None:
        spool = AccountingSpool(tmp_path)
        assert spool.open() == 0
        await spool.append([record(n) for n in range(10)])
        await spool.append([record(n) for n in range(10, 25)])
        assert spool.pending == 25
        assert await drain(spool) == [record(n) for n in range(25)]
        assert spool.pending == 0
        assert not segments(tmp_path), "replayed segments are deleted"

    asyncio.run(run())


def test_appends_during_replay_go_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 2_000)  # a few records per segment

    async def run() -> None:
        spool = AccountingSpool(tmp_path)
        spool.open()
        for n in range(0, 20, 4):  # a segment is sealed after the append that fills it
            await spool.append([record(m) for m in range(n, n + 4)])
        assert len(segments(tmp_path)) > 1
        seen: list[AcctRecord] = []
        chunk = await spool.read(5)
        assert chunk is not None
        seen += chunk.records
        await spool.done(chunk)
        await spool.append([record(n) for n in range(20, 30)])  # arrives mid-replay
        seen += await drain(spool)
        assert [r.key for r in seen] == [f"S-{n}" for n in range(30)]

    asyncio.run(run())


def test_a_restart_finds_what_was_not_replayed(tmp_path: Path) -> None:
    async def first_run() -> None:
        spool = AccountingSpool(tmp_path)
        spool.open()
        await spool.append([record(n) for n in range(10)])
        chunk = await spool.read(4)
        assert chunk is not None
        await spool.done(chunk)  # 4 replayed, then the process stops
        spool.close()

    asyncio.run(first_run())
    # The process died in the middle of an append: a line without its newline.
    segment = sorted(tmp_path.glob("*.jsonl"))[-1]
    with segment.open("ab") as fh:
        fh.write(b'{"kind":3,"nas_id":1,"at":"2026-11-')

    async def second_run() -> None:
        spool = AccountingSpool(tmp_path)
        assert spool.open() == 6
        assert [r.key for r in await drain(spool)] == [f"S-{n}" for n in range(4, 10)]
        assert spool.pending == 0
        assert not segments(tmp_path)

    asyncio.run(second_run())


def test_full_spool_refuses(tmp_path: Path) -> None:
    async def run() -> None:
        spool = AccountingSpool(tmp_path, max_bytes=1_000)
        spool.open()
        await spool.append([record(1)])
        with pytest.raises(SpoolFull):
            await spool.append([record(n) for n in range(10)])
        assert spool.pending == 1  # what was refused is not counted as spooled

    asyncio.run(run())
