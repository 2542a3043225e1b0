"""Accounting sessions and per-contract usage (read-only)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from radius_contracts.api.schemas.common import MAX_INT32, Id, Input, Output, Text253
from radius_contracts.db.models import AcctSession
from radius_contracts.services.sessions import Usage

# RADIUS counts from the NAS's side: "input" is what the NAS received from the subscriber.
INPUT_OCTETS = (
    "Octets the subscriber sent (uploaded), as counted by the NAS: RADIUS Acct-Input-Octets is "
    "from the NAS's point of view, i.e. subscriber → NAS. 64-bit: Acct-Input-Gigawords * 2^32 "
    "is already added in."
)
OUTPUT_OCTETS = (
    "Octets the subscriber received (downloaded), as counted by the NAS: RADIUS "
    "Acct-Output-Octets, NAS → subscriber. 64-bit: Acct-Output-Gigawords * 2^32 is already "
    "added in."
)
SESSION_TIME = "Seconds online (Acct-Session-Time)."

IpQuery = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class SessionPublic(Output):
    """One accounting session as its NAS reported it (Start, Interim-Updates, Stop)."""

    id: int = Field(description="The session's id.")
    contract_id: int | None = Field(
        description="The contract the User-Name belonged to; null when it matched no contract "
        "or the contract was deleted."
    )
    username: str = Field(description="User-Name as the NAS sent it.")
    nas_id: int | None = Field(description="The NAS that reported it; null once it is deleted.")
    acct_session_id: str = Field(
        description="Acct-Session-Id: the NAS's id for the session. NAS reuse them (e.g. "
        "after a reboot), so it is unique only among open sessions of one NAS."
    )
    acct_unique_id: str = Field(
        description="The key the session is stored under on its NAS while it is open "
        "(currently the same as acct_session_id)."
    )
    started_at: datetime = Field(description="When the session started (UTC).")
    updated_at: datetime = Field(
        description="When the NAS last reported on it: Start, Interim-Update or Stop (UTC)."
    )
    stopped_at: datetime | None = Field(
        description="When it ended (UTC): Stop, Accounting-On/Off from its NAS, or closed as "
        "stale; null while online."
    )
    online: bool = Field(description="True while the session is open (stopped_at is null).")
    session_time: int = Field(description=SESSION_TIME)
    input_octets: int = Field(description=INPUT_OCTETS)
    output_octets: int = Field(description=OUTPUT_OCTETS)
    input_packets: int = Field(
        description="Packets the subscriber sent, as counted by the NAS (Acct-Input-Packets)."
    )
    output_packets: int = Field(
        description="Packets the subscriber received, as counted by the NAS (Acct-Output-Packets)."
    )
    framed_ip: str | None = Field(description="Framed-IP-Address: the subscriber's IPv4.")
    framed_ipv6_address: str | None = Field(
        description="Framed-IPv6-Address: the subscriber's IPv6 address (DHCPv6 IA_NA)."
    )
    framed_ipv6_prefix: str | None = Field(
        description="Framed-IPv6-Prefix: the subscriber's link prefix (SLAAC)."
    )
    delegated_ipv6_prefix: str | None = Field(
        description="Delegated-IPv6-Prefix: the prefix delegated to the subscriber's router."
    )
    calling_station_id: str | None = Field(
        description="Calling-Station-Id: usually the subscriber's MAC address."
    )
    called_station_id: str | None = Field(
        description="Called-Station-Id: usually the NAS's MAC address or service name."
    )
    nas_port: int | None = Field(description="NAS-Port: the NAS's port number.")
    nas_port_id: str | None = Field(description="NAS-Port-Id: the NAS's port name.")
    nas_ip_address: str | None = Field(
        description="NAS-IP-Address as the NAS sent it (CoA/Disconnect-Requests repeat it)."
    )
    nas_identifier: str | None = Field(description="NAS-Identifier as the NAS sent it.")
    terminate_cause: str | None = Field(
        description="Acct-Terminate-Cause (e.g. User-Request, Idle-Timeout, NAS-Reboot, "
        "Stale); null while online."
    )

    @classmethod
    def of(cls, row: AcctSession) -> SessionPublic:
        values = {name: getattr(row, name) for name in cls.model_fields if name != "online"}
        return cls.model_validate({**values, "online": row.stopped_at is None})


class SessionFilters(Input):
    online: bool | None = Field(
        default=None,
        description="true: only open sessions (stopped_at null); false: only closed ones.",
    )
    contract_id: Id | None = Field(default=None, description="Sessions of this contract.")
    username: Text253 | None = Field(
        default=None, description="User-Name, exact but case-insensitive."
    )
    nas_id: Id | None = Field(default=None, description="Sessions reported by this NAS.")
    pop_id: Id | None = Field(default=None, description="Sessions on any NAS of this POP.")
    ip: IpQuery | None = Field(
        default=None,
        description="An IP address or prefix. An address finds sessions whose framed_ip or "
        "framed_ipv6_address is that address, or whose framed or delegated IPv6 prefix contains "
        "it. A prefix finds sessions whose framed or delegated IPv6 prefix is or contains it, "
        "and, for prefixes of at most 256 addresses, the framed addresses inside it; wider "
        "IPv4 prefixes are refused. Combine with since/until to ask who had an address when.",
    )
    since: datetime | None = Field(
        default=None,
        description="ISO 8601 date-time (UTC when no offset is given): only sessions still "
        "online at this moment or later (stopped_at null or ≥ since).",
    )
    until: datetime | None = Field(
        default=None,
        description="ISO 8601 date-time (UTC when no offset is given): only sessions started "
        "at this moment or earlier. With since: online at some moment of [since, until].",
    )
    limit: int = Field(default=50, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, le=MAX_INT32, description="Items to skip.")


class UsageQuery(Input):
    period: Literal["day", "month"] = Field(
        default="day", description="Add usage up per UTC day or per calendar month (UTC)."
    )
    since: date | None = Field(
        default=None,
        description="First day counted (YYYY-MM-DD, UTC). Default: 30 days before until by "
        "day; the first day of the month 11 months before until's by month. Days before it "
        "are left out even when their month is in the result.",
    )
    until: date | None = Field(
        default=None, description="Last day counted, inclusive (YYYY-MM-DD, UTC). Default: today."
    )


class UsagePeriodPublic(Output):
    period_start: date = Field(
        description="The UTC day, or the first day of the month, the totals are for."
    )
    input_octets: int = Field(description=INPUT_OCTETS)
    output_octets: int = Field(description=OUTPUT_OCTETS)
    session_time: int = Field(description="Seconds online in the period.")


class UsagePublic(Output):
    """A contract's traffic and online time per period, from the accounting data."""

    contract_id: int = Field(description="The contract.")
    period: Literal["day", "month"] = Field(description="How items are grouped.")
    since: date = Field(description="First day counted (UTC).")
    until: date = Field(description="Last day counted, inclusive (UTC).")
    items: list[UsagePeriodPublic] = Field(
        description="Periods with usage, oldest first; periods without any are left out."
    )
    total_input_octets: int = Field(description="Sum of items' input_octets (uploaded).")
    total_output_octets: int = Field(description="Sum of items' output_octets (downloaded).")
    total_session_time: int = Field(description="Sum of items' session_time (seconds).")

    @classmethod
    def of(cls, usage: Usage) -> UsagePublic:
        return cls(
            contract_id=usage.contract_id,
            period=usage.period,
            since=usage.since,
            until=usage.until,
            items=[
                UsagePeriodPublic(
                    period_start=item.period_start,
                    input_octets=item.input_octets,
                    output_octets=item.output_octets,
                    session_time=item.session_time,
                )
                for item in usage.items
            ],
            total_input_octets=usage.total_input_octets,
            total_output_octets=usage.total_output_octets,
            total_session_time=usage.total_session_time,
        )
