"""The auth log: batches of Access-Request outcomes in, one contract's history out, old rows out."""

from __future__ import annotations

import logging
import sqlite3
import time as monotonic_time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, cast

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from radius_contracts.aaa.auth_log import AuthEvent
from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import Contract
from radius_contracts.db.sqlite_writer import SqliteWriter
from radius_contracts.errors import InvalidInput
from radius_contracts.services.auth_log_bound import Key, Plan, UnknownBound
from radius_contracts.services.base import ServiceContext
from radius_contracts.store import auth_log as store
from radius_contracts.store import common
from radius_contracts.store.auth_log import AuthLogRow, Segment
from radius_contracts.store.driver import timestamp

log = logging.getLogger("radius_contracts.services.auth_log")

AuthResult = Literal["accept", "reject"]

UNKNOWN_ROWS_PER_MINUTE = 1000
"""Default of auth_log.unknown_rows_per_minute (see services.auth_log_bound)."""

_DAY = timedelta(days=1)
_READ_TRIES = 3
PART_ROWS = 250_000
"""Entries per table of a day before the writer starts the next (the daemon sets part_rows())."""
# How long a writer trusts its idea of a day's newest table: another node may have started
# a newer one (PostgreSQL). Rows written to the previous one meanwhile are not lost.
_SEGMENTS_FRESH = 30.0


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


def part_rows(max_rows: int) -> int:
    """Entries per table for auth_log.max_rows: a quarter of it (at least 1,000), so that
    retention keeps between three and four quarters' worth when today alone outgrows it."""
    return max(max_rows // 4, 1000)


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
        self.part_rows = PART_ROWS
        # Called when the writer starts a new table of a day: retention can drop the oldest
        # tables now rather than at its next turn (the daemon asks the auth log writer).
        self.on_new_segment: Callable[[], None] = lambda: None
        self._tables: set[Segment] = set()  # tables known to exist
        self._current: dict[date, Segment] = {}  # the table each day's entries go to
        self._rows_in: dict[Segment, int] = {}  # entries in it, as this writer counts them
        self._current_at: dict[date, float] = {}  # when _current[day] was read from the catalogue
        self._next_id: int | None = None  # SQLite: the next row's id (see store.next_id)
        # The daemon's SQLite write thread (db.sqlite_writer): batches go there when set.
        self.writer: SqliteWriter | None = None

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
        try:
            writer = self.writer
            if writer is not None:
                with wrap_db_errors():
                    written, made = await self._write_on(writer, known, plan, contract_ids, nas_ids)
            else:
                written, made = await self._write_async(known, plan, contract_ids, nas_ids)
        except BaseException:
            # Rolled back: the numbers handed out were not used, tables made above were not
            # made (and another node may have dropped one): find both out again next time.
            self._next_id = None
            self._forget_tables()
            self.bound.failed()
            raise
        self.bound.written(made)
        self._count(written)

    async def _write_async(
        self, known: list[AuthEvent], plan: Plan, contract_ids: set[int], nas_ids: set[int]
    ) -> tuple[dict[Segment, int], dict[Key, tuple[Segment, int]]]:
        """:meth:`write` through the async engine (PostgreSQL; SQLite outside the daemon)."""
        dialect = self.context.dialect
        made: dict[Key, tuple[Segment, int]] = {}
        written: dict[Segment, int] = {}
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
                    segment = await self._ready(connection, day)
                    await store.insert_rows(connection, segment, [self._id(r) for r in rows])
                    written[segment] = written.get(segment, 0) + len(rows)
                for key, folded in plan.new.items():
                    segment = await self._ready(connection, store.day_of(folded.first.at))
                    row = self._id(_row(dialect, folded.first, contracts, nas, folded.count))
                    row_id = await store.insert_returning_id(connection, segment, row)
                    made[key] = (segment, row_id)
                    written[segment] = written.get(segment, 0) + 1
                for segment, counts in self._more(plan).items():
                    await store.add_counts(connection, segment, counts)
        return written, made

    def _more(self, plan: Plan) -> dict[Segment, list[tuple[int, int]]]:
        """``(n, id)`` per table for the folded rows whose count grows, in tables still there."""
        more: dict[Segment, list[tuple[int, int]]] = {}
        for key, count in plan.more.items():
            where = self.bound.where(key)
            assert where is not None
            if where[0] in self._tables:  # not dropped meanwhile
                more.setdefault(where[0], []).append((count, where[1]))
        return more

    async def _write_on(
        self,
        writer: SqliteWriter,
        known: list[AuthEvent],
        plan: Plan,
        contract_ids: set[int],
        nas_ids: set[int],
    ) -> tuple[dict[Segment, int], dict[Key, tuple[Segment, int]]]:
        """:meth:`write` on SQLite's write thread: one transaction there, serialised with the
        accounting batches instead of meeting them in SQLite's busy handler (db.sqlite_writer).

        Only finding (or making) the day's table goes through the async engine, and only when
        the table is new or its catalogue entry older than _SEGMENTS_FRESH. The rows are built
        on the thread too, off the event loop (which stalled 6-10 ms as each write began when
        it built them).
        """
        days = {store.day_of(_utc(event.at)) for event in known}
        days.update(store.day_of(folded.first.at) for folded in plan.new.values())
        tables = await self._tables_for(days)
        assert self._next_id is not None  # SQLite: _ready numbered the log
        first_id = self._next_id
        self._next_id += len(known) + len(plan.new)
        more = self._more(plan)

        def work(
            connection: sqlite3.Connection,
        ) -> tuple[dict[Segment, int], dict[Key, tuple[Segment, int]]]:
            # Checked in the write transaction: no contract or NAS can go before the commit.
            contracts = store.existing_on(connection, "contracts", contract_ids)
            nas = store.existing_on(connection, "nas", nas_ids)
            rows: dict[Segment, list[tuple[Any, ...]]] = {}
            for event in known:
                segment = tables[store.day_of(_utc(event.at))]
                rows.setdefault(segment, []).append(_row("sqlite", event, contracts, nas))
            # Numbered table by table: a table's ids are contiguous, so its id span counts
            # its rows (store.id_span).
            ids = iter(range(first_id, first_id + len(known) + len(plan.new)))
            for segment, values in rows.items():
                store.insert_rows_on(connection, segment, [(next(ids), *row) for row in values])
            written = {segment: len(values) for segment, values in rows.items()}
            made: dict[Key, tuple[Segment, int]] = {}
            for key, folded in plan.new.items():
                segment = tables[store.day_of(folded.first.at)]
                row = (next(ids), *_row("sqlite", folded.first, contracts, nas, folded.count))
                store.insert_rows_on(connection, segment, [row])
                made[key] = (segment, row[0])
                written[segment] = written.get(segment, 0) + 1
            for segment, counts in more.items():
                store.add_counts_on(connection, segment, counts)
            return written, made

        return await writer.run(work, durable=False)

    async def _tables_for(self, days: set[date]) -> dict[date, Segment]:
        """The table each of ``days``' entries go to; a transaction only when one must be read
        from the catalogue or made."""
        tables = {day: self._known(day) for day in days}
        if all(segment is not None for segment in tables.values()):
            return cast(dict[date, Segment], tables)
        with wrap_db_errors():
            async with self.context.transaction() as session:
                connection = await session.connection()
                return {day: await self._ready(connection, day) for day in days}

    def _forget_tables(self) -> None:
        self._tables.clear()
        self._current.clear()
        self._current_at.clear()
        self._rows_in.clear()

    def _known(self, day: date) -> Segment | None:
        """The table ``day``'s entries go to, when nothing needs reading or making first."""
        segment = self._current.get(day)
        if segment is None or monotonic_time.monotonic() - self._current_at[day] > _SEGMENTS_FRESH:
            return None
        if segment not in self._tables:
            return None
        if self.context.dialect == "sqlite" and self._next_id is None:
            return None
        return segment

    async def _ready(self, connection: AsyncConnection, day: date) -> Segment:
        """The table ``day``'s entries go to, made when missing."""
        known = self._known(day)
        if known is not None:
            return known
        segment = self._current.get(day)
        now = monotonic_time.monotonic()
        if segment is None or now - self._current_at[day] > _SEGMENTS_FRESH:
            # The newest table of the day, as the catalogue has it (another node may have
            # started one); the rows it holds count towards part_rows.
            found = [s for s in await store.segments(connection) if s.day == day]
            newest = max(found, default=Segment(day))
            if segment is None or newest > segment:
                segment = newest
                span = await store.id_span(connection, segment) if found else None
                self._rows_in[segment] = span[1] - span[0] + 1 if span else 0
            self._current[day] = segment
            self._current_at[day] = now
        if segment not in self._tables:
            await store.ensure_segment(connection, segment)
            self._tables.add(segment)
        if self.context.dialect == "sqlite" and self._next_id is None:
            self._next_id = await store.next_id(connection)
        return segment

    def _count(self, written: dict[Segment, int]) -> None:
        """After a commit: count what went where; a table past ``part_rows`` is the day's last
        (the next batch starts the following one)."""
        started = False
        for segment, rows in written.items():
            total = self._rows_in.get(segment, 0) + rows
            self._rows_in[segment] = total
            if total >= self.part_rows and self._current.get(segment.day) == segment:
                following = Segment(segment.day, segment.part + 1)
                self._current[segment.day] = following
                self._rows_in[following] = 0
                started = True
                log.info(
                    "the auth log of %s goes on in %s (%d entries in %s)",
                    segment.day.isoformat(), store.table_name(following), total,
                    store.table_name(segment),
                )  # fmt: skip
        if started:
            self.on_new_segment()

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
        """Drop whole tables: the days that ended before ``older_than``, then the oldest tables
        while those kept would hold more than ``max_rows`` entries. The newest table of today
        (and any table a writer here is using) is never dropped: a day that outgrows
        ``max_rows`` keeps its last ``part_rows`` or so.

        Each drop is one short transaction whose cost does not grow with the rows it removes.
        Returns how many entries went (counted from id ranges: an upper bound).
        """
        dropped = 0
        with wrap_db_errors():
            async with self.context.transaction() as session:
                connection = await session.connection()
                tables = await store.segments(connection)
                if self.context.dialect == "postgresql":
                    # Tomorrow's table made ahead: several nodes do not race to create it
                    # with the first entry after midnight.
                    tomorrow = store.day_of(datetime.now(UTC)) + timedelta(days=1)
                    await store.ensure_day(connection, tomorrow)
                    self._tables.add(Segment(tomorrow))
                spans = {table: await store.id_span(connection, table) for table in tables}
            cutoff = older_than.astimezone(UTC)
            doomed = [
                table
                for table in tables
                if datetime.combine(table.day, time(), UTC) + _DAY <= cutoff
            ]
            kept = 0
            today = store.day_of(datetime.now(UTC))
            # Another node's writer may still use an older table of today for a few seconds
            # (_SEGMENTS_FRESH): dropping it fails that batch, which is retried on the newest.
            spared = {max((t for t in tables if t.day == today), default=None)}
            spared.add(self._current.get(today))
            for day in [day for day in self._current if day < today - _DAY]:
                del self._current[day], self._current_at[day]  # no entries come for those
            for table in reversed(tables):
                if table in doomed:
                    continue
                span = spans[table]
                kept += span[1] - span[0] + 1 if span else 0
                if kept > max_rows and table not in spared:
                    doomed.append(table)
            for table in sorted(set(doomed)):
                async with self.context.transaction() as session:
                    await store.drop_segment(await session.connection(), table)
                self._tables.discard(table)
                self._rows_in.pop(table, None)
                span = spans[table]
                dropped += span[1] - span[0] + 1 if span else 0
                log.info("dropped the auth log table %s", store.table_name(table))
        return dropped
