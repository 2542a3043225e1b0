"""Import NAS and users from a FreeRADIUS rlm_sql database (``import-freeradius``).

Three steps, kept apart so the mapping can be tested without a database:

* :func:`read_freeradius` reads the standard rlm_sql tables into plain rows;
* :func:`plan_import` maps those rows to NAS and contract data (pure, no I/O), listing every
  attribute it cannot map;
* :func:`apply_plan` checks the plan against this database (existing names, addresses,
  usernames, pools, manufacturers) and, unless it is a dry run, creates what is new through
  the ordinary services, so every row is checked and audited like an API change.

Decisions (see README, "Command line"):

* ``nas.type`` picks the manufacturer by name (TYPE_MANUFACTURERS); ``other`` and unknown
  types get the manufacturer "Generic", created (name only, no layouts) when missing. A NAS of
  a manufacturer without layouts is accepted with no reply attributes, which is what FreeRADIUS
  did for it without per-vendor replies; the operator can add a layout later.
* ``Framed-Pool`` maps to ``pool_name_ipv4`` only when an IPv4 pool of that name already exists
  here. Pools are not created: FreeRADIUS holds only the name, and a pool here needs a family
  and ranges that cannot be guessed honestly. A missing pool is reported and left out.
* ``Auth-Type := Reject`` (a disabled user) is reported, and the contract is created with status
  ``inactive`` so the import does not let in someone FreeRADIUS rejected.
* A user without a ``Cleartext-Password`` is skipped: other password types (Crypt-Password,
  NT-Password, ...) are hashes that PAP/CHAP/MS-CHAP here cannot use.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from radius_contracts.db.models import Contract, Manufacturer, Nas, Pool
from radius_contracts.domain import ContractStatus, PoolFamily, parse_speed
from radius_contracts.errors import RadiusContractsError
from radius_contracts.services.base import Actor
from radius_contracts.services.registry import Services

# nas.type as FreeRADIUS's raddb/sites and checkrad know it → the manufacturers that
# `migrate` seeds (services.defaults).
TYPE_MANUFACTURERS = {
    "mikrotik": "MikroTik",
    "cisco": "Cisco",
    "juniper": "Juniper ERX",
    "huawei": "Huawei",
    "accel-ppp": "accel-ppp",
}
GENERIC_MANUFACTURER = "Generic"
NUMBER_PREFIX = "fr-"
# Only the columns every rlm_sql schema (MySQL, PostgreSQL, SQLite) has, in insertion order.
QUERIES = {
    "nas": "SELECT nasname, shortname, type, secret, description FROM nas ORDER BY id",
    "radcheck": "SELECT username, attribute, op, value FROM radcheck ORDER BY id",
    "radreply": "SELECT username, attribute, op, value FROM radreply ORDER BY id",
    "radusergroup": "SELECT username, groupname, priority FROM radusergroup",
    "radgroupcheck": "SELECT groupname, attribute, op, value FROM radgroupcheck ORDER BY id",
    "radgroupreply": "SELECT groupname, attribute, op, value FROM radgroupreply ORDER BY id",
}

# Operators under which an item is a plain value we can store. radcheck "==" compares, ":="
# sets; either way the value is the user's. Reply "+=" adds one more value: for the single-valued
# attributes we map, the first one is what the NAS would use.
CHECK_OPS = frozenset({":=", "=="})
REPLY_OPS = frozenset({"=", ":=", "+="})
# Framed-IP-Address values that mean "let the NAS pick" / "let the user pick" (RFC 2865 §5.8).
SPECIAL_IPV4 = frozenset({"255.255.255.254", "255.255.255.255"})


class ImportSourceError(RadiusContractsError):
    """The FreeRADIUS database cannot be opened or lacks the rlm_sql tables."""


# -- rows as read ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrNas:
    nasname: str
    shortname: str | None
    type: str | None
    secret: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class FrItem:
    """One radcheck/radreply row (owner: username) or radgroup* row (owner: groupname)."""

    owner: str
    attribute: str
    op: str
    value: str


@dataclass(frozen=True, slots=True)
class FrMembership:
    username: str
    groupname: str
    priority: int


@dataclass(frozen=True, slots=True)
class FrData:
    nas: Sequence[FrNas] = ()
    radcheck: Sequence[FrItem] = ()
    radreply: Sequence[FrItem] = ()
    radusergroup: Sequence[FrMembership] = ()
    radgroupcheck: Sequence[FrItem] = ()
    radgroupreply: Sequence[FrItem] = ()


# -- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issue:
    """Something the import does not carry over; ``subject`` is "user alice" or "NAS gw1"."""

    subject: str
    attribute: str
    reason: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.attribute}: {self.reason}"


@dataclass(frozen=True, slots=True)
class NasPlan:
    name: str
    address: str
    secret: str
    manufacturer: str
    description: str | None


@dataclass(frozen=True, slots=True)
class ContractPlan:
    number: str
    status: ContractStatus
    config: Mapping[str, Any]  # the API's contract config shape


@dataclass
class ImportPlan:
    nas: list[NasPlan] = field(default_factory=list)
    contracts: list[ContractPlan] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)  # mapped around: the row still goes in
    skipped: list[Issue] = field(default_factory=list)  # the NAS or user is left out


# -- reading -----------------------------------------------------------------------------------


def async_url(url: str) -> URL:
    """The URL with an installed async driver: sqlite → aiosqlite, postgresql → asyncpg."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ImportSourceError(f"{url!r} is not a database URL") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        # aiosqlite would create a missing file: an empty database is a typo, not a source.
        database = parsed.database
        if not database or database == ":memory:" or not Path(database).is_file():
            raise ImportSourceError(f"no SQLite database file at {database!r}")
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ImportSourceError(f"unsupported database {backend!r}; use sqlite:// or postgresql://")


async def read_freeradius(url: str) -> FrData:
    """Every row of the rlm_sql tables the import uses, read in one connection."""
    engine = create_async_engine(async_url(url))
    rows: dict[str, list[Any]] = {}
    try:
        async with engine.connect() as conn:
            for table, query in QUERIES.items():
                result = await conn.execute(text(query))
                rows[table] = list(result.all())
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ImportSourceError(f"cannot read the FreeRADIUS tables: {reason}") from exc
    finally:
        await engine.dispose()

    def items(table: str) -> list[FrItem]:
        return [
            FrItem(str(o), str(a), str(op or "").strip(), str(v or ""))
            for o, a, op, v in rows[table]
        ]

    return FrData(
        nas=[
            FrNas(str(n), s or None, t or None, str(secret or ""), d or None)
            for n, s, t, secret, d in rows["nas"]
        ],
        radcheck=items("radcheck"),
        radreply=items("radreply"),
        radusergroup=[
            FrMembership(str(u), str(g), int(p or 0)) for u, g, p in rows["radusergroup"]
        ],
        radgroupcheck=items("radgroupcheck"),
        radgroupreply=items("radgroupreply"),
    )


# -- mapping (pure) ----------------------------------------------------------------------------


def plan_import(data: FrData) -> ImportPlan:
    plan = ImportPlan()
    for row in data.nas:
        _plan_nas(plan, row)
    _plan_users(plan, data)
    return plan


def _plan_nas(plan: ImportPlan, row: FrNas) -> None:
    name = (row.shortname or row.nasname).strip()
    subject = f"NAS {name}"
    address = _ip_or_network(row.nasname)
    if address is None:
        # FreeRADIUS resolves host names once at start-up; we match on source addresses only.
        plan.skipped.append(Issue(subject, "nasname", f"{row.nasname!r} is not an IP or CIDR"))
        return
    if not row.secret:
        plan.skipped.append(Issue(subject, "secret", "no shared secret"))
        return
    kind = (row.type or "other").strip().lower()
    manufacturer = TYPE_MANUFACTURERS.get(kind, GENERIC_MANUFACTURER)
    if kind not in TYPE_MANUFACTURERS:
        plan.issues.append(Issue(subject, "type", f"{kind!r} → manufacturer {manufacturer}"))
    plan.nas.append(NasPlan(name, address, row.secret, manufacturer, row.description))


def _ip_or_network(value: str) -> str | None:
    """Canonical text as the API stores it: a single address without a /32 or /128."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        pass
    try:
        return str(ipaddress.ip_network(value.strip(), strict=True))
    except ValueError:
        return None


def _group_items(rows: Iterable[FrItem]) -> dict[str, list[FrItem]]:
    grouped: dict[str, list[FrItem]] = defaultdict(list)
    for row in rows:
        grouped[row.owner].append(row)
    return grouped


def _plan_users(plan: ImportPlan, data: FrData) -> None:
    checks, replies = _group_items(data.radcheck), _group_items(data.radreply)
    group_checks, group_replies = _group_items(data.radgroupcheck), _group_items(data.radgroupreply)
    groups: dict[str, list[FrMembership]] = defaultdict(list)
    for membership in data.radusergroup:
        groups[membership.username].append(membership)
    # rlm_sql walks a user's groups by ascending priority; the first value found wins.
    ordered = {
        user: [m.groupname for m in sorted(rows, key=lambda m: m.priority)]
        for user, rows in groups.items()
    }
    usernames = dict.fromkeys(
        [r.owner for r in data.radcheck]
        + [m.username for m in data.radusergroup]
        + [r.owner for r in data.radreply]
    )
    for username in usernames:
        # The user's own items first, then each group's: the first mapped value of an
        # attribute wins, so a user value beats a group value.
        check_items = [(row, None) for row in checks.get(username, [])] + [
            (row, group)
            for group in ordered.get(username, [])
            for row in group_checks.get(group, [])
        ]
        reply_items = [(row, None) for row in replies.get(username, [])] + [
            (row, group)
            for group in ordered.get(username, [])
            for row in group_replies.get(group, [])
        ]
        _plan_user(plan, username, check_items, reply_items)


def _plan_user(
    plan: ImportPlan,
    username: str,
    check_items: Sequence[tuple[FrItem, str | None]],
    reply_items: Sequence[tuple[FrItem, str | None]],
) -> None:
    subject = f"user {username}"
    config: dict[str, Any] = {"username": username}
    status = ContractStatus.ACTIVE
    issues: list[Issue] = []

    def cannot(row: FrItem, group: str | None, reason: str) -> None:
        where = f" (group {group})" if group else ""
        issues.append(Issue(subject, f"{row.attribute}{where}", reason))

    for row, group in check_items:
        name = row.attribute.lower()
        if name == "cleartext-password" and group is None and row.op in CHECK_OPS:
            config.setdefault("password", row.value)
        elif name == "simultaneous-use" and row.op in CHECK_OPS:
            try:
                limit = int(row.value)
            except ValueError:
                cannot(row, group, f"{row.value!r} is not a number")
                continue
            if limit < 1:
                cannot(row, group, "a limit below 1 is not allowed here")
                continue
            config.setdefault("simultaneous_use", limit)
        elif name == "auth-type" and row.value.lower() == "reject" and row.op in CHECK_OPS:
            cannot(row, group, "user is disabled: contract created as inactive")
            status = ContractStatus.INACTIVE
        elif name.endswith("-password"):
            cannot(row, group, f"{row.attribute} (op {row.op}) is not a usable password here")
        else:
            cannot(row, group, f"check item (op {row.op}) not mapped")

    for row, group in reply_items:
        name = row.attribute.lower()
        if row.op not in REPLY_OPS:
            cannot(row, group, f"operator {row.op!r} not mapped")
        elif name == "mikrotik-rate-limit":
            if "max_upload" in config:
                continue
            speeds, reason = parse_rate_limit(row.value)
            if speeds is None:
                cannot(row, group, reason)
                continue
            config["max_upload"], config["max_download"] = speeds
            if reason:
                cannot(row, group, reason)
        elif name == "framed-ip-address":
            if "ipv4" in config:
                continue
            try:
                address = ipaddress.IPv4Address(row.value.strip())
            except ValueError:
                cannot(row, group, f"{row.value!r} is not an IPv4 address")
                continue
            if str(address) in SPECIAL_IPV4:
                cannot(row, group, f"{address} (NAS- or user-chosen address) not mapped")
                continue
            config["ipv4"] = str(address)
        elif name == "framed-pool":
            config.setdefault("pool_name_ipv4", row.value.strip())
        else:
            cannot(row, group, "reply attribute not mapped")

    if not config.get("password"):
        plan.skipped.append(Issue(subject, "Cleartext-Password", "no usable password"))
        plan.issues.extend(issues)
        return
    plan.issues.extend(issues)
    plan.contracts.append(ContractPlan(f"{NUMBER_PREFIX}{username}", status, config))


def parse_rate_limit(value: str) -> tuple[tuple[str, str] | None, str]:
    """(upload, download) of a Mikrotik-Rate-Limit, and what of it is not carried over.

    RouterOS writes ``rx[/tx] [burst-rate] [burst-threshold] [burst-time] [priority]
    [limit-at]``, seen from the router: rx is what it receives (the subscriber's upload).
    A missing tx equals rx.
    """
    parts = value.split()
    if not parts:
        return None, "empty rate limit"
    rx, _slash, tx = parts[0].partition("/")
    tx = tx or rx
    for speed in (rx, tx):
        try:
            parse_speed(speed)
        except ValueError as exc:
            return None, str(exc)
    rest = "burst, priority and limit-at not mapped" if len(parts) > 1 else ""
    return (rx, tx), rest


# -- applying ----------------------------------------------------------------------------------


@dataclass
class ImportResult:
    created_nas: list[NasPlan] = field(default_factory=list)
    created_contracts: list[ContractPlan] = field(default_factory=list)
    created_manufacturers: list[str] = field(default_factory=list)
    skipped: list[Issue] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


async def _existing(services: Services) -> dict[str, set[str]]:
    """Names and keys already taken here, read once: the plan is checked against them."""
    async with services.context.sessions() as session:
        nas = (await session.execute(select(Nas.name, Nas.address))).all()
        contracts = (await session.execute(select(Contract.number, Contract.username_key))).all()
        pools = await session.scalars(select(Pool.name).where(Pool.family == PoolFamily.IPV4))
        manufacturers = await session.scalars(select(Manufacturer.name))
        return {
            "nas_names": {n for n, _ in nas},
            "nas_addresses": {a for _, a in nas},
            "numbers": {n for n, _ in contracts},
            "usernames": {u for _, u in contracts},
            "pools": set(pools),
            "manufacturers": set(manufacturers),
        }


async def apply_plan(
    services: Services, plan: ImportPlan, actor: Actor, *, dry_run: bool
) -> ImportResult:
    """Create what the plan holds and this database lacks; a dry run only decides."""
    result = ImportResult(skipped=list(plan.skipped), issues=list(plan.issues))
    taken = await _existing(services)
    manufacturer_ids: dict[str, int] = {}

    async def manufacturer_id(name: str) -> int:
        if name not in manufacturer_ids:
            async with services.context.sessions() as session:
                found = await session.scalar(
                    select(Manufacturer.id).where(Manufacturer.name == name)
                )
            if found is None:
                row = await services.manufacturers.create(
                    actor, {"name": name, "description": "Created by import-freeradius."}
                )
                result.created_manufacturers.append(name)
                found = row.id
            manufacturer_ids[name] = found
        return manufacturer_ids[name]

    for nas in plan.nas:
        subject = f"NAS {nas.name}"
        if nas.name in taken["nas_names"]:
            result.skipped.append(Issue(subject, "name", "already exists"))
            continue
        if nas.address in taken["nas_addresses"]:
            result.skipped.append(Issue(subject, "address", f"{nas.address} already exists"))
            continue
        if dry_run:
            missing = nas.manufacturer not in taken["manufacturers"]
            if missing and nas.manufacturer not in result.created_manufacturers:
                result.created_manufacturers.append(nas.manufacturer)
        else:
            try:
                await services.nas.create(
                    actor,
                    {
                        "name": nas.name,
                        "address": nas.address,
                        "secret": nas.secret,
                        "manufacturer_id": await manufacturer_id(nas.manufacturer),
                        "description": nas.description,
                        # FreeRADIUS accepted these NAS without it: requiring it would lock
                        # out the ones that never send it.
                        "require_message_authenticator": False,
                    },
                )
            except RadiusContractsError as exc:
                result.skipped.append(Issue(subject, exc.field or "-", exc.detail))
                continue
        taken["nas_names"].add(nas.name)
        taken["nas_addresses"].add(nas.address)
        result.created_nas.append(nas)

    for contract in plan.contracts:
        username = str(contract.config["username"])
        subject = f"user {username}"
        if contract.number in taken["numbers"]:
            result.skipped.append(Issue(subject, "number", f"{contract.number} already exists"))
            continue
        if username.lower() in taken["usernames"]:
            result.skipped.append(Issue(subject, "username", "already used by a contract"))
            continue
        config = dict(contract.config)
        pool = config.get("pool_name_ipv4")
        if pool is not None and pool not in taken["pools"]:
            del config["pool_name_ipv4"]
            result.issues.append(
                Issue(subject, "Framed-Pool", f"no IPv4 pool {pool!r} here; create it and set it")
            )
        planned = ContractPlan(contract.number, contract.status, config)
        if not dry_run:
            try:
                # FreeRADIUS limits only users with a Simultaneous-Use check item; the others
                # keep no limit here too, rather than a new contract's one session.
                unlimited = {"simultaneous_use": None}
                await services.contracts.create(
                    actor,
                    {"number": planned.number, "status": planned.status,
                     "config": unlimited | config},
                )  # fmt: skip
            except RadiusContractsError as exc:
                result.skipped.append(Issue(subject, exc.field or "-", exc.detail))
                continue
        taken["numbers"].add(contract.number)
        taken["usernames"].add(username.lower())
        result.created_contracts.append(planned)
    return result
