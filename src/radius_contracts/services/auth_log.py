"""The auth log: batches of Access-Request outcomes in, one contract's history out, old rows out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from radius_contracts.aaa.auth_log import AuthEvent
from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import AuthLogEntry, Contract
from radius_contracts.services.base import ServiceContext
from radius_contracts.store import auth_log as store
from radius_contracts.store import common
from radius_contracts.store.common import Page
from radius_contracts.store.driver import timestamp

AuthResult = Literal["accept", "reject"]

# Rows deleted per purge transaction: on SQLite every write waits for the one writer, so a
# purge of millions of rows must not hold it for long; the auth log writer goes in between.
PURGE_CHUNK = 10_000


def _text(value: str | None, limit: int) -> str | None:
    """``value`` as the database can always store it: no NUL, valid UTF-8, at most ``limit``.

    Wire values (User-Name, Calling-Station-Id) are whatever a NAS sent. One that PostgreSQL
    refuses would fail its whole batch on every retry, so it is made storable instead.
    """
    if value is None:
        return None
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value[:limit] if len(value) > limit else value


def _row(dialect: str, event: AuthEvent, contracts: set[int], nas: set[int]) -> tuple[Any, ...]:
    at = event.at
    if at.tzinfo is not UTC:  # the handler's are; other callers may pass naive or local times
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return (  # in store.COLUMNS order
        timestamp(dialect, at),
        # A contract or NAS deleted since the request keeps its entry, without the reference.
        event.contract_id if event.contract_id in contracts else None,
        _text(event.username, 253),
        event.nas_id if event.nas_id in nas else None,
        _text(event.calling_station_id, 253),
        "accept" if event.accept else "reject",
        _text(event.reason, 255) or "",
        _text(event.method, 16),
    )


class AuthLogService:
    """Writes batches from AuthLogWriter and serves a contract's auth history to support staff."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context

    async def write(self, events: Sequence[AuthEvent]) -> None:
        """Insert ``events`` in one transaction (the AuthLogWriter's sink)."""
        if not events:
            return
        contract_ids = {e.contract_id for e in events if e.contract_id is not None}
        nas_ids = {e.nas_id for e in events if e.nas_id is not None}
        with wrap_db_errors():
            async with self.context.transaction() as session:
                contracts = await store.existing(session, "contracts", contract_ids)
                nas = await store.existing(session, "nas", nas_ids)
                dialect = self.context.dialect
                await store.insert_rows(session, [_row(dialect, e, contracts, nas) for e in events])

    async def page_for_contract(
        self,
        contract_id: int,
        *,
        result: AuthResult | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[AuthLogEntry]:
        """The contract's entries, newest first; NotFound for an unknown contract."""
        with wrap_db_errors():
            async with self.context.sessions() as session:
                await common.get(session, Contract, contract_id, "contract")
                stmt = store.page_stmt(contract_id, result)
                return await common.page(session, stmt, limit=limit, offset=offset)

    async def purge(self, *, older_than: datetime, max_rows: int) -> int:
        """Delete entries from before ``older_than`` and beyond the newest ``max_rows``.

        Runs in chunks of PURGE_CHUNK rows, one transaction each; returns how many went.
        """
        deleted = 0
        with wrap_db_errors():
            while True:
                async with self.context.transaction() as session:
                    count = await store.delete_older(session, older_than, PURGE_CHUNK)
                deleted += count
                if count < PURGE_CHUNK:
                    break
            async with self.context.sessions() as session:
                last_id = await store.cutoff_id(session, max_rows)
            while last_id is not None:
                async with self.context.transaction() as session:
                    count = await store.delete_upto(session, last_id, PURGE_CHUNK)
                deleted += count
                if count < PURGE_CHUNK:
                    break
        return deleted
