"""Quota usage written with accounting: counted once, and a crossing reported by exactly one
transaction, even when several commit at the same moment (nodes sharing PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import migrated_database
from radius_contracts.db.engine import create_engine, session_factory
from radius_contracts.db.models import Contract, Manufacturer, Nas, QuotaUsage
from radius_contracts.plans import QuotaCounts
from radius_contracts.store import accounting
from radius_contracts.store.accounting import START, AcctRecord, QuotaTarget

TODAY = date(2026, 12, 1)
CAP = 100


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from migrated_database(request, tmp_path_factory, "quota")


async def _setup(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessions() as session, session.begin():
        maker = Manufacturer(name="m")
        session.add(maker)
        await session.flush()
        nas = Nas(name="n", address="192.0.2.1", secret="x" * 12, manufacturer_id=maker.id)
        contract = Contract(
            number="C-1",
            status="active",
            auto_extend=False,
            username="u",
            username_key="u",
            custom_fields={},
            customer_custom_fields={},
        )
        session.add_all([nas, contract])
        await session.flush()
        return nas.id, contract.id


def _target(_contract_id: int, _at: datetime) -> QuotaTarget:
    return QuotaTarget(TODAY, TODAY + timedelta(days=31), QuotaCounts.BOTH, CAP)


def _record(nas_id: int, contract_id: int, key: str, octets: int) -> AcctRecord:
    return AcctRecord(
        kind=START if octets == 0 else 3,
        nas_id=nas_id,
        at=datetime.now(UTC),
        key=key,
        contract_id=contract_id,
        username="u",
        session_time=10,
        input_octets=octets // 2,
        output_octets=octets - octets // 2,
    )


async def _apply(
    sessions: async_sessionmaker[AsyncSession], records: list[AcctRecord]
) -> list[tuple[int, date]]:
    async with sessions() as session, session.begin():
        applied = await accounting.apply(session, records, _target)
    return applied.quota_over


async def _sequential(url: str) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        nas_id, contract_id = await _setup(sessions)
        assert await _apply(sessions, [_record(nas_id, contract_id, "a", 0)]) == []
        assert await _apply(sessions, [_record(nas_id, contract_id, "a", 60)]) == []
        # 60 + 40 = the cap: crossed, reported by this batch.
        assert await _apply(sessions, [_record(nas_id, contract_id, "a", 100)]) == [
            (contract_id, TODAY)
        ]
        # Past it, and a retransmitted Interim (no delta): nothing more is reported.
        assert await _apply(sessions, [_record(nas_id, contract_id, "a", 150)]) == []
        assert await _apply(sessions, [_record(nas_id, contract_id, "a", 150)]) == []
        async with sessions() as session:
            row = (await session.scalars(select(QuotaUsage))).one()
        assert (row.used_bytes, row.state, row.period_end) == (150, "over", date(2027, 1, 1))
    finally:
        await engine.dispose()


def test_usage_is_counted_once_and_the_crossing_reported_once(url: str) -> None:
    asyncio.run(_sequential(url))


async def _racing(url: str) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        nas_id, contract_id = await _setup(sessions)
        for key in "abc":
            await _apply(sessions, [_record(nas_id, contract_id, key, 0)])
        # Three transactions at once, 40 bytes each: the cap is crossed in one of them.
        results = await asyncio.gather(
            *(_apply(sessions, [_record(nas_id, contract_id, key, 40)]) for key in "abc")
        )
        assert sorted(len(reported) for reported in results) == [0, 0, 1]
    finally:
        await engine.dispose()


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def pg_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from migrated_database(request, tmp_path_factory, "quota_race")


def test_racing_transactions_report_a_crossing_once(pg_url: str) -> None:
    # PostgreSQL: the transactions really run side by side (SQLite has one writer at a time).
    asyncio.run(_racing(pg_url))
