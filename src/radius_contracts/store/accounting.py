"""Accounting writes: one batch of records applied in the caller's transaction.

The accounting writer hands over everything queued (group commit, DESIGN §2). This module reads
the sessions the batch touches in one query per NAS, decides in Python what each record does
to its session (records of one batch apply in arrival order), then writes with a few
driver-level ``executemany`` calls: new sessions, changed sessions, daily usage. SQLAlchemy's
per-row parameter processing would cost more than the rest of the request, so the SQL goes to
the driver as is, as for the auth log.

Idempotence: a session is its NAS and Acct-Session-Id while it is open (a partial unique
index); a record repeated after its session closed (a retransmit the reply cache no longer
holds, a late Interim) is recognised by the closed session's times and changes nothing.
The pieces: accounting_records (what goes in and comes out), accounting_sql (the
statements), accounting_plan (what each record does); on SQLite a batch runs on the daemon's
SQLite write thread (db.sqlite_writer); session_queries holds the scheduler's session queries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.store.accounting_plan import Sessions, absorb, crossings, plan, segments
from radius_contracts.store.accounting_records import (
    ACCOUNTING_OFF,
    ACCOUNTING_ON,
    INTERIM,
    START,
    STOP,
    AcctRecord,
    Applied,
    QuotaDelta,
    QuotaResolver,
    QuotaTarget,
    SessionState,
    foreseen,
)
from radius_contracts.store.accounting_sql import (
    load_statements,
    quota_read,
    quota_rows,
    reboot_statements,
    statements_for,
)

__all__ = [
    "ACCOUNTING_OFF", "ACCOUNTING_ON", "INTERIM", "START", "STOP", "AcctRecord", "Applied",
    "QuotaResolver", "QuotaTarget", "SessionState", "apply",
    "apply_sqlite", "foreseen", "is_data_error",
]  # fmt: skip


async def apply(
    session: AsyncSession,
    records: Sequence[AcctRecord],
    quota: QuotaResolver | None = None,
    claims: bool = False,
) -> Applied:
    """Apply ``records`` in order inside the caller's transaction (it commits).

    Contracts and NAS are taken as they were when the records were resolved: one deleted
    since makes the batch fail on its foreign key, and the writer retries the rest without it.
    ``quota`` says where each contract's traffic counts against a quota (see QuotaTarget).
    With ``claims`` (simultaneous use decided in the database, aaa.claims), a new session
    takes over the login claims at its place: the login is now counted as the session.
    """
    connection = await session.connection()
    sql = statements_for(connection.dialect.name, connection.dialect.paramstyle)
    applied = Applied()
    used: dict[tuple[int, date], QuotaDelta] = {}
    for segment, reboot in segments(records):
        if segment:
            found: dict[tuple[int, str], Sessions] = {}
            for statement, params in load_statements(sql, segment):
                result = await connection.exec_driver_sql(statement, tuple(params))
                absorb(sql, found, result)
            for statement, rows in plan(sql, segment, found, applied, quota, used, claims):
                await connection.exec_driver_sql(statement, rows)
        if reboot is not None:
            for statement, params in reboot_statements(sql, reboot.nas_id, reboot.at):
                await connection.exec_driver_sql(statement, tuple(params))
            applied.reboots.append((reboot.nas_id, reboot.at))
    if used:
        await connection.exec_driver_sql(sql.quota_add, quota_rows(sql, used))
        ids = sorted({contract_id for contract_id, _start in used})
        statement, params = quota_read(sql, ids)
        result = await connection.exec_driver_sql(statement, params)
        now = sql.time(datetime.now(UTC))
        for contract_id, start in crossings(sql, used, result):
            crossed = await connection.exec_driver_sql(
                sql.quota_cross, (now, contract_id, sql.day(start))
            )
            if crossed.rowcount:
                applied.quota_over.append((contract_id, start))
    return applied


def apply_sqlite(
    connection: sqlite3.Connection,
    records: Sequence[AcctRecord],
    quota: QuotaResolver | None = None,
    claims: bool = False,
) -> Applied:
    """:func:`apply` for a plain sqlite3 connection inside the caller's transaction."""
    sql = statements_for("sqlite", "qmark")
    applied = Applied()
    used: dict[tuple[int, date], QuotaDelta] = {}
    for segment, reboot in segments(records):
        if segment:
            found: dict[tuple[int, str], Sessions] = {}
            for statement, params in load_statements(sql, segment):
                absorb(sql, found, connection.execute(statement, params))
            for statement, rows in plan(sql, segment, found, applied, quota, used, claims):
                connection.executemany(statement, rows)
        if reboot is not None:
            for statement, params in reboot_statements(sql, reboot.nas_id, reboot.at):
                connection.execute(statement, params)
            applied.reboots.append((reboot.nas_id, reboot.at))
    if used:
        connection.executemany(sql.quota_add, quota_rows(sql, used))
        ids = sorted({contract_id for contract_id, _start in used})
        crossed: list[tuple[int, date]] = []
        for start in range(0, len(ids), 500):
            statement, params = quota_read(sql, ids[start : start + 500])
            crossed += crossings(sql, used, connection.execute(statement, params))
        now = sql.time(datetime.now(UTC))
        for contract_id, period_start in crossed:
            cursor = connection.execute(sql.quota_cross, (now, contract_id, sql.day(period_start)))
            if cursor.rowcount:
                applied.quota_over.append((contract_id, period_start))
    return applied


def is_data_error(exc: BaseException) -> bool:
    """The database refused the values (a constraint, a bad value), not the connection."""
    return bool(
        isinstance(exc, IntegrityError | DataError | sqlite3.IntegrityError | sqlite3.DataError)
    )
