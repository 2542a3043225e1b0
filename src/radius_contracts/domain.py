"""Frozen values that cross layers: no ORM rows, no HTTP, no pyrad types."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from radius_contracts.plans import PlanSnapshot, QuotaState


class ContractStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    INACTIVE = "inactive"
    CANCELLED = "cancelled"


class LayoutPurpose(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    QUOTA = "quota"  # contracts over their plan's data quota, when its action says so


class PoolFamily(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    IPV6_PD = "ipv6-pd"


class PoolMode(StrEnum):
    MANAGED = "managed"
    NAS = "nas"


class TokenRole(StrEnum):
    ADMIN = "admin"
    READ_ONLY = "read-only"


# Which status a contract may move to, by action name. "cancelled" is final: billing systems
# treat a cancelled contract as closed, so reviving one means creating a new contract.
TRANSITIONS: Mapping[str, tuple[frozenset[ContractStatus], ContractStatus]] = {
    "activate": (
        frozenset({ContractStatus.SUSPENDED, ContractStatus.INACTIVE}),
        ContractStatus.ACTIVE,
    ),
    "suspend": (frozenset({ContractStatus.ACTIVE}), ContractStatus.SUSPENDED),
    "deactivate": (
        frozenset({ContractStatus.ACTIVE, ContractStatus.SUSPENDED}),
        ContractStatus.INACTIVE,
    ),
    "cancel": (
        frozenset({ContractStatus.ACTIVE, ContractStatus.SUSPENDED, ContractStatus.INACTIVE}),
        ContractStatus.CANCELLED,
    ),
}


def allowed_transitions(status: ContractStatus) -> dict[str, ContractStatus]:
    """Actions allowed from ``status`` and the status each leads to."""
    return {action: to for action, (sources, to) in TRANSITIONS.items() if status in sources}


# ASCII only: speeds go to the NAS as given, and str \d also matches e.g. Arabic-Indic digits.
_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$", re.ASCII)
_SPEED_FACTORS = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_speed(text: str) -> int:
    """Bit/s of a speed as NAS vendors write it: ``512k``, ``50M``, ``1G`` or plain ``2000000``.

    Suffixes are decimal (k = 1000), as MikroTik's rate-limit and Cisco/Huawei policies use them.
    Raises ValueError for anything else.
    """
    match = _SPEED.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a speed; use bit/s or a k/M/G suffix, e.g. 512k, 50M")
    number, unit = match.groups()
    # Decimal, not float: 4.1M is 4,100,000 bit/s, where float makes it 4,099,999.9999999995.
    bps = Decimal(number) * _SPEED_FACTORS[unit.lower()]
    if bps != int(bps):
        raise ValueError(f"{text!r} is not a whole number of bit/s")
    if bps > 2**63 - 1:
        raise ValueError(f"{text!r} is too fast")
    return int(bps)


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """What decides a subscriber's connection: credentials, speeds, addresses, binding."""

    username: str
    password: str | None = field(default=None, repr=False)  # reprs end up in logs
    min_upload: str | None = None
    max_upload: str | None = None
    min_download: str | None = None
    max_download: str | None = None
    pool_name_ipv4: str | None = None
    ipv4: str | None = None
    pool_name_ipv6: str | None = None
    ipv6: str | None = None
    delegated_ipv6_prefix: str | None = None
    mac: str | None = None
    simultaneous_use: int | None = 1  # None: unlimited


@dataclass(frozen=True, slots=True)
class ContractSnapshot:
    """A contract as authorization and template rendering see it.

    ``config`` is what the reply is rendered from: with a plan, the speeds the plan gives now
    (its window, the quota state; see plans.effective_config), and ``own_config`` keeps the
    contract's stored config. Without a plan, or when the plan changes nothing, ``config`` is
    the stored config and ``own_config`` is None.
    """

    id: int
    number: str
    status: ContractStatus
    config: ConnectionConfig
    start_date: date | None = None
    end_date: date | None = None
    auto_extend: bool = False
    customer_name: str | None = None
    customer_external_id: str | None = None
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    customer_custom_fields: Mapping[str, Any] = field(default_factory=dict)
    plan_id: int | None = None
    billing_day: int | None = None  # anchors billing-month quota periods
    plan: PlanSnapshot | None = None  # resolved by the index
    quota_state: QuotaState | None = None  # None: the plan has no quota
    window: int | None = None  # the plan's time window in force, by index
    own_config: ConnectionConfig | None = None

    @property
    def stored_config(self) -> ConnectionConfig:
        """The config as the contract stores it, before its plan's policy."""
        return self.own_config or self.config


_MAC_SEPARATORS = re.compile(r"[:\-.\s]")
_MAC_HEX = re.compile(r"[0-9a-fA-F]{12}", re.ASCII)


def parse_mac(text: str) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` for a MAC in any common notation, else None.

    Accepts aa:bb:.., AA-BB-.., aabb.ccdd.eeff and aabbccddeeff: NAS vendors send
    Calling-Station-Id and MAC-auth User-Names in all of these.
    """
    digits = _MAC_SEPARATORS.sub("", text)
    if len(digits) != 12 or not _MAC_HEX.fullmatch(digits):
        return None
    digits = digits.lower()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


_STATIONS: dict[str, str] = {}  # Calling-Station-Id as sent → station_key (bounded)
_STATIONS_MAX = 200_000


def station_key(value: str | None) -> str | None:
    """A Calling-Station-Id as sessions are compared by: NAS write the same MAC in different
    notations in Access- and Accounting-Requests (``AA-BB-…``, ``aabb.ccdd.…``), so MACs are
    normalised; anything else is kept as sent. Remembered per text: a device sends the same
    one at every login and Interim-Update, and parsing it costs more than the whole check."""
    if not value:
        return None
    key = _STATIONS.get(value)
    if key is None:
        if len(_STATIONS) >= _STATIONS_MAX:
            _STATIONS.clear()
        key = _STATIONS[value] = parse_mac(value) or value
    return key


# Attributes a CoA or Disconnect-Request may identify a session by (RFC 5176 §3), each as
# recorded from the session's accounting. NAS-IP-Address and NAS-Identifier name the NAS itself.
COA_IDENTIFIERS = (
    "User-Name",
    "Acct-Session-Id",
    "Framed-IP-Address",
    "Framed-IPv6-Prefix",
    "NAS-IP-Address",
    "NAS-Identifier",
    "Calling-Station-Id",
    "NAS-Port",
    "NAS-Port-Id",
)


@dataclass(frozen=True, slots=True)
class CoaPolicy:
    """How a manufacturer's NAS take CoA and Disconnect-Requests.

    ``identifiers``: the session identification attributes to send (those recorded for the
    session; see COA_IDENTIFIERS). ``attributes``: reply attributes a CoA may change live
    (names as in the dictionaries); a change to any other needs a new session, so it is made
    by Disconnect. ``deactivate``: for a service attribute, the attribute that switches its
    old value off first (Juniper: ERX-Service-Activate → ERX-Service-Deactivate).
    ``disconnect_fallback``: a CoA the NAS refuses or never answers is followed by a
    Disconnect, so the subscriber reconnects with the new settings.
    """

    identifiers: tuple[str, ...] = ("User-Name", "Acct-Session-Id")
    attributes: tuple[str, ...] = ()
    deactivate: Mapping[str, str] = field(default_factory=dict)
    disconnect_fallback: bool = True


@dataclass(frozen=True, slots=True)
class SessionTarget:
    """An open session as a CoA or Disconnect-Request names it (from its accounting)."""

    id: int
    contract_id: int | None
    nas_id: int | None
    username: str
    acct_session_id: str
    framed_ip: str | None = None
    framed_ipv6_prefix: str | None = None
    nas_ip_address: str | None = None
    nas_identifier: str | None = None
    calling_station_id: str | None = None
    nas_port: int | None = None
    nas_port_id: str | None = None


@dataclass(frozen=True, slots=True)
class CoaRecord:
    """One CoA or Disconnect-Request sent for a session and how it ended (the CoA log)."""

    session_id: int
    contract_id: int | None
    nas_id: int | None
    kind: str  # "coa" or "disconnect"
    reason: str
    attributes: tuple[tuple[str, str], ...]  # what was sent, as (name, value) text
    requested_at: datetime
    finished_at: datetime
    outcome: str  # "ack", "nak", "timeout" or "error" (could not be sent: see detail)
    error_cause: int | None = None
    attempts: int = 0
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class NasSnapshot:
    """An active NAS as authorization sees it (inactive ones are never loaded)."""

    id: int
    name: str
    address: str  # IP or CIDR, canonical text
    secret: str = field(repr=False)  # reprs end up in logs
    manufacturer_id: int
    manufacturer_name: str
    manufacturer_active: bool
    pop_name: str | None
    coa_port: int
    require_message_authenticator: bool
    interim_interval: int | None = None  # None: the [accounting] default; 0: send none
    coa_address: str | None = None  # where CoA goes when not to ``address``
    coa: CoaPolicy = field(default_factory=CoaPolicy)
    radsec_secret: str | None = field(default=None, repr=False)  # None: "radsec"
    radsec_pin: str | None = None  # certificate subject CN or "sha256:<hex>"


@dataclass(frozen=True, slots=True)
class LayoutSnapshot:
    """An active layout: ``(attribute name, template)`` rows in order, active attributes only."""

    id: int
    name: str
    manufacturer_id: int | None  # None: any manufacturer
    purpose: LayoutPurpose
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """A pool as authorization and leasing see it.

    ``ranges`` are canonical CIDR networks. ``prefix_length`` is what one subscriber gets from
    an ipv6 or ipv6-pd pool (None for ipv4: single addresses). ``lease_time`` is in seconds.
    """

    name: str
    family: PoolFamily
    mode: PoolMode
    active: bool
    id: int = 0
    ranges: tuple[str, ...] = ()
    prefix_length: int | None = None
    lease_time: int = 86400
