"""The auth log: batches of Access-Request outcomes in, one contract's history out, old rows out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from radius_contracts.aaa.auth_log import AuthEvent
from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import Contract
from radius_contracts.errors import InvalidInput
from radius_contracts.services.auth_log_bound import Key, UnknownBound
from radius_contracts.services.base import ServiceContext
from radius_contracts.store import auth_log as store
from radius_contracts.store import common
from radius_contracts.store.auth_log import AuthLogRow
from radius_contracts.store.driver import timestamp

log = logging.getLogger("radius_contracts.services.auth_log")

AuthResult = Literal["accept", "reject"]

UNKNOWN_ROWS_PER_MINUTE = 1000
"""Default of auth_log.unknown_rows_per_minute (see services.auth_log_bound)."""

_DAY = timedelta(days=1)
_READ_TRIES = 3


@dataclass(frozen=True, slots=True)
class AuthLogPage:
    items: Sequence[AuthLogRow]
    total: int
    limit: int
    offset: int


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


def _row(
    dialect: str, event: AuthEvent, contracts: set[int], nas: set[int], count: int = 1
) -> tuple[Any, ...]:
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
        count,
    )


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at if at.tzinfo is UTC else at.astimezone(UTC)


def _moment(value: datetime | None, field: str) -> datetime | None:
    """A filter's time as aware UTC; a naive one is taken as UTC already."""
    if value is None:
        return None
    try:
        return _utc(value)
    except OverflowError:
        raise InvalidInput(f"{value.isoformat()} is out of range in UTC", field=field) from None


class AuthLogService:
    """Writes batches from AuthLogWriter, serves the log to support staff, drops old days."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.bound = UnknownBound(UNKNOWN_ROWS_PER_MINUTE)
        self._days: set[date] = set()  # day tables known to exist
        self._next_id: int | None = None  # SQLite: the next row's id (see store.next_id)

    async def write(self, events: Sequence[AuthEvent]) -> None:
        """Insert ``events`` in one transaction (the AuthLogWriter's sink).

        Outcomes with a contract get a row each; those without one are folded (UnknownBound).
        """
        if not events:
            return
        known = [e for e in events if e.contract_id is not None]
        unknown = [e._replace(at=_utc(e.at)) for e in events if e.contract_id is None]
        plan = self.bound.plan(unknown)
        contract_ids = {e.contract_id for e in known if e.contract_id is not None}
        nas_ids = {e.nas_id for e in events if e.nas_id is not None}
        dialect = self.context.dialect
        made: dict[Key, tuple[date, int]] = {}
        try:
            with wrap_db_errors():
                async with self.context.transaction() as session:
                    connection = await session.connection()
                    contracts = await store.existing(session, "contracts", contract_ids)
                    nas = await store.existing(session, "nas", nas_ids)
                    by_day: dict[date, list[tuple[Any, ...]]] = {}
                    for event in known:
                        row = _row(dialect, event, contracts, nas)
                        by_day.setdefault(store.day_of(_utc(event.at)), []).append(row)
                    for day, rows in by_day.items():
                        await self._ready(connection, day)
                        await store.insert_rows(connection, day, [self._id(r) for r in rows])
                    for key, folded in plan.new.items():
                        day = store.day_of(folded.first.at)
                        await self._ready(connection, day)
                        row = self._id(_row(dialect, folded.first, contracts, nas, folded.count))
                        made[key] = (day, await store.insert_returning_id(connection, day, row))
                    more: dict[date, list[tuple[int, int]]] = {}
                    for key, count in plan.more.items():
                        where = self.bound.where(key)
                        assert where is not None
                        more.setdefault(where[0], []).append((count, where[1]))
                    for day, counts in more.items():
                        if day in self._days:  # not dropped meanwhile
                            await store.add_counts(connection, day, counts)
        except BaseException:
            # Rolled back: the numbers handed out were not used, tables made above were not
            # made (and another node may have dropped one): find both out again next time.
            self._next_id = None
            self._days.clear()
            self.bound.failed()
            raise
        self.bound.written(made)

    async def _ready(self, connection: AsyncConnection, day: date) -> None:
        if day not in self._days:
            await store.ensure_day(connection, day)
            self._days.add(day)
        if self.context.dialect == "sqlite" and self._next_id is None:
            self._next_id = await store.next_id(connection)

    def _id(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """``row`` with its id in front on SQLite (see store.next_id); as is on PostgreSQL."""
        if self._next_id is None:
            return row
        self._next_id += 1
        return (self._next_id - 1, *row)

    async def page(
        self, where: store.AuthLogFilter, *, limit: int = 50, offset: int = 0
    ) -> AuthLogPage:
        """Entries matching ``where``, newest first, across the day tables."""
        where = replace(
            where, since=_moment(where.since, "since"), until=_moment(where.until, "until")
        )
        with wrap_db_errors():
            for attempt in range(1, _READ_TRIES + 1):
                try:
                    async with self.context.sessions() as session:
                        connection = await session.connection()
                        items, total = await store.select_page(
                            connection, where, limit=limit, offset=offset
                        )
                    break
                except DBAPIError as exc:
                    # Retention dropped a day between listing the days and reading it: again.
                    if attempt == _READ_TRIES or not store.vanished(exc):
                        raise
        return AuthLogPage(items=items, total=total, limit=limit, offset=offset)

    async def page_for_contract(
        self,
        contract_id: int,
        *,
        result: AuthResult | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> AuthLogPage:
        """The contract's entries, newest first; NotFound for an unknown contract."""
        with wrap_db_errors():
            async with self.context.sessions() as session:
                await common.get(session, Contract, contract_id, "contract")
        where = store.AuthLogFilter(contract_id=contract_id, result=result)
        return await self.page(where, limit=limit, offset=offset)

    async def purge(self, *, older_than: datetime, max_rows: int) -> int:
        """Drop whole days: those that ended before ``older_than``, then the oldest while the
        days kept would hold more than ``max_rows`` entries (today's is never dropped).

        Each drop is one short transaction whose cost does not grow with the rows it removes.
        Returns how many entries went (counted from id ranges: an upper bound).
        """
        dropped = 0
        with wrap_db_errors():
            async with self.context.transaction() as session:
                connection = await session.connection()
                all_days = await store.days(connection)
                if self.context.dialect == "postgresql":
                    # Tomorrow's table made ahead: several nodes do not race to create it
                    # with the first entry after midnight.
                    tomorrow = store.day_of(datetime.now(UTC)) + timedelta(days=1)
                    await store.ensure_day(connection, tomorrow)
                    self._days.add(tomorrow)
                spans = {day: await store.id_span(connection, day) for day in all_days}
            cutoff = older_than.astimezone(UTC)
            doomed = [
                day for day in all_days if datetime.combine(day, time(), UTC) + _DAY <= cutoff
            ]
            kept = 0
            today = store.day_of(datetime.now(UTC))
            for day in reversed(all_days):
                if day in doomed:
                    continue
                span = spans[day]
                kept += span[1] - span[0] + 1 if span else 0
                if kept > max_rows and day < today:
                    doomed.append(day)
            for day in sorted(set(doomed)):
                async with self.context.transaction() as session:
                    await store.drop_day(await session.connection(), day)
                self._days.discard(day)
                span = spans[day]
                dropped += span[1] - span[0] + 1 if span else 0
                log.info("dropped the auth log of %s", day.isoformat())
        return dropped
