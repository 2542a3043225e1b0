"""Shared job rows: the statements by which daemon nodes agree who runs a job, and its record.

Every write is one statement whose WHERE re-checks what it relies on, so the statement decides
when nodes race on one database. SQLite: a writing statement takes the write lock before it
reads its row. PostgreSQL (READ COMMITTED): an UPDATE whose row a concurrent transaction
changed re-evaluates its WHERE on the new version; INSERT … ON CONFLICT DO NOTHING waits for a
concurrent insert of the same key, then does nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import JobState

__all__ = ["claim", "ensure", "extend", "finish", "release", "rows"]

# Nothing of these rows is loaded in the sessions that write them: no need to sync objects.
_NO_SYNC = {"synchronize_session": False}


async def ensure(
    session: AsyncSession, first: Mapping[str, datetime | None]
) -> dict[str, datetime | None]:
    """Create the rows of jobs that have none (next run at ``first[name]``); returns every
    job's stored next run, which the rows that existed already keep."""
    if first:
        values = [{"name": name, "next_run_at": at, "runs": 0} for name, at in first.items()]
        if (await session.connection()).dialect.name == "postgresql":
            stmt: Any = postgresql.insert(JobState).values(values).on_conflict_do_nothing()
        else:
            stmt = sqlite.insert(JobState).values(values).on_conflict_do_nothing()
        await session.execute(stmt)
    found = await session.execute(
        select(JobState.name, JobState.next_run_at).where(JobState.name.in_(list(first)))
    )
    return {name: at for name, at in found}


async def claim(
    session: AsyncSession, name: str, node: str, now: datetime, until: datetime, due_by: datetime
) -> bool:
    """Take the job for ``node`` until ``until`` if nobody holds it and it is due by ``due_by``."""
    stmt = (
        update(JobState)
        .where(
            JobState.name == name,
            or_(JobState.locked_until.is_(None), JobState.locked_until < now),
            or_(JobState.next_run_at.is_(None), JobState.next_run_at <= due_by),
        )
        .values(locked_by=node, locked_until=until, last_started_at=now)
        .execution_options(**_NO_SYNC)
    )
    return _changed(await session.execute(stmt))


async def extend(session: AsyncSession, name: str, node: str, until: datetime) -> bool:
    """Keep holding a job that is still running; False when ``node`` no longer holds it."""
    stmt = (
        update(JobState)
        .where(JobState.name == name, JobState.locked_by == node)
        .values(locked_until=until)
        .execution_options(**_NO_SYNC)
    )
    return _changed(await session.execute(stmt))


async def finish(
    session: AsyncSession,
    name: str,
    node: str,
    *,
    next_run_at: datetime | None,
    finished_at: datetime,
    result: int | dict[str, Any] | None,
    error: str | None,
) -> bool:
    """Record a run and let go of the job; False (nothing written) when ``node`` lost it."""
    stmt = (
        update(JobState)
        .where(JobState.name == name, JobState.locked_by == node)
        .values(
            next_run_at=next_run_at,
            runs=JobState.runs + 1,
            last_finished_at=finished_at,
            last_node=node,
            last_result=result,
            last_error=error,
            locked_by=None,
            locked_until=None,
        )
        .execution_options(**_NO_SYNC)
    )
    return _changed(await session.execute(stmt))


async def release(session: AsyncSession, node: str) -> int:
    """Let go of every job ``node`` holds, unrecorded (it stops); returns how many."""
    stmt = (
        update(JobState)
        .where(JobState.locked_by == node)
        .values(locked_by=None, locked_until=None)
        .execution_options(**_NO_SYNC)
    )
    return cast(CursorResult[Any], await session.execute(stmt)).rowcount


async def rows(session: AsyncSession, names: Collection[str]) -> Sequence[JobState]:
    return (await session.scalars(select(JobState).where(JobState.name.in_(list(names))))).all()


def _changed(result: Any) -> bool:
    return cast(CursorResult[Any], result).rowcount == 1
