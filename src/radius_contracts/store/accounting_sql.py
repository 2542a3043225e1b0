"""The accounting store's SQL, in the driver's own dialect (qmark for sqlite3, ``$n`` for
asyncpg): statements are built once per dialect and handed to the driver as they are."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from radius_contracts.store.accounting_records import (
    LATE,
    REBOOT,
    SAME_START,
    AcctRecord,
    QuotaDelta,
)
from radius_contracts.store.driver import padded, placeholders, read_sqlite_time, timestamp

COUNTERS = ("session_time", "input_octets", "output_octets", "input_packets", "output_packets")
DETAILS = (
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
COLUMNS = (
    "contract_id",
    "nas_id",
    "username",
    "acct_session_id",
    "acct_unique_id",
    "started_at",
    "updated_at",
    "stopped_at",
    *COUNTERS,
    *DETAILS,
    "terminate_cause",
)
TIMES = frozenset({"started_at", "updated_at", "stopped_at"})


class Sql:
    """Statements in the driver's own dialect."""

    def __init__(self, dialect: str, paramstyle: str) -> None:
        self.dialect = dialect
        self.paramstyle = paramstyle
        greatest = "max" if self.dialect == "sqlite" else "GREATEST"
        marks = placeholders(self.paramstyle, len(COLUMNS))
        merge = [
            "contract_id = COALESCE(excluded.contract_id, sessions.contract_id)",
            f"updated_at = {greatest}(sessions.updated_at, excluded.updated_at)",
            "stopped_at = excluded.stopped_at",
            *(f"{c} = {greatest}(sessions.{c}, excluded.{c})" for c in COUNTERS),
            *(f"{c} = COALESCE(excluded.{c}, sessions.{c})" for c in DETAILS),
            "terminate_cause = COALESCE(excluded.terminate_cause, sessions.terminate_cause)",
        ]
        # The ON CONFLICT target is the partial unique index of open sessions: it only fires
        # when another node opened the same session meanwhile (a NAS failing over).
        self.insert = (
            f"INSERT INTO sessions ({', '.join(COLUMNS)}) VALUES ({', '.join(marks)}) "  # noqa: S608
            "ON CONFLICT (nas_id, acct_unique_id) WHERE stopped_at IS NULL "
            f"DO UPDATE SET {', '.join(merge)}"
        )
        self._updates: dict[tuple[str, ...], str] = {}
        # Per column list: where its timestamps are (converted for the driver when bound).
        self._time_positions: dict[tuple[str, ...], tuple[int, ...]] = {}
        # Per set of changed columns: those columns in table order (an UPDATE's SET list).
        self._changed_columns: dict[frozenset[str], tuple[str, ...]] = {}
        # Per number of keys (padded: a few sizes): the SQLite load (see load_statements).
        self._loads: dict[int, str] = {}
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

    def bind(self, values: dict[str, Any], columns: tuple[str, ...]) -> tuple[Any, ...]:
        """The parameters of ``columns`` from a session's ``values``, timestamps converted."""
        bound = [values[name] for name in columns]
        positions = self._time_positions.get(columns)
        if positions is None:
            positions = tuple(i for i, name in enumerate(columns) if name in TIMES)
            self._time_positions[columns] = positions
        time = self.time
        for i in positions:
            if bound[i] is not None:
                bound[i] = time(bound[i])
        return tuple(bound)  # SQLAlchemy's driver-level executemany takes tuples only

    def load(self, count: int) -> str:
        """SQLite's three-part load of ``count`` keys (see _LOAD_PARTS), built once per size."""
        statement = self._loads.get(count)
        if statement is None:
            columns = ", ".join(LOADED)
            selects: list[str] = []
            used = 0
            for part, names in zip(_LOAD_PARTS, _LOAD_TIMES, strict=True):
                marks = self.marks(1 + count + len(names), start=used + 1)
                used += len(marks)
                listed = ", ".join(marks[1 : 1 + count])
                key = f"nas_id = {marks[0]} AND acct_unique_id IN ({listed})"
                fill = dict(zip(names, marks[1 + count :], strict=True))
                selects.append(
                    f"SELECT {columns} FROM sessions WHERE {key} AND "  # noqa: S608 - our names
                    + part.format(**fill)
                )
            statement = self._loads[count] = " UNION ALL ".join(selects)
        return statement

    def changed_columns(self, changed: set[str]) -> tuple[str, ...]:
        """``changed`` in table order; a batch sees only a few distinct sets, so cached."""
        key = frozenset(changed)
        columns = self._changed_columns.get(key)
        if columns is None:
            columns = self._changed_columns[key] = tuple(c for c in COLUMNS if c in key)
        return columns

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
            return read_sqlite_time(value)
        assert isinstance(value, datetime)
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_STATEMENTS: dict[tuple[str, str], Sql] = {}

Statement = tuple[str, Sequence[Any]]  # SQL and its parameters
Batch = tuple[str, list[Sequence[Any]]]  # SQL and the parameters of each row


def statements_for(dialect: str, paramstyle: str) -> Sql:
    sql = _STATEMENTS.get((dialect, paramstyle))
    if sql is None:
        sql = _STATEMENTS[(dialect, paramstyle)] = Sql(dialect, paramstyle)
    return sql


def quota_rows(sql: Sql, used: dict[tuple[int, date], QuotaDelta]) -> list[tuple[Any, ...]]:
    # In key order: transactions on several nodes then lock the rows in the same order and
    # cannot deadlock each other.
    return [
        (contract_id, sql.day(start), sql.day(delta.target.period_end), delta.used)
        for (contract_id, start), delta in sorted(used.items())
    ]


def quota_read(sql: Sql, ids: Sequence[int]) -> Statement:
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


def reboot_statements(sql: Sql, nas_id: int, at: datetime) -> list[Statement]:
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


LOADED = ("id", *COLUMNS)


# What a batch loads of a key, as three parts that do not overlap, each one index range (a
# single OR made SQLite read every session the key ever had, and a NAS that reuses its ids,
# or a soak replaying the same ones, gives a key thousands of closed sessions): the open
# session (stopped_at IS NULL), the closed ones started since {since} (ix_sessions_key), and
# those started before it but stopped since {closed} (ix_sessions_key_stopped). Each part
# names {since} before {closed}: positional parameters follow that order. SQLite only.
_LOAD_PARTS = (
    "stopped_at IS NULL",
    "stopped_at IS NOT NULL AND started_at >= {since}",
    "started_at < {since} AND stopped_at >= {closed}",
)
# The times each part of _LOAD_PARTS names, in order.
_LOAD_TIMES = tuple(
    tuple(name for name in ("since", "closed") if "{" + name + "}" in part) for part in _LOAD_PARTS
)


def load_statements(sql: Sql, records: Sequence[AcctRecord]) -> list[Statement]:
    """Queries for the open sessions of the batch's keys and closed ones recent enough."""
    keys: dict[int, set[str]] = defaultdict(set)
    for record in records:
        keys[record.nas_id].add(record.key)
    since = sql.time(min(r.started_at for r in records) - SAME_START)
    closed_since = sql.time(min(r.at for r in records) - LATE)
    columns = ", ".join(LOADED)
    times = {"since": since, "closed": closed_since}
    statements: list[Statement] = []
    for nas_id, ids in keys.items():
        values = sorted(ids)
        if sql.dialect == "postgresql":
            # One array parameter: the same prepared statement whatever the batch's size
            # (an IN list of each length would be parsed and planned anew). One OR here:
            # the three-part UNION ALL below cost PostgreSQL ~20 % of its accounting rate in
            # bench/cluster.py (few closed sessions per key); SQLite is where it paid.
            a, b, c, d = sql.marks(4)
            statements.append(
                (
                    f"SELECT {columns} FROM sessions "  # noqa: S608 - our names
                    f"WHERE nas_id = {a} AND acct_unique_id = ANY({b}::varchar[]) "
                    f"AND (stopped_at IS NULL OR started_at >= {c} OR stopped_at >= {d})",
                    (nas_id, values, since, closed_since),
                )
            )
            continue
        for start in range(0, len(values), 500):
            chunk = padded(values[start : start + 500])
            # Positional parameters: each part has its own placeholders and values.
            params: list[Any] = []
            for names in _LOAD_TIMES:
                params += [nas_id, *chunk, *(times[name] for name in names)]
            statements.append((sql.load(len(chunk)), tuple(params)))
    return statements
