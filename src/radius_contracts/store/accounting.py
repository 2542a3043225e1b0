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
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.domain import station_key
from radius_contracts.plans import QuotaCounts, counted_bytes
from radius_contracts.store.driver import padded, placeholders, timestamp

START, STOP, INTERIM, ACCOUNTING_ON, ACCOUNTING_OFF = 1, 2, 3, 7, 8

# Two records of one session whose start times differ by less than this are the same session
# (start times are computed from Acct-Session-Time and Acct-Delay-Time, so they wobble).
SAME_START = timedelta(seconds=60)
REBOOT = "NAS-Reboot"  # terminate cause of sessions closed by Accounting-On/Off
# A record stamped at most this long after its session closed still belongs to it.
LATE = timedelta(seconds=5)

_COUNTERS = ("session_time", "input_octets", "output_octets", "input_packets", "output_packets")
_DETAILS = (
    "framed_ip",
    "framed_ipv6_prefix",
    "framed_ipv6_address",
    "delegated_ipv6_prefix",
    "calling_station_id",
    "called_station_id",
    "nas_port",
    "nas_port_id",
    "nas_ip_address",
    "nas_identifier",
)
_COLUMNS = (
    "contract_id",
    "nas_id",
    "username",
    "acct_session_id",
    "acct_unique_id",
    "started_at",
    "updated_at",
    "stopped_at",
    *_COUNTERS,
    *_DETAILS,
    "terminate_cause",
)
_TIMES = frozenset({"started_at", "updated_at", "stopped_at"})


@dataclass(slots=True)
class AcctRecord:
    """One Accounting-Request, resolved: what the session store needs.

    ``at`` is when the NAS says the event happened (Event-Timestamp, else arrival minus
    Acct-Delay-Time); ``key`` is the session's id on its NAS (Acct-Session-Id).
    """

    kind: int
    nas_id: int
    at: datetime
    key: str = ""
    contract_id: int | None = None
    username: str = ""
    session_time: int | None = None
    input_octets: int | None = None
    output_octets: int | None = None
    input_packets: int | None = None
    output_packets: int | None = None
    framed_ip: str | None = None
    framed_ipv6_prefix: str | None = None
    framed_ipv6_address: str | None = None
    delegated_ipv6_prefix: str | None = None
    calling_station_id: str | None = None
    called_station_id: str | None = None
    nas_port: int | None = None
    nas_port_id: str | None = None
    nas_ip_address: str | None = None
    nas_identifier: str | None = None
    terminate_cause: str | None = None

    @property
    def started_at(self) -> datetime:
        if self.kind == START or not self.session_time:
            return self.at
        return self.at - timedelta(seconds=self.session_time)


@dataclass(slots=True)
class SessionState:
    """A session as the batch leaves it, for the in-memory session view."""

    id: int | None
    contract_id: int | None
    nas_id: int
    key: str
    started_at: datetime
    updated_at: datetime
    stopped_at: datetime | None
    calling_station_id: str | None
    nas_port: int | None
    nas_port_id: str | None
    framed_ip: str | None
    framed_ipv6_prefix: str | None
    delegated_ipv6_prefix: str | None
    opened: bool = False  # this batch started the session (its row is new)


@dataclass(slots=True)
class Applied:
    """What one batch changed: sessions touched (last state each), NAS that rebooted, and the
    contracts this batch's traffic pushed over their quota (with the period's start)."""

    sessions: list[SessionState] = field(default_factory=list)
    reboots: list[tuple[int, datetime]] = field(default_factory=list)
    ignored: int = 0  # records that repeated what was already stored
    quota_over: list[tuple[int, date]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QuotaTarget:
    """Where a contract's traffic counts against its quota: the period (local dates, end
    exclusive), which direction counts, and the cap (top-ups come on top, per row)."""

    period_start: date
    period_end: date
    counts: QuotaCounts
    cap_bytes: int


QuotaResolver = Callable[[int, datetime], QuotaTarget | None]
"""(contract id, when the record happened) → where its traffic counts, or None (no quota)."""


@dataclass(slots=True)
class _QuotaDelta:
    target: QuotaTarget
    used: int = 0


@dataclass(slots=True)
class _Row:
    values: dict[str, Any]
    id: int | None = None  # None: inserted by this batch
    # Columns this batch changed: the UPDATE sets only these. SQLite maintains an index
    # only when its columns are in the SET list, and an Interim-Update changes none.
    changed: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Sessions:
    """The rows of one NAS and session id that the batch may touch."""

    open: _Row | None = None
    closed: list[_Row] = field(default_factory=list)


class _Sql:
    """Statements in the driver's own dialect."""

    def __init__(self, dialect: str, paramstyle: str) -> None:
        self.dialect = dialect
        self.paramstyle = paramstyle
        greatest = "max" if self.dialect == "sqlite" else "GREATEST"
        marks = placeholders(self.paramstyle, len(_COLUMNS))
        merge = [
            "contract_id = COALESCE(excluded.contract_id, sessions.contract_id)",
            f"updated_at = {greatest}(sessions.updated_at, excluded.updated_at)",
            "stopped_at = excluded.stopped_at",
            *(f"{c} = {greatest}(sessions.{c}, excluded.{c})" for c in _COUNTERS),
            *(f"{c} = COALESCE(excluded.{c}, sessions.{c})" for c in _DETAILS),
            "terminate_cause = COALESCE(excluded.terminate_cause, sessions.terminate_cause)",
        ]
        # The ON CONFLICT target is the partial unique index of open sessions: it only fires
        # when another node opened the same session meanwhile (a NAS failing over).
        self.insert = (
            f"INSERT INTO sessions ({', '.join(_COLUMNS)}) VALUES ({', '.join(marks)}) "  # noqa: S608
            "ON CONFLICT (nas_id, acct_unique_id) WHERE stopped_at IS NULL "
            f"DO UPDATE SET {', '.join(merge)}"
        )
        self._updates: dict[tuple[str, ...], str] = {}
        marks = placeholders(self.paramstyle, 5)
        self.usage = (
            "INSERT INTO usage_daily (contract_id, day, input_octets, output_octets, "  # noqa: S608
            f"session_time) VALUES ({', '.join(marks)}) ON CONFLICT (contract_id, day) DO UPDATE "
            "SET input_octets = usage_daily.input_octets + excluded.input_octets, "
            "output_octets = usage_daily.output_octets + excluded.output_octets, "
            "session_time = usage_daily.session_time + excluded.session_time"
        )

        marks = placeholders(self.paramstyle, 4)
        self.quota_add = (
            "INSERT INTO quota_usage (contract_id, period_start, period_end, used_bytes) "  # noqa: S608
            f"VALUES ({', '.join(marks)}) ON CONFLICT (contract_id, period_start) DO UPDATE "
            "SET used_bytes = quota_usage.used_bytes + excluded.used_bytes"
        )
        a, b, c = placeholders(self.paramstyle, 3)
        # Conditional: when several transactions push one contract over (nodes sharing a
        # PostgreSQL database), the first to commit changes the row and the others, which
        # wait for its lock and then see ``over``, change nothing.
        self.quota_cross = (
            f"UPDATE quota_usage SET state = 'over', changed_at = {a} "  # noqa: S608
            f"WHERE contract_id = {b} AND period_start = {c} AND state = 'normal'"
        )

        a, b, c, d, e, f = placeholders(self.paramstyle, 6)
        self.claims_taken = (
            f"DELETE FROM login_claims WHERE contract_id = {a} AND (station = {b} "  # noqa: S608
            f"OR (nas_id = {c} AND (nas_port_id = {d} OR nas_port = {e})) "
            "OR (station IS NULL AND nas_port IS NULL AND nas_port_id IS NULL "
            f"AND {f} = 1))"
        )

    def update(self, columns: tuple[str, ...]) -> str:
        """UPDATE of ``columns`` (then the id) for one session."""
        statement = self._updates.get(columns)
        if statement is None:
            marks = placeholders(self.paramstyle, len(columns) + 1)
            sets = ", ".join(f"{c} = {m}" for c, m in zip(columns, marks, strict=False))
            statement = f"UPDATE sessions SET {sets} WHERE id = {marks[-1]}"  # noqa: S608
            self._updates[columns] = statement
        return statement

    def marks(self, count: int, start: int = 1) -> list[str]:
        return placeholders(self.paramstyle, count, start)

    def time(self, at: datetime) -> datetime | str:
        return timestamp(self.dialect, at)

    def day(self, day: date) -> date | str:
        return day.isoformat() if self.dialect == "sqlite" else day

    @staticmethod
    def read_time(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite keeps naive UTC text
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_STATEMENTS: dict[tuple[str, str], _Sql] = {}

Statement = tuple[str, Sequence[Any]]  # SQL and its parameters
Batch = tuple[str, list[Sequence[Any]]]  # SQL and the parameters of each row


def _sql(dialect: str, paramstyle: str) -> _Sql:
    sql = _STATEMENTS.get((dialect, paramstyle))
    if sql is None:
        sql = _STATEMENTS[(dialect, paramstyle)] = _Sql(dialect, paramstyle)
    return sql


def _segments(
    records: Sequence[AcctRecord],
) -> Iterator[tuple[list[AcctRecord], AcctRecord | None]]:
    """Runs of session records, each ended by an Accounting-On/Off (or the batch's end).

    A reboot closes every session the NAS had open until then: what came before it in the
    batch is written first, what comes after applies to a clean slate.
    """
    segment: list[AcctRecord] = []
    for record in records:
        if record.kind in (ACCOUNTING_ON, ACCOUNTING_OFF):
            yield segment, record
            segment = []
        elif record.kind in (START, STOP, INTERIM):
            segment.append(record)
    yield segment, None


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
    sql = _sql(connection.dialect.name, connection.dialect.paramstyle)
    applied = Applied()
    used: dict[tuple[int, date], _QuotaDelta] = {}
    for segment, reboot in _segments(records):
        if segment:
            found: dict[tuple[int, str], _Sessions] = {}
            for statement, params in _load_statements(sql, segment):
                result = await connection.exec_driver_sql(statement, tuple(params))
                _absorb(sql, found, result)
            for statement, rows in _plan(sql, segment, found, applied, quota, used, claims):
                await connection.exec_driver_sql(statement, rows)
        if reboot is not None:
            for statement, params in _reboot_statements(sql, reboot.nas_id, reboot.at):
                await connection.exec_driver_sql(statement, tuple(params))
            applied.reboots.append((reboot.nas_id, reboot.at))
    if used:
        await connection.exec_driver_sql(sql.quota_add, _quota_rows(sql, used))
        ids = sorted({contract_id for contract_id, _start in used})
        statement, params = _quota_read(sql, ids)
        result = await connection.exec_driver_sql(statement, params)
        now = sql.time(datetime.now(UTC))
        for contract_id, start in _crossings(sql, used, result):
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
    sql = _sql("sqlite", "qmark")
    applied = Applied()
    used: dict[tuple[int, date], _QuotaDelta] = {}
    for segment, reboot in _segments(records):
        if segment:
            found: dict[tuple[int, str], _Sessions] = {}
            for statement, params in _load_statements(sql, segment):
                _absorb(sql, found, connection.execute(statement, params))
            for statement, rows in _plan(sql, segment, found, applied, quota, used, claims):
                connection.executemany(statement, rows)
        if reboot is not None:
            for statement, params in _reboot_statements(sql, reboot.nas_id, reboot.at):
                connection.execute(statement, params)
            applied.reboots.append((reboot.nas_id, reboot.at))
    if used:
        connection.executemany(sql.quota_add, _quota_rows(sql, used))
        ids = sorted({contract_id for contract_id, _start in used})
        crossings: list[tuple[int, date]] = []
        for start in range(0, len(ids), 500):
            statement, params = _quota_read(sql, ids[start : start + 500])
            crossings += _crossings(sql, used, connection.execute(statement, params))
        now = sql.time(datetime.now(UTC))
        for contract_id, period_start in crossings:
            cursor = connection.execute(sql.quota_cross, (now, contract_id, sql.day(period_start)))
            if cursor.rowcount:
                applied.quota_over.append((contract_id, period_start))
    return applied


def _quota_rows(sql: _Sql, used: dict[tuple[int, date], _QuotaDelta]) -> list[tuple[Any, ...]]:
    # In key order: transactions on several nodes then lock the rows in the same order and
    # cannot deadlock each other.
    return [
        (contract_id, sql.day(start), sql.day(delta.target.period_end), delta.used)
        for (contract_id, start), delta in sorted(used.items())
    ]


def _quota_read(sql: _Sql, ids: Sequence[int]) -> Statement:
    """These contracts' quota rows (their current periods among them), by primary key.

    The state is filtered in Python: with ``state = 'normal'`` in the WHERE clause SQLite
    prefers the (state, period_end) index and walks every normal row, about 7 µs a contract.
    """
    columns = "contract_id, period_start, used_bytes, extra_bytes, state"
    if sql.dialect == "postgresql":
        (a,) = sql.marks(1)
        return (
            f"SELECT {columns} FROM quota_usage "  # noqa: S608 - our names
            f"WHERE contract_id = ANY({a}::int[])",
            (list(ids),),
        )
    values = padded(list(ids))
    marks = ", ".join(sql.marks(len(values)))
    return (
        f"SELECT {columns} FROM quota_usage WHERE contract_id IN ({marks})",  # noqa: S608
        tuple(values),
    )


def _crossings(
    sql: _Sql, used: dict[tuple[int, date], _QuotaDelta], rows: Iterable[Any]
) -> list[tuple[int, date]]:
    """The rows still ``normal`` this batch added to that are now at or past their cap
    (plus top-ups)."""
    crossed: list[tuple[int, date]] = []
    for contract_id, raw_start, total, extra, state in rows:
        if state != "normal":
            continue
        start = raw_start if isinstance(raw_start, date) else date.fromisoformat(raw_start)
        delta = used.get((contract_id, start))
        if delta is not None and total >= delta.target.cap_bytes + extra:
            crossed.append((contract_id, start))
    return crossed


def _reboot_statements(sql: _Sql, nas_id: int, at: datetime) -> list[Statement]:
    a, b = sql.marks(2)
    # RFC 2866 §5.1: Accounting-On/Off mean the NAS (re)started or stops accounting; its open
    # sessions ended, last seen at their last update.
    return [
        (
            f"UPDATE sessions SET stopped_at = updated_at, terminate_cause = '{REBOOT}' "  # noqa: S608
            f"WHERE nas_id = {a} AND stopped_at IS NULL AND started_at <= {b}",
            (nas_id, sql.time(at)),
        ),
        (f"UPDATE nas SET accounting_on_at = {a} WHERE id = {b}", (sql.time(at), nas_id)),  # noqa: S608
    ]


_LOADED = ("id", *_COLUMNS)


def _load_statements(sql: _Sql, records: Sequence[AcctRecord]) -> list[Statement]:
    """Queries for the open sessions of the batch's keys and closed ones recent enough."""
    keys: dict[int, set[str]] = defaultdict(set)
    for record in records:
        keys[record.nas_id].add(record.key)
    since = sql.time(min(r.started_at for r in records) - SAME_START)
    closed_since = sql.time(min(r.at for r in records) - LATE)
    statements: list[Statement] = []
    for nas_id, ids in keys.items():
        values = sorted(ids)
        if sql.dialect == "postgresql":
            # One array parameter: the same prepared statement whatever the batch's size
            # (an IN list of each length would be parsed and planned anew).
            a, b, c, d = sql.marks(4)
            statements.append(
                (
                    f"SELECT {', '.join(_LOADED)} FROM sessions "  # noqa: S608 - our names
                    f"WHERE nas_id = {a} AND acct_unique_id = ANY({b}::varchar[]) "
                    f"AND (stopped_at IS NULL OR started_at >= {c} OR stopped_at >= {d})",
                    (nas_id, values, since, closed_since),
                )
            )
            continue
        for start in range(0, len(values), 500):
            chunk = padded(values[start : start + 500])
            # Placeholders in the order they appear: qmark binds by position.
            marks = sql.marks(len(chunk) + 3)
            statements.append(
                (
                    f"SELECT {', '.join(_LOADED)} FROM sessions "  # noqa: S608 - our names
                    f"WHERE nas_id = {marks[0]} AND acct_unique_id IN ({', '.join(marks[1:-2])}) "
                    f"AND (stopped_at IS NULL OR started_at >= {marks[-2]} "
                    f"OR stopped_at >= {marks[-1]})",
                    (nas_id, *chunk, since, closed_since),
                )
            )
    return statements


def _absorb(sql: _Sql, found: dict[tuple[int, str], _Sessions], rows: Iterable[Any]) -> None:
    read_time = sql.read_time
    for row in rows:
        values = dict(zip(_LOADED, row, strict=True))
        row_id = values.pop("id")
        for name in _TIMES:
            values[name] = read_time(values[name])
        entry = found.setdefault((values["nas_id"], values["acct_unique_id"]), _Sessions())
        loaded = _Row(values, row_id)
        if values["stopped_at"] is None:
            entry.open = loaded
        else:
            entry.closed.append(loaded)


def foreseen(records: Sequence[AcctRecord]) -> Applied:
    """What ``records`` will do to their sessions once written, as far as the records alone
    tell: for the session view while they wait in the spool (the database cannot be asked).
    Simultaneous use then keeps counting sessions that started during a database outage."""
    applied = Applied()
    for record in records:
        if record.kind in (ACCOUNTING_ON, ACCOUNTING_OFF):
            applied.reboots.append((record.nas_id, record.at))
            continue
        applied.sessions.append(
            SessionState(
                None,
                record.contract_id,
                record.nas_id,
                record.key,
                record.started_at,
                record.at,
                record.at if record.kind == STOP else None,
                record.calling_station_id,
                record.nas_port,
                record.nas_port_id,
                record.framed_ip,
                record.framed_ipv6_prefix,
                record.delegated_ipv6_prefix,
                record.kind == START,
            )
        )
    return applied


def _new_row(record: AcctRecord) -> dict[str, Any]:
    values: dict[str, Any] = {
        "contract_id": record.contract_id,
        "nas_id": record.nas_id,
        "username": record.username,
        "acct_session_id": record.key,
        "acct_unique_id": record.key,
        "started_at": record.started_at,
        "updated_at": record.at,
        "stopped_at": record.at if record.kind == STOP else None,
        "terminate_cause": record.terminate_cause if record.kind == STOP else None,
    }
    for name in _COUNTERS:
        values[name] = getattr(record, name) or 0
    for name in _DETAILS:
        values[name] = getattr(record, name)
    return values


def _merge(row: _Row, record: AcctRecord) -> tuple[int, int, int]:
    """Fold ``record`` into a session; returns the usage it adds (in, out, time)."""
    values, changed = row.values, row.changed
    before = (values["input_octets"], values["output_octets"], values["session_time"])
    if record.contract_id is not None and values["contract_id"] != record.contract_id:
        values["contract_id"] = record.contract_id
        changed.add("contract_id")
    at = record.at
    if record.kind == START and values["started_at"] != at:
        values["started_at"] = at  # the Start knows best when it began
        changed.add("started_at")
    if at > values["updated_at"]:
        values["updated_at"] = at
        changed.add("updated_at")
    for name in _COUNTERS:
        value = getattr(record, name)
        if value is not None and value > values[name]:
            values[name] = value  # counters only grow; an older record never lowers them
            changed.add(name)
    for name in _DETAILS:
        value = getattr(record, name)
        if value is not None and value != values[name]:
            values[name] = value
            changed.add(name)
    if record.kind == STOP:
        if values["stopped_at"] is None or at > values["stopped_at"]:
            values["stopped_at"] = at
            changed.add("stopped_at")
        cause = record.terminate_cause or values["terminate_cause"]
        if cause != values["terminate_cause"]:
            values["terminate_cause"] = cause
            changed.add("terminate_cause")
    return (
        values["input_octets"] - before[0],
        values["output_octets"] - before[1],
        values["session_time"] - before[2],
    )


def _belongs(row: _Row, record: AcctRecord) -> bool:
    """Whether ``record`` is about the closed session ``row`` (same NAS and session id).

    It is when their start times agree, or when it happened before the session closed (a
    late Start or Interim: requests overtake each other on their way). After Accounting-On
    the NAS reuses its session ids, so a Start then begins a new session.
    """
    if record.kind == START and row.values["terminate_cause"] == REBOOT:
        return False
    started: datetime = row.values["started_at"]
    if abs(started - record.started_at) <= SAME_START:
        return True
    stopped: datetime = row.values["stopped_at"]
    return record.at <= stopped + LATE


def _plan(
    sql: _Sql,
    records: Sequence[AcctRecord],
    found: dict[tuple[int, str], _Sessions],
    applied: Applied,
    quota: QuotaResolver | None = None,
    used: dict[tuple[int, date], _QuotaDelta] | None = None,
    claims: bool = False,
) -> list[Batch]:
    """Decide what each record does to its session; the writes that do it, in order.

    Traffic that counts against a quota is added to ``used`` (written by the caller).
    """
    usage: dict[tuple[int, date], list[int]] = {}
    inserts: list[_Row] = []
    touched: dict[int, _Row] = {}  # id(row) → row, in first-touch order
    for record in records:
        entry = found.setdefault((record.nas_id, record.key), _Sessions())
        row, delta = _decide(entry, record, inserts, applied)
        if row is None:
            continue
        touched[id(row)] = row
        if record.contract_id is not None and any(delta):
            totals = usage.setdefault((record.contract_id, record.at.date()), [0, 0, 0])
            totals[0] += delta[0]
            totals[1] += delta[1]
            totals[2] += delta[2]
            if quota is not None and used is not None and (delta[0] or delta[1]):
                target = quota(record.contract_id, record.at)
                if target is not None:
                    key = (record.contract_id, target.period_start)
                    counted = used.get(key)
                    if counted is None:
                        counted = used[key] = _QuotaDelta(target)
                    counted.used += counted_bytes(target.counts, delta[0], delta[1])

    writes: list[Batch] = []
    if inserts:
        writes.append((sql.insert, [_bind(sql, row.values, _COLUMNS) for row in inserts]))
        if claims:
            taken: list[Sequence[Any]] = [
                _claim_place(row.values) for row in inserts if row.values["contract_id"]
            ]
            if taken:
                writes.append((sql.claims_taken, taken))
    updates: dict[tuple[str, ...], list[_Row]] = {}
    for row in touched.values():
        if row.id is not None and row.changed:
            columns = tuple(c for c in _COLUMNS if c in row.changed)
            updates.setdefault(columns, []).append(row)
    for columns, rows in updates.items():
        writes.append(
            (sql.update(columns), [(*_bind(sql, row.values, columns), row.id) for row in rows])
        )
    if usage:
        writes.append(
            (
                sql.usage,
                [(cid, sql.day(day), *totals) for (cid, day), totals in usage.items()],
            )
        )
    for row in touched.values():
        values = row.values
        applied.sessions.append(
            SessionState(
                row.id,
                values["contract_id"],
                values["nas_id"],
                values["acct_unique_id"],
                values["started_at"],
                values["updated_at"],
                values["stopped_at"],
                values["calling_station_id"],
                values["nas_port"],
                values["nas_port_id"],
                values["framed_ip"],
                values["framed_ipv6_prefix"],
                values["delegated_ipv6_prefix"],
                row.id is None,
            )
        )
    return writes


def _decide(
    entry: _Sessions, record: AcctRecord, inserts: list[_Row], applied: Applied
) -> tuple[_Row | None, tuple[int, int, int]]:
    """Which session ``record`` belongs to, changed accordingly (None: it changes nothing)."""
    if entry.open is not None:
        row = entry.open
        delta = _merge(row, record)
        if record.kind == STOP:
            entry.open = None
            entry.closed.append(row)
        return row, delta
    same = next((r for r in reversed(entry.closed) if _belongs(r, record)), None)
    if same is not None:
        stopped = same.values["stopped_at"]
        if record.kind == START or record.at <= stopped + LATE:
            # A repeat of what the closed session already holds (a retransmit the reply
            # cache no longer has, or an Interim that overtook the Stop).
            if record.kind == STOP:
                return same, _merge(same, record)
            applied.ignored += 1
            return None, (0, 0, 0)
        # The session went on after it was closed (closed as stale while the NAS could not
        # reach us): open it again rather than count its traffic twice.
        same.values["stopped_at"] = None
        same.values["terminate_cause"] = None
        same.changed.update(("stopped_at", "terminate_cause"))
        delta = _merge(same, record)
        entry.closed.remove(same)
        if record.kind == STOP:
            entry.closed.append(same)
        else:
            entry.open = same
        return same, delta
    # A new session: a Start, or an Interim or Stop whose Start never arrived.
    row = _Row(_new_row(record))
    inserts.append(row)
    if record.kind == STOP:
        entry.closed.append(row)
    else:
        entry.open = row
    return row, (
        row.values["input_octets"],
        row.values["output_octets"],
        row.values["session_time"],
    )


def _claim_place(values: dict[str, Any]) -> tuple[Any, ...]:
    """Parameters of _Sql.claims_taken for a new session: its contract and place (the same
    place as aaa.sessions.same_place: station, or NAS and port, or neither says)."""
    station = station_key(values["calling_station_id"])
    port, port_id = values["nas_port"], values["nas_port_id"]
    anonymous = int(station is None and port is None and port_id is None)
    return (values["contract_id"], station, values["nas_id"], port_id, port, anonymous)


def _bind(sql: _Sql, values: dict[str, Any], columns: Iterable[str]) -> tuple[Any, ...]:
    time = sql.time
    return tuple(
        time(values[name]) if name in _TIMES and values[name] is not None else values[name]
        for name in columns
    )


def is_data_error(exc: BaseException) -> bool:
    """The database refused the values (a constraint, a bad value), not the connection."""
    return bool(
        isinstance(exc, IntegrityError | DataError | sqlite3.IntegrityError | sqlite3.DataError)
    )


OpenRow = tuple[int, int, str, datetime, str | None, int | None, str | None]
"""(contract id, NAS id, session id, started at, calling station, NAS port, NAS port id)"""


async def open_sessions(
    session: AsyncSession, contract_ids: Sequence[int] | None = None
) -> list[OpenRow]:
    """Open sessions of contracts (all, or these), except those older than their NAS's last
    Accounting-On."""
    connection = await session.connection()
    sql = _sql(connection.dialect.name, connection.dialect.paramstyle)
    query = (
        "SELECT s.contract_id, s.nas_id, s.acct_unique_id, s.started_at, "
        "s.calling_station_id, s.nas_port, s.nas_port_id FROM sessions s "
        "LEFT JOIN nas n ON n.id = s.nas_id "
        "WHERE s.stopped_at IS NULL AND s.contract_id IS NOT NULL AND s.nas_id IS NOT NULL "
        "AND (n.accounting_on_at IS NULL OR s.started_at > n.accounting_on_at)"
    )
    params: tuple[Any, ...] = ()
    if contract_ids is not None:
        ids = padded(sorted(set(contract_ids)))
        marks = sql.marks(len(ids))
        query += f" AND s.contract_id IN ({', '.join(marks)})"
        params = tuple(ids)
    result = await connection.exec_driver_sql(query, params)
    rows: list[OpenRow] = []
    for raw in result:
        row: tuple[Any, ...] = tuple(raw)
        started = sql.read_time(row[3])
        assert started is not None
        rows.append((row[0], row[1], row[2], started, row[4], row[5], row[6]))
    return rows


async def close_stale(
    session: AsyncSession, now: datetime, limits: Mapping[int | None, float]
) -> int:
    """Close open sessions not updated for ``limits[nas_id]`` seconds (None: every other NAS).

    They end at their last update, terminate cause "Stale": the NAS stopped reporting them
    (it lost them, or rebooted without Accounting-On).
    """
    connection = await session.connection()
    sql = _sql(connection.dialect.name, connection.dialect.paramstyle)
    closed = 0
    own = [nas_id for nas_id in limits if nas_id is not None]
    for nas_id, seconds in limits.items():
        cutoff = sql.time(now - timedelta(seconds=seconds))
        a, b = sql.marks(2)
        where = f"stopped_at IS NULL AND updated_at < {a}"
        params: list[Any] = [cutoff]
        if nas_id is not None:
            where += f" AND nas_id = {b}"
            params.append(nas_id)
        elif own:
            marks = sql.marks(len(own), 2)
            where += f" AND (nas_id IS NULL OR nas_id NOT IN ({', '.join(marks)}))"
            params.extend(own)
        result = await connection.exec_driver_sql(
            "UPDATE sessions SET stopped_at = updated_at, terminate_cause = 'Stale' "  # noqa: S608
            f"WHERE {where}",
            tuple(params),
        )
        closed += result.rowcount
    return closed


async def purge_history(
    session: AsyncSession, sessions_before: datetime, usage_before: date, limit: int = 10_000
) -> int:
    """Delete up to ``limit`` sessions closed before ``sessions_before`` and old usage days."""
    connection = await session.connection()
    sql = _sql(connection.dialect.name, connection.dialect.paramstyle)
    a, b = sql.marks(2)
    result = await connection.exec_driver_sql(
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions "  # noqa: S608
        f"WHERE stopped_at IS NOT NULL AND stopped_at < {a} ORDER BY stopped_at LIMIT {b})",
        (sql.time(sessions_before), limit),
    )
    deleted = result.rowcount
    (c,) = sql.marks(1)
    await connection.exec_driver_sql(
        f"DELETE FROM usage_daily WHERE day < {c}",  # noqa: S608
        (sql.day(usage_before),),
    )
    return deleted


class SqliteAccountingConnection:
    """The accounting writer's own SQLite connection, on a thread of its own.

    One thread hop per batch instead of one per statement, and no async adapter between the
    batch and the driver: on SQLite the per-batch overhead of the shared async engine cost
    more than the writes themselves. The connection uses the engine's pragmas (WAL, foreign
    keys, the configured synchronous level, busy timeout); SQLite serialises it with the
    engine's writers.
    """

    def __init__(self, path: str, synchronous: str) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous}")
        self._path = path
        self._synchronous = synchronous
        self._connection: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accounting-db")

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute("PRAGMA busy_timeout=5000")
        return connection

    def run(self, work: Callable[[sqlite3.Connection], Applied]) -> Awaitable[Applied]:
        """Run ``work`` in one transaction on the writer thread."""
        return asyncio.get_running_loop().run_in_executor(self._executor, self._transaction, work)

    def _transaction(self, work: Callable[[sqlite3.Connection], Applied]) -> Applied:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._connect()
        # IMMEDIATE takes the write lock now, so the batch cannot fail half way on a lock.
        connection.execute("BEGIN IMMEDIATE")
        try:
            applied = work(connection)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return applied

    def close(self) -> None:
        def shut() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        self._executor.submit(shut).result(timeout=30)
        self._executor.shutdown(wait=True)
