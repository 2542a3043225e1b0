"""Accounting: Accounting-Requests become session records, acknowledged only once durable.

The handler resolves each request (contract, event time, terminate cause) into a record and
queues it on the writer (aaa.accounting_writer: group commit, the spool); the store writes a
batch of records in one transaction, with the pool leases they bind or release.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from radius_contracts.aaa.accounting_writer import AccountingWriter, Done
from radius_contracts.db.sqlite_writer import SqliteWriter
from radius_contracts.db.writer import write_transaction
from radius_contracts.domain import PoolFamily, PoolMode, parse_mac
from radius_contracts.index import AuthIndex
from radius_contracts.radius.messages import (
    ACCT_INTERIM,
    ACCT_OFF,
    ACCT_ON,
    ACCT_START,
    ACCT_STOP,
    AccountingRequest,
)
from radius_contracts.store import accounting as store
from radius_contracts.store import leases as lease_store
from radius_contracts.store.accounting import AcctRecord, Applied

__all__ = ["AccountingHandler", "AccountingStore", "LeaseTracking", "terminate_cause"]

# RFC 2866 §5.10 and RFC 3580 §3.32: Acct-Terminate-Cause values.
_TERMINATE_CAUSES = {
    1: "User-Request",
    2: "Lost-Carrier",
    3: "Lost-Service",
    4: "Idle-Timeout",
    5: "Session-Timeout",
    6: "Admin-Reset",
    7: "Admin-Reboot",
    8: "Port-Error",
    9: "NAS-Error",
    10: "NAS-Request",
    11: "NAS-Reboot",
    12: "Port-Unneeded",
    13: "Port-Preempted",
    14: "Port-Suspended",
    15: "Service-Unavailable",
    16: "Callback",
    17: "User-Error",
    18: "Host-Request",
    19: "Supplicant-Restart",
    20: "Reauthentication-Failure",
    21: "Port-Reinitialized",
    22: "Port-Administratively-Disabled",
}
_KINDS = frozenset({ACCT_START, ACCT_STOP, ACCT_INTERIM, ACCT_ON, ACCT_OFF})
# Event-Timestamp is trusted when it is this close to our clock; a NAS without NTP sends 1970.
_CLOCK_SKEW = timedelta(hours=1)
# Column widths (db.models.AcctSession): longer values are cut rather than fail the batch.
_TEXT, _ADDRESS = 253, 64


def terminate_cause(value: int | None) -> str | None:
    if value is None:
        return None
    return _TERMINATE_CAUSES.get(value, str(value))


def _cut(value: str | None, width: int) -> str | None:
    return value if value is None or len(value) <= width else value[:width]


class AccountingStore:
    """Writes batches of accounting records, one transaction each.

    On SQLite the batch runs on the daemon's SQLite write thread (db.sqlite_writer.SqliteWriter,
    shared with the auth log); on PostgreSQL through the async engine.
    Leases of managed pools are bound and released in the same transaction.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        sqlite: SqliteWriter | None = None,
        leases: LeaseTracking | None = None,
        quota: store.QuotaResolver | None = None,
        claims: bool = False,
    ) -> None:
        self._sessions = sessions
        self._sqlite = sqlite
        self._leases = leases
        self._quota = quota
        self._claims = claims  # new sessions take over login claims (aaa.claims)

    @property
    def chains(self) -> bool:
        """Whether ``write_chain`` can be used (SQLite's write thread)."""
        return self._sqlite is not None

    def _sqlite_work(self, records: list[AcctRecord]) -> Callable[[sqlite3.Connection], Applied]:
        leases, quota, claims = self._leases, self._quota, self._claims

        def work(connection: sqlite3.Connection) -> Applied:
            # On the write thread: the index is read here (leases, and quota targets in
            # apply_sqlite) as on the loop; its snapshots are replaced whole, never changed.
            bound, released = leases.items(records) if leases else ([], [])
            applied = store.apply_sqlite(connection, records, quota, claims)
            now = datetime.now(UTC)
            for batch in (
                lease_store.bind_batch("sqlite", "qmark", now, bound),
                lease_store.release_batch("sqlite", "qmark", now, released),
            ):
                if batch is not None:
                    connection.executemany(*batch)
            return applied

        return work

    async def write_chain(
        self,
        records: list[AcctRecord],
        following: Callable[[], list[AcctRecord] | None],
        committed: Callable[[Applied], None],
    ) -> Exception | None:
        """On SQLite: ``records``, then what ``following`` hands over, chained on the write
        thread (SqliteWriter.run_chain); why the last batch failed, or None."""
        assert self._sqlite is not None

        def follow() -> Callable[[sqlite3.Connection], Applied] | None:
            more = following()
            return None if more is None else self._sqlite_work(more)

        failed = await self._sqlite.run_chain(self._sqlite_work(records), follow, committed)
        return None if failed is None else failed[1]

    async def write(self, records: list[AcctRecord]) -> Applied:
        if self._sqlite is not None:
            return await self._sqlite.run(self._sqlite_work(records))
        bound, released = self._leases.items(records) if self._leases else ([], [])
        quota, claims = self._quota, self._claims
        async with write_transaction(self._sessions) as session:
            applied = await store.apply(session, records, quota, claims)
            now = datetime.now(UTC)
            if bound:
                await lease_store.bind(session, now, bound)
            if released:
                await lease_store.release(session, now, released)
        return applied

    @staticmethod
    def is_data_error(exc: BaseException) -> bool:
        return store.is_data_error(exc)


class AccountingHandler:
    """Turns Accounting-Requests into records for the writer (the listener's AcctHandler)."""

    def __init__(
        self,
        index: AuthIndex,
        writer: AccountingWriter,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.index = index
        self.writer = writer
        self._clock = clock
        self.ignored = 0  # status types that describe no session (tunnels, Failed)

    def handle_accounting(self, request: AccountingRequest, done: Done) -> bool:
        kind = request.status_type
        if kind not in _KINDS:
            # Tunnel-Start/-Stop/-Reject/-Link-* (RFC 2867) and Failed: nothing to record,
            # acknowledged so the NAS stops retransmitting.
            self.ignored += 1
            done(True)
            return True
        return self.writer.submit(self.record(request), done)

    def record(self, request: AccountingRequest) -> AcctRecord:
        now = self._clock()
        at = now - timedelta(seconds=request.delay) if request.delay else now
        stamp = request.event_timestamp
        if stamp is not None:
            # RFC 2869 §5.3: when the event happened; exact across retransmits.
            event = datetime.fromtimestamp(stamp, UTC)
            if abs(event - now) <= _CLOCK_SKEW:
                at = event
        name = request.user_name or ""
        contract_id = None
        if name:
            contract = self.index.contract_by_username(name)
            if contract is None and 12 <= len(name) <= 17:  # could be a MAC (MAC auth)
                mac = parse_mac(name)
                contract = self.index.contract_by_mac(mac) if mac else None
            contract_id = contract.id if contract is not None else None
        return AcctRecord(
            kind=request.status_type,
            nas_id=request.nas_id,
            at=at,
            key=_cut(request.acct_session_id, _TEXT) or "",
            contract_id=contract_id,
            username=_cut(name, _TEXT) or "",
            session_time=request.session_time,
            input_octets=request.input_octets,
            output_octets=request.output_octets,
            input_packets=request.input_packets,
            output_packets=request.output_packets,
            framed_ip=request.framed_ip,
            framed_ipv6_prefix=request.framed_ipv6_prefix,
            framed_ipv6_address=request.framed_ipv6_address,
            delegated_ipv6_prefix=request.delegated_ipv6_prefix,
            calling_station_id=_cut(request.calling_station_id, _TEXT),
            called_station_id=_cut(request.called_station_id, _TEXT),
            nas_port=request.nas_port,
            nas_port_id=_cut(request.nas_port_id, _TEXT),
            nas_ip_address=_cut(request.nas_ip_address, _ADDRESS),
            nas_identifier=_cut(request.nas_identifier, _TEXT),
            terminate_cause=terminate_cause(request.terminate_cause),
        )


class LeaseTracking:
    """Accounting confirms and releases managed-pool leases, in the same transaction.

    Start and Interim-Update bind the session's address (held for the pool's lease_time from
    now on); Stop releases it (the row remembers the contract, which gets it back next time).
    Only contracts whose pool for that family is an active managed one are looked at.
    """

    _FIELDS = (
        ("framed_ip", "pool_name_ipv4", (PoolFamily.IPV4,)),
        ("framed_ipv6_prefix", "pool_name_ipv6", (PoolFamily.IPV6,)),
        ("delegated_ipv6_prefix", "pool_name_ipv6", (PoolFamily.IPV6_PD,)),
    )

    def __init__(self, index: AuthIndex) -> None:
        self.index = index

    def items(
        self, records: Sequence[AcctRecord]
    ) -> tuple[list[tuple[int, str, int]], list[tuple[int, str]]]:
        """(contract, address, lease time) to bind and (contract, address) to release."""
        bound: list[tuple[int, str, int]] = []
        released: list[tuple[int, str]] = []
        index = self.index
        for record in records:
            if record.contract_id is None or record.kind not in (
                ACCT_START, ACCT_INTERIM, ACCT_STOP,
            ):  # fmt: skip
                continue
            contract = index.contract(record.contract_id)
            if contract is None:
                continue
            config = contract.config
            if config.pool_name_ipv4 is None and config.pool_name_ipv6 is None:
                continue  # most contracts: nothing to look up
            for field_name, pool_field, families in self._FIELDS:
                address = getattr(record, field_name)
                pool_name = getattr(config, pool_field)
                if address is None or pool_name is None:
                    continue
                pool = index.pool(pool_name)
                if pool is None or pool.mode is not PoolMode.MANAGED or pool.family not in families:
                    continue
                if record.kind == ACCT_STOP:
                    released.append((record.contract_id, address))
                else:
                    bound.append((record.contract_id, address, pool.lease_time))
        return bound, released
