"""What each record of a batch does to its session, decided in Python from the rows the batch
loaded; the writes that do it, in order (see store.accounting for the whole batch)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from radius_contracts.domain import station_key
from radius_contracts.plans import counted_bytes
from radius_contracts.store.accounting_records import (
    ACCOUNTING_OFF,
    ACCOUNTING_ON,
    INTERIM,
    LATE,
    REBOOT,
    SAME_START,
    START,
    STOP,
    AcctRecord,
    Applied,
    QuotaDelta,
    QuotaResolver,
    SessionState,
)
from radius_contracts.store.accounting_sql import (
    COLUMNS,
    COUNTERS,
    DETAILS,
    LOADED,
    TIMES,
    Batch,
    Sql,
)


@dataclass(slots=True)
class _Row:
    values: dict[str, Any]
    id: int | None = None  # None: inserted by this batch
    # Columns this batch changed: the UPDATE sets only these. SQLite maintains an index
    # only when its columns are in the SET list, and an Interim-Update changes none.
    changed: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Sessions:
    """The rows of one NAS and session id that the batch may touch."""

    open: _Row | None = None
    closed: list[_Row] = field(default_factory=list)


def segments(
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


def crossings(
    sql: Sql, used: dict[tuple[int, date], QuotaDelta], rows: Iterable[Any]
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


def absorb(sql: Sql, found: dict[tuple[int, str], Sessions], rows: Iterable[Any]) -> None:
    read_time = sql.read_time
    for row in rows:
        values = dict(zip(LOADED, row, strict=True))
        row_id = values.pop("id")
        for name in TIMES:
            values[name] = read_time(values[name])
        entry = found.setdefault((values["nas_id"], values["acct_unique_id"]), Sessions())
        loaded = _Row(values, row_id)
        if values["stopped_at"] is None:
            entry.open = loaded
        else:
            entry.closed.append(loaded)


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
    for name in COUNTERS:
        values[name] = getattr(record, name) or 0
    for name in DETAILS:
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
    for name in COUNTERS:
        value = getattr(record, name)
        if value is not None and value > values[name]:
            values[name] = value  # counters only grow; an older record never lowers them
            changed.add(name)
    for name in DETAILS:
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


def plan(
    sql: Sql,
    records: Sequence[AcctRecord],
    found: dict[tuple[int, str], Sessions],
    applied: Applied,
    quota: QuotaResolver | None = None,
    used: dict[tuple[int, date], QuotaDelta] | None = None,
    claims: bool = False,
) -> list[Batch]:
    """Decide what each record does to its session; the writes that do it, in order.

    Traffic that counts against a quota is added to ``used`` (written by the caller).
    """
    usage: dict[tuple[int, date], list[int]] = {}
    inserts: list[_Row] = []
    touched: dict[int, _Row] = {}  # id(row) → row, in first-touch order
    for record in records:
        entry = found.setdefault((record.nas_id, record.key), Sessions())
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
                        counted = used[key] = QuotaDelta(target)
                    counted.used += counted_bytes(target.counts, delta[0], delta[1])

    writes: list[Batch] = []
    if inserts:
        writes.append((sql.insert, [sql.bind(row.values, COLUMNS) for row in inserts]))
        if claims:
            taken: list[Sequence[Any]] = [
                _claim_place(row.values) for row in inserts if row.values["contract_id"]
            ]
            if taken:
                writes.append((sql.claims_taken, taken))
    updates: dict[tuple[str, ...], list[_Row]] = {}
    for row in touched.values():
        if row.id is not None and row.changed:
            updates.setdefault(sql.changed_columns(row.changed), []).append(row)
    for columns, rows in updates.items():
        writes.append(
            (sql.update(columns), [(*sql.bind(row.values, columns), row.id) for row in rows])
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
    entry: Sessions, record: AcctRecord, inserts: list[_Row], applied: Applied
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
    """Parameters of Sql.claims_taken for a new session: its contract and place (the same
    place as aaa.sessions.same_place: station, or NAS and port, or neither says)."""
    station = station_key(values["calling_station_id"])
    port, port_id = values["nas_port"], values["nas_port_id"]
    anonymous = int(station is None and port is None and port_id is None)
    return (values["contract_id"], station, values["nas_id"], port_id, port, anonymous)
