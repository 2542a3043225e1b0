"""What the accounting store takes and gives: records in, sessions and crossings out.

An AcctRecord is one Accounting-Request resolved (aaa.accounting makes them); Applied is
what a batch changed, for the in-memory session view, the quota keeper and the CoA path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from radius_contracts.plans import QuotaCounts

START, STOP, INTERIM, ACCOUNTING_ON, ACCOUNTING_OFF = 1, 2, 3, 7, 8

# Two records of one session whose start times differ by less than this are the same session
# (start times are computed from Acct-Session-Time and Acct-Delay-Time, so they wobble).
SAME_START = timedelta(seconds=60)
REBOOT = "NAS-Reboot"  # terminate cause of sessions closed by Accounting-On/Off
# A record stamped at most this long after its session closed still belongs to it.
LATE = timedelta(seconds=5)


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
class QuotaDelta:
    """The bytes one batch counts against one contract's quota period."""

    target: QuotaTarget
    used: int = 0


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
