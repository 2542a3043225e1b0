"""The history purge: sessions closed before history_days and daily usage before usage_days go
in bounded batches (one short transaction each), newer history stays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from conftest import Factory, RunningDaemon
from radius_contracts import jobs as jobs_module
from radius_contracts.db.models import AcctSession, UsageDaily


def _count(daemon: RunningDaemon, model: type, *where: object) -> int:
    assert daemon.daemon.services is not None
    context = daemon.daemon.services.context

    async def count() -> int:
        async with context.sessions() as session:
            found = await session.scalar(select(func.count()).select_from(model).where(*where))
            return int(found or 0)

    result: int = daemon.run(count())
    return result


def test_old_history_goes_in_bounded_batches_and_new_history_stays(
    daemon: RunningDaemon, make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert daemon.daemon.services is not None and daemon.daemon.session_jobs is not None
    context = daemon.daemon.services.context
    settings = daemon.settings.accounting
    contract = make.contract()
    now = datetime.now(UTC)
    old_stop = now - timedelta(days=settings.history_days + 3)
    old_day = (now - timedelta(days=settings.usage_days + 3)).date()
    tag = f"purge-{contract['id']}-"

    def session_row(n: int, stopped: datetime | None) -> dict[str, object]:
        started = (stopped or now) - timedelta(hours=1)
        return {
            "contract_id": contract["id"], "username": contract["config"]["username"],
            "acct_session_id": f"{tag}{n}", "acct_unique_id": f"{tag}{n}",
            "started_at": started, "updated_at": started, "stopped_at": stopped,
            "session_time": 3600, "input_octets": 1, "output_octets": 1,
            "input_packets": 1, "output_packets": 1,
        }  # fmt: skip

    def usage_row(day: date) -> dict[str, object]:
        return {"contract_id": contract["id"], "day": day, "input_octets": 1,
                "output_octets": 1, "session_time": 1}  # fmt: skip

    async def seed() -> None:
        async with context.transaction() as session:
            old = [session_row(n, old_stop - timedelta(minutes=n)) for n in range(23)]
            recent = [session_row(100, now - timedelta(days=1)), session_row(101, None)]
            await session.execute(insert(AcctSession), old + recent)
            days = [old_day - timedelta(days=n) for n in range(17)] + [now.date()]
            await session.execute(insert(UsageDaily), [usage_row(day) for day in days])

    daemon.run(seed())
    mine = AcctSession.acct_session_id.like(f"{tag}%")
    usage = UsageDaily.contract_id == contract["id"]
    assert _count(daemon, AcctSession, mine) == 25 and _count(daemon, UsageDaily, usage) == 18

    batches: list[int] = []
    purge_sessions = jobs_module.store.purge_sessions

    async def counted(session: object, before: datetime, limit: int) -> int:
        batches.append(limit)
        return await purge_sessions(session, before, limit)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs_module, "PURGE_BATCH", 5)
    monkeypatch.setattr(jobs_module, "PURGE_PAUSE", 0.0)
    monkeypatch.setattr(jobs_module.store, "purge_sessions", counted)
    deleted = daemon.run(daemon.daemon.session_jobs.purge_history())

    assert deleted == 23
    assert batches == [5] * 5  # 5 + 5 + 5 + 5 + 3: never more than a batch at once
    left = daemon.run(_names(daemon, tag))
    assert left == {f"{tag}100", f"{tag}101"}  # closed yesterday, and still open
    assert _count(daemon, UsageDaily, usage) == 1  # today's
    assert _count(daemon, UsageDaily, usage, UsageDaily.day == now.date()) == 1


async def _names(daemon: RunningDaemon, tag: str) -> set[str]:
    assert daemon.daemon.services is not None
    async with daemon.daemon.services.context.sessions() as session:
        found = await session.scalars(
            select(AcctSession.acct_session_id).where(AcctSession.acct_session_id.like(f"{tag}%"))
        )
        return set(found)
