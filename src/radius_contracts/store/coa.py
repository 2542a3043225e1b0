"""Sessions as CoA and Disconnect-Requests name them, and the CoA log.

Reads pick the open sessions a change touches (by contract, by NAS, by id) with just the
columns that identify a session to its NAS; the log is written in batches by the CoA
dispatcher and read per session by the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Row, Select, Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import AcctSession, CoaLogEntry
from radius_contracts.domain import CoaRecord, SessionTarget
from radius_contracts.store.driver import padded

__all__ = [
    "coa_log_stmt",
    "open_session",
    "open_sessions_of",
    "open_sessions_on",
    "session_exists",
    "write_log",
]

_TARGET_COLUMNS: tuple[Any, ...] = (
    AcctSession.id,
    AcctSession.contract_id,
    AcctSession.nas_id,
    AcctSession.username,
    AcctSession.acct_session_id,
    AcctSession.framed_ip,
    AcctSession.framed_ipv6_prefix,
    AcctSession.nas_ip_address,
    AcctSession.nas_identifier,
    AcctSession.calling_station_id,
    AcctSession.nas_port,
    AcctSession.nas_port_id,
)
_COA_LOG = cast(Table, CoaLogEntry.__table__)
# Bound parameters per IN list: far below SQLite's 32,766 and PostgreSQL's 65,535.
_CHUNK = 1000


def _target(row: Row[Any]) -> SessionTarget:
    return SessionTarget(*tuple(row))


def _open() -> Select[Any]:
    stmt: Select[Any] = select(*_TARGET_COLUMNS).where(AcctSession.stopped_at.is_(None))
    return stmt


# Built once: every contract update asks for its open sessions (the CoA planner), and building
# the statement for it cost more CPU than running it.
_OPEN_OF = _open().where(AcctSession.contract_id.in_(bindparam("ids", expanding=True)))
_OPEN_ON = _open().where(AcctSession.nas_id.in_(bindparam("ids", expanding=True)))


async def _open_sessions(
    session: AsyncSession, stmt: Select[Any], ids: Iterable[int]
) -> list[SessionTarget]:
    wanted = sorted(set(ids))
    found: list[SessionTarget] = []
    for start in range(0, len(wanted), _CHUNK):
        # Padded: an expanding IN list is a statement text per length, and each text is
        # prepared and kept by the driver (store.driver.padded).
        rows = await session.execute(stmt, {"ids": padded(wanted[start : start + _CHUNK])})
        found += [_target(row) for row in rows]
    return found


async def open_sessions_of(
    session: AsyncSession, contract_ids: Iterable[int]
) -> list[SessionTarget]:
    """The open sessions of these contracts (ix_sessions_open), in contract order."""
    return await _open_sessions(session, _OPEN_OF, contract_ids)


async def open_sessions_on(session: AsyncSession, nas_ids: Iterable[int]) -> list[SessionTarget]:
    """The open sessions on these NAS (a layout edit touches all of them)."""
    return await _open_sessions(session, _OPEN_ON, nas_ids)


async def session_exists(session: AsyncSession, session_id: int) -> bool:
    found = await session.scalar(select(AcctSession.id).where(AcctSession.id == session_id))
    return found is not None


async def open_session(session: AsyncSession, session_id: int) -> SessionTarget | None:
    """Session ``session_id`` when it is open, else None."""
    row = (await session.execute(_open().where(AcctSession.id == session_id))).first()
    return None if row is None else _target(row)


async def write_log(session: AsyncSession, records: Sequence[CoaRecord]) -> None:
    """Insert CoA log rows (one executemany)."""
    if not records:
        return
    # The table, not the entity: the ORM's bulk insert path costs more than the rows.
    await session.execute(
        insert(_COA_LOG),
        [
            {
                "session_id": r.session_id,
                "contract_id": r.contract_id,
                "nas_id": r.nas_id,
                "kind": r.kind,
                "reason": r.reason[:255],
                "attributes": [list(pair) for pair in r.attributes],
                "requested_at": r.requested_at,
                "finished_at": r.finished_at,
                "outcome": r.outcome,
                "error_cause": r.error_cause,
                "attempts": r.attempts,
                "detail": None if r.detail is None else r.detail[:255],
            }
            for r in records
        ],
    )


def coa_log_stmt(
    *, session_id: int | None = None, contract_id: int | None = None
) -> Select[CoaLogEntry]:
    """CoA log rows, newest first, of one session or one contract (or all)."""
    stmt = select(CoaLogEntry)
    if session_id is not None:
        stmt = stmt.where(CoaLogEntry.session_id == session_id)
    if contract_id is not None:
        stmt = stmt.where(CoaLogEntry.contract_id == contract_id)
    return stmt.order_by(CoaLogEntry.id.desc())
