"""Lease queries: the statements that hand out, confirm, release and expire pool addresses.

No rules here (aaa.pools decides what to try in which order); each writing statement re-checks
in its own WHERE that the row is still what the caller saw, so the statement itself is the
arbiter when daemon nodes race on one database. A lease row is held while ``expires_at`` is in
the future, whatever its state says; every write below sets ``expires_at``.

SQLite: a writing statement takes the database's write lock when it starts, so it cannot act
on a row another connection changed since. PostgreSQL (READ COMMITTED): an UPDATE that finds
its row changed by a concurrent transaction re-evaluates its WHERE on the new version; an
INSERT … ON CONFLICT DO NOTHING waits for a concurrent insert of the same key, then does
nothing.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    column,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import Lease, Pool
from radius_contracts.store.driver import placeholders, timestamp

__all__ = [
    "BOUND",
    "EXPIRED",
    "OFFERED",
    "RELEASED",
    "bind",
    "canonical",
    "existing",
    "expire",
    "held_by_pool",
    "insert",
    "own",
    "reclaimable",
    "release",
    "retake",
    "take",
    "usage",
]

OFFERED = "offered"  # Access-Accept sent, waiting for Accounting-Start
BOUND = "bound"  # Accounting-Start (or Interim-Update) seen
RELEASED = "released"  # Accounting-Stop seen
EXPIRED = "expired"  # the expiry job found it past its time

LEASES = cast(Table, Lease.__table__)
_POOLS = cast(Table, Pool.__table__)
_c = LEASES.c


def _held(now: Any) -> ColumnElement[bool]:
    held: ColumnElement[bool] = _c.expires_at > now
    return held


def _free(now: Any) -> ColumnElement[bool]:
    return or_(_c.expires_at.is_(None), _c.expires_at <= now)


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def canonical(address: str) -> str | None:
    """The form leases store ("10.0.0.5", "2001:db8:0:1::/64"), or None if it is no address."""
    try:
        if "/" in address:
            return str(ipaddress.ip_network(address.strip(), strict=False))
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


async def own(
    session: AsyncSession,
    pool_id: int,
    contract_id: int,
    now: datetime,
    *,
    free_only: bool,
    limit: int = 8,
) -> list[tuple[int, str]]:
    """The contract's lease rows in the pool, as (id, address), the latest expiry first."""
    stmt = select(_c.id, _c.address).where(_c.pool_id == pool_id, _c.contract_id == contract_id)
    if free_only:
        stmt = stmt.where(_free(now))
    stmt = stmt.order_by(_c.expires_at.desc(), _c.id.desc()).limit(limit)
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def retake(
    session: AsyncSession,
    lease_id: int,
    contract_id: int,
    now: datetime,
    until: datetime,
    *,
    free_only: bool,
) -> str | None:
    """Offer the contract its own row again; the address, or None when the row moved on.

    A row the contract still holds stays held at least as long as before: this is the same
    subscriber authenticating again, and its old session may be alive until its Stop. The
    state becomes ``offered`` so that this late Stop (which releases only ``bound`` rows)
    leaves the new session's address alone; its Accounting-Start binds it again.
    """
    held = _held(now)
    stmt = (
        update(LEASES)
        .where(_c.id == lease_id, _c.contract_id == contract_id)
        .values(
            state=OFFERED,
            session_id=case((held, _c.session_id), else_=None),
            leased_at=case((held, _c.leased_at), else_=now),
            expires_at=case((and_(held, _c.expires_at > until), _c.expires_at), else_=until),
        )
        .returning(_c.address)
    )
    if free_only:
        stmt = stmt.where(_free(now))
    found: str | None = (await session.execute(stmt)).scalar()
    return found


async def existing(session: AsyncSession, pool_id: int, addresses: Collection[str]) -> set[str]:
    """Which of ``addresses`` have a lease row in the pool (leased at some time)."""
    if not addresses:
        return set()
    # Thousands at once when a node walks a pool that is mostly leased: one array (or JSON)
    # parameter instead of an IN list costs a fifth on PostgreSQL and half on SQLite.
    if (await session.connection()).dialect.name == "postgresql":
        wanted: Any = any_(bindparam("addresses", list(addresses), type_=ARRAY(String)))
        stmt = select(_c.address).where(_c.pool_id == pool_id, _c.address == wanted)
    else:
        values: Select[Any] = select(column("value")).select_from(
            func.json_each(bindparam("addresses", json.dumps(list(addresses))))
        )
        stmt = select(_c.address).where(_c.pool_id == pool_id, _c.address.in_(values))
    return set((await session.scalars(stmt)).all())


async def insert(
    session: AsyncSession,
    pool_id: int,
    address: str,
    contract_id: int,
    now: datetime,
    until: datetime,
) -> bool:
    """Create the first lease of ``address``; False when a row for it exists already."""
    dialect = (await session.connection()).dialect.name
    values = {
        "pool_id": pool_id,
        "address": address,
        "contract_id": contract_id,
        "state": OFFERED,
        "leased_at": now,
        "expires_at": until,
    }
    # The unique (pool_id, address) constraint decides which of two racing inserts wins.
    if dialect == "postgresql":
        pg = postgresql.insert(LEASES).values(values)
        stmt: Any = pg.on_conflict_do_nothing(index_elements=["pool_id", "address"])
    else:
        lite = sqlite.insert(LEASES).values(values)
        stmt = lite.on_conflict_do_nothing(index_elements=["pool_id", "address"])
    result = await session.execute(stmt.returning(_c.id))
    return result.first() is not None


async def reclaimable(
    session: AsyncSession,
    pool_id: int,
    now: datetime,
    *,
    limit: int = 1,
    skip: Collection[int] = (),
    lock: bool = True,
) -> list[tuple[int, str]]:
    """Free rows of the pool, as (id, address), the longest expired first.

    With ``lock``, on PostgreSQL, the rows are locked for the caller's transaction and rows
    other transactions have locked are skipped: concurrent callers get different rows.
    SQLite has no row locks (the clause is compiled away there).
    """
    stmt = (
        select(_c.id, _c.address)
        # Only ``<=``: with ix_leases_pool_expiry this is a range scan in expiry order.
        .where(_c.pool_id == pool_id, _c.expires_at <= now)
        .order_by(_c.expires_at, _c.id)
        .limit(limit)
    )
    if lock:
        stmt = stmt.with_for_update(skip_locked=True)
    if skip:
        stmt = stmt.where(_c.id.notin_(list(skip)))
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def take(
    session: AsyncSession,
    lease_id: int,
    contract_id: int,
    now: datetime,
    until: datetime,
) -> str | None:
    """Give a free row to the contract; the address, or None when someone holds it now."""
    stmt = (
        update(LEASES)
        .where(_c.id == lease_id, _free(now))
        .values(
            contract_id=contract_id,
            state=OFFERED,
            session_id=None,
            leased_at=now,
            expires_at=until,
        )
        .returning(_c.address)
    )
    found: str | None = (await session.execute(stmt)).scalar()
    return found


async def any_expiring(session: AsyncSession, now: datetime) -> bool:
    """Whether expire would change anything: a read, which takes no write lock."""
    stmt = select(_c.id).where(_c.state.in_((OFFERED, BOUND)), _c.expires_at <= now).limit(1)
    return (await session.execute(stmt)).first() is not None


async def expire(session: AsyncSession, now: datetime) -> int:
    """Mark offered and bound leases whose time passed as expired; returns how many."""
    stmt = (
        update(LEASES)
        .where(_c.state.in_((OFFERED, BOUND)), _c.expires_at <= now)
        .values(state=EXPIRED, session_id=None)
    )
    return _rowcount(await session.execute(stmt))


def _managed() -> ColumnElement[bool]:
    return _c.pool_id.in_(select(_POOLS.c.id).where(_POOLS.c.mode == "managed"))


_MANAGED_POOLS = "pool_id IN (SELECT id FROM pools WHERE mode = 'managed')"


def bind_batch(
    dialect: str, paramstyle: str, now: datetime, items: Sequence[tuple[int, str, int]]
) -> tuple[str, list[tuple[Any, ...]]] | None:
    """Accounting-Start / Interim-Update: each (contract_id, address, lease_time seconds).

    The contract's lease of that address in a managed pool becomes ``bound`` until
    ``now + lease_time``: also after its offer ran out, as long as no other contract took the
    address since. Addresses that are no lease of that contract (fixed addresses, NAS pools,
    foreign ones) change nothing. Driver-level SQL and rows (executemany), for the accounting
    writer's own transaction, whichever driver it runs on.
    """
    rows = []
    for contract_id, address, lease_time in items:
        text = canonical(address)
        if text is not None:
            until = now + timedelta(seconds=lease_time)
            stamp, until_stamp = timestamp(dialect, now), timestamp(dialect, until)
            rows.append((stamp, stamp, until_stamp, contract_id, text))
    if not rows:
        return None
    m_held, m_since, m_until, m_contract, m_address = placeholders(paramstyle, 5)
    sql = (
        f"UPDATE leases SET state = '{BOUND}', "  # noqa: S608 - our names
        f"leased_at = CASE WHEN expires_at > {m_held} THEN leased_at ELSE {m_since} END, "
        f"expires_at = {m_until} "
        f"WHERE contract_id = {m_contract} AND address = {m_address} AND {_MANAGED_POOLS}"
    )
    return sql, rows


def release_batch(
    dialect: str, paramstyle: str, now: datetime, items: Sequence[tuple[int, str]]
) -> tuple[str, list[tuple[Any, ...]]] | None:
    """Accounting-Stop: each (contract_id, address) that is bound becomes ``released`` now.

    The row keeps its contract, which gets the address back next time (sticky). An ``offered``
    row is left alone: the contract authenticated again after this session, and the new
    session will use the address.
    """
    rows = []
    for contract_id, address in items:
        text = canonical(address)
        if text is not None:
            rows.append((timestamp(dialect, now), contract_id, text))
    if not rows:
        return None
    expires, contract, address = placeholders(paramstyle, 3)
    sql = (
        f"UPDATE leases SET state = '{RELEASED}', session_id = NULL, "  # noqa: S608
        f"expires_at = {expires} WHERE contract_id = {contract} AND address = {address} "
        f"AND state = '{BOUND}' AND {_MANAGED_POOLS}"
    )
    return sql, rows


async def bind(session: AsyncSession, now: datetime, items: Sequence[tuple[int, str, int]]) -> None:
    """:func:`bind_batch` in the caller's transaction."""
    connection = await session.connection()
    batch = bind_batch(connection.dialect.name, connection.dialect.paramstyle, now, items)
    if batch is not None:
        await connection.exec_driver_sql(*batch)


async def release(session: AsyncSession, now: datetime, items: Sequence[tuple[int, str]]) -> None:
    """:func:`release_batch` in the caller's transaction."""
    connection = await session.connection()
    batch = release_batch(connection.dialect.name, connection.dialect.paramstyle, now, items)
    if batch is not None:
        await connection.exec_driver_sql(*batch)


async def held_by_pool(session: AsyncSession, now: datetime) -> dict[int, int]:
    """Held leases (offered or bound) of every pool that holds any, by pool id."""
    stmt = select(_c.pool_id, func.count()).where(_held(now)).group_by(_c.pool_id)
    return {pool_id: count for pool_id, count in await session.execute(stmt)}


async def usage(session: AsyncSession, pool_id: int, now: datetime) -> dict[str, int]:
    """Held leases of the pool by state (``offered``, ``bound``)."""
    stmt = (
        select(_c.state, func.count()).where(_c.pool_id == pool_id, _held(now)).group_by(_c.state)
    )
    return {state: count for state, count in await session.execute(stmt)}
