"""Accounting sessions and traffic usage as the management API shows them (read-only)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError

from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import AcctSession, CoaLogEntry, Contract, UsageDaily
from radius_contracts.domain import CoaRecord
from radius_contracts.errors import InvalidInput, StorageUnavailable
from radius_contracts.services.base import Actor, ServiceContext, audit
from radius_contracts.store import coa as coa_store
from radius_contracts.store import common
from radius_contracts.store import sessions as store
from radius_contracts.store.common import Page
from radius_contracts.store.sessions import IpMatch, SessionFilter

__all__ = ["DEFAULT_DAYS", "DEFAULT_MONTHS", "SessionsService", "Usage", "UsagePeriod", "ip_match"]

UsageGrouping = Literal["day", "month"]
DEFAULT_DAYS = 31  # usage by day covers this many days up to today unless asked otherwise
DEFAULT_MONTHS = 12  # usage by month: this many months up to the current one
# A prefix matches the addresses inside it by listing them; beyond this many, only the
# prefix columns can match (an IPv4 prefix that wide is refused: it could match nothing).
MAX_LISTED_ADDRESSES = 256


@dataclass(frozen=True, slots=True)
class UsagePeriod:
    """Traffic and online time of one day or month (starting on ``period_start``, UTC)."""

    period_start: date
    input_octets: int
    output_octets: int
    session_time: int


@dataclass(frozen=True, slots=True)
class Usage:
    """A contract's usage from ``since`` to ``until``: periods with traffic, oldest first."""

    contract_id: int
    period: UsageGrouping
    since: date
    until: date
    items: tuple[UsagePeriod, ...]

    @property
    def total_input_octets(self) -> int:
        return sum(item.input_octets for item in self.items)

    @property
    def total_output_octets(self) -> int:
        return sum(item.output_octets for item in self.items)

    @property
    def total_session_time(self) -> int:
        return sum(item.session_time for item in self.items)


def ip_match(value: str) -> IpMatch:
    """What a search for ``value`` (an IP address or prefix) compares with; InvalidInput if bad.

    An address matches framed_ip / framed_ipv6_address equal to it, and framed or delegated
    IPv6 prefixes that contain it. A prefix matches framed or delegated IPv6 prefixes equal to
    it or containing it, and, when it holds at most MAX_LISTED_ADDRESSES addresses, the
    framed addresses inside it. Prefixes are stored in canonical form with the host bits
    cleared, so "contains" is an equality with one of the enclosing prefixes.
    """
    text = value.strip()
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    try:
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False)
        else:
            address = ipaddress.ip_address(text)
            if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
                raise ValueError("zone")
            network = ipaddress.ip_network(address)
    except ValueError:
        raise InvalidInput(
            f"{value!r} is not an IP address or prefix (e.g. 100.64.0.7, 2001:db8::/56)",
            field="ip",
        ) from None
    addresses: set[str] = set()
    if network.num_addresses == 1:
        addresses.add(str(network.network_address))
    elif network.num_addresses <= MAX_LISTED_ADDRESSES:
        addresses.update(str(a) for a in network)
    elif network.version == 4:
        raise InvalidInput(
            f"IPv4 prefix {network} is too wide to search; give an address or a prefix of at "
            f"most {MAX_LISTED_ADDRESSES} addresses (/24 or longer)",
            field="ip",
        )
    prefixes: set[str] = set()
    if network.version == 6:
        prefixes.update(
            str(network.supernet(new_prefix=length)) for length in range(network.prefixlen + 1)
        )
    return IpMatch(addresses=frozenset(addresses), prefixes=frozenset(prefixes))


def _utc(value: datetime | None, field: str) -> datetime | None:
    """``value`` as aware UTC; a naive one is taken as UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{value.isoformat()} is out of range in UTC", field=field) from None


def _months_back(day: date, months: int) -> date:
    """The first day of the month ``months`` before ``day``'s month (date.min at the limit)."""
    index = day.year * 12 + day.month - 1 - months
    if index < 12:  # before year 1
        return date.min
    return date(index // 12, index % 12 + 1, 1)


def _group(rows: list[UsageDaily], period: UsageGrouping) -> tuple[UsagePeriod, ...]:
    # Grouped here rather than in SQL: month truncation differs between SQLite and PostgreSQL,
    # and a contract has at most one row per day.
    totals: dict[date, list[int]] = {}
    for row in rows:
        start = row.day if period == "day" else row.day.replace(day=1)
        total = totals.setdefault(start, [0, 0, 0])
        total[0] += row.input_octets
        total[1] += row.output_octets
        total[2] += row.session_time
    return tuple(
        UsagePeriod(period_start=start, input_octets=i, output_octets=o, session_time=t)
        for start, (i, o, t) in totals.items()
        if i or o or t
    )


class SessionsService:
    """Accounting sessions (online now and history) and per-contract usage totals."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context

    async def page(
        self,
        *,
        online: bool | None = None,
        contract_id: int | None = None,
        username: str | None = None,
        nas_id: int | None = None,
        pop_id: int | None = None,
        ip: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[AcctSession]:
        """Sessions matching every given filter, newest first.

        ``since``/``until`` keep the sessions online at some moment between them: started by
        ``until`` and not stopped before ``since``. ``ip`` is described at ``ip_match``.
        """
        start, end = _utc(since, "since"), _utc(until, "until")
        if start is not None and end is not None and start > end:
            raise InvalidInput(
                f"since ({start.isoformat()}) must not be later than until ({end.isoformat()})",
                field="since",
            )
        where = SessionFilter(
            online=online,
            contract_id=contract_id,
            username=username,
            nas_id=nas_id,
            pop_id=pop_id,
            ip=ip_match(ip) if ip is not None else None,
            since=start,
            until=end,
        )
        with wrap_db_errors():
            async with self.context.sessions() as session:
                stmt = store.sessions_stmt(where)
                return await common.page(session, stmt, limit=limit, offset=offset)

    async def get(self, session_id: int) -> AcctSession:
        """One session; NotFound (field ``id``) when there is none with this id."""
        with wrap_db_errors():
            async with self.context.sessions() as session:
                return await common.get(session, AcctSession, session_id, "session")

    async def disconnect(self, actor: Actor, session_id: int, *, wait: bool) -> CoaRecord | None:
        """Send the session's NAS a Disconnect-Request; with ``wait``, how the NAS answered.

        NotFound for an unknown session, Conflict when it is no longer online.
        """
        live = self.context.live
        if live is None:
            raise StorageUnavailable("RADIUS is not running in this process")
        reason = f"disconnect requested by {actor.name or 'API'}"
        with wrap_db_errors():
            outcome = await live.disconnect_session(session_id, reason)
            async with self.context.transaction() as session:
                audit(session, actor, "disconnect", "sessions", session_id)
        return await outcome if wait else None

    async def write_coa_log(self, records: Sequence[CoaRecord]) -> None:
        """Append CoA outcomes (the CoA log's sink).

        A record may point at a contract or NAS deleted meanwhile, or a session purged: such
        a batch is written row by row, without the vanished references, so one row never
        holds the log up (the log writer retries a failed batch forever).
        """
        try:
            async with self.context.transaction() as session:
                await coa_store.write_log(session, records)
            return
        except IntegrityError:
            pass
        for record in records:
            for attempt in (record, replace(record, contract_id=None, nas_id=None)):
                try:
                    async with self.context.transaction() as session:
                        await coa_store.write_log(session, [attempt])
                    break
                except IntegrityError:
                    continue

    async def coa_log(self, session_id: int, *, limit: int, offset: int) -> Page[CoaLogEntry]:
        """The CoA and Disconnect-Requests sent for the session, newest first."""
        with wrap_db_errors():
            async with self.context.sessions() as session:
                await common.get(session, AcctSession, session_id, "session")
                stmt = coa_store.coa_log_stmt(session_id=session_id)
                return await common.page(session, stmt, limit=limit, offset=offset)

    async def usage(
        self,
        contract_id: int,
        *,
        period: UsageGrouping = "day",
        since: date | None = None,
        until: date | None = None,
        today: date | None = None,
    ) -> Usage:
        """The contract's traffic per UTC day or month from ``since`` to ``until`` (inclusive).

        ``until`` defaults to today (UTC); ``since`` to DEFAULT_DAYS days, or DEFAULT_MONTHS
        months counting the current one, up to ``until``. Periods without usage are left out;
        a month only partly inside the range counts only its days inside it. NotFound for an
        unknown contract.
        """
        end = until or today or datetime.now(UTC).date()
        if since is not None:
            start = since
        elif period == "day":
            start = date.fromordinal(max(end.toordinal() - (DEFAULT_DAYS - 1), 1))
        else:
            start = _months_back(end, DEFAULT_MONTHS - 1)
        if start > end:
            limit = f"until ({end})" if until is not None else f"today ({end}; until not given)"
            raise InvalidInput(f"since ({start}) must not be later than {limit}", field="since")
        with wrap_db_errors():
            async with self.context.sessions() as session:
                await common.get(session, Contract, contract_id, "contract")
                rows = list(await store.usage_days(session, contract_id, start, end))
        return Usage(
            contract_id=contract_id,
            period=period,
            since=start,
            until=end,
            items=_group(rows, period),
        )
