"""The rules a contract write must pass, asked of the database or of a preloaded chunk.

One set of rules for every write path. The values a write could collide with are loaded
first, in a few queries (:class:`ChunkLookups`: one for every unique column, one for the
external references, pools and plans only when named): for a single write, its own values;
for a bulk upsert, its whole chunk, kept current as the items are applied, so the 500th item
sees what the 10th took, exactly as two single calls in a row would. A single create skips
the unique columns and references at first and lets the database's constraints refuse a
taken value; only then is it checked again with them (services.contracts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import Contract, ExternalRef, Plan, Pool
from radius_contracts.domain import ContractStatus, PoolFamily, allowed_transitions
from radius_contracts.errors import Conflict, InvalidInput, InvalidTransition
from radius_contracts.services.contract_fields import field_name

# Values only one contract may hold at a time (the number and the username too).
EXCLUSIVE_ADDRESSES = ("ipv4", "ipv6", "delegated_ipv6_prefix")
UNIQUE_COLUMNS = ("number", "username_key", *EXCLUSIVE_ADDRESSES)


@dataclass(frozen=True, slots=True)
class PlanFacts:
    name: str
    active: bool


class Lookups(Protocol):
    async def holder(self, column: str, value: Any, other_than: int | None) -> str | None:
        """The number of a contract other than ``other_than`` whose ``column`` is ``value``."""

    async def pool_family(self, name: str) -> str | None: ...

    async def plan(self, plan_id: int) -> PlanFacts | None: ...

    async def ref_holder(self, app: str, external_id: str) -> tuple[int | None, str] | None:
        """(id, number) of the contract with this external reference (id None: a contract
        created in the same chunk, not yet flushed)."""


# Who holds a value: a contract id, or the object standing for a contract written in this
# chunk (an ORM row, or a new one to insert), whose ``id`` is None until it is inserted.
Owner = int | object


def _owner_id(owner: Owner) -> int | None:
    if isinstance(owner, int):
        return owner
    found: int | None = getattr(owner, "id", None)
    return found


def _is(owner: Owner, row: object) -> bool:
    row_id = _owner_id(row)
    return owner is row or (row_id is not None and _owner_id(owner) == row_id)


class ChunkLookups:
    """The answers for a whole chunk, loaded up front; :meth:`applied` keeps them current."""

    def __init__(self) -> None:
        # column → value → (holder, number); the holder is a contract id, or the row itself
        # for a contract created in this chunk (its id comes with the flush).
        self.held: dict[str, dict[Any, tuple[Owner, str]]] = {c: {} for c in UNIQUE_COLUMNS}
        self.pools: dict[str, str] = {}
        self.plans: dict[int, PlanFacts] = {}
        self.refs: dict[tuple[str, str], tuple[Owner, str]] = {}

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        values: Sequence[Mapping[str, Any]],
        chunk: int = 500,
        *,
        holders: bool = True,
    ) -> ChunkLookups:
        """Everything the checks of ``values`` (flattened writes) can ask, in a few queries.

        Without ``holders`` only the named pools and plans are read: no value is held by
        anyone, and the database's unique constraints are left to refuse a taken one.
        """
        found = cls()
        if holders:
            await found._load_holders(session, values, chunk)
        pool_names = sorted(
            {v[c] for v in values for c in ("pool_name_ipv4", "pool_name_ipv6") if v.get(c)}
        )
        if pool_names:
            stmt_pools = select(Pool.name, Pool.family).where(Pool.name.in_(pool_names))
            for name, family in await session.execute(stmt_pools):
                found.pools[name] = family
        plan_ids = sorted({v["plan_id"] for v in values if v.get("plan_id") is not None})
        if plan_ids:
            stmt = select(Plan.id, Plan.name, Plan.active).where(Plan.id.in_(plan_ids))
            for plan_id, name, active in await session.execute(stmt):
                found.plans[plan_id] = PlanFacts(name, active)
        return found

    async def _load_holders(
        self, session: AsyncSession, values: Sequence[Mapping[str, Any]], chunk: int
    ) -> None:
        """Who holds the unique values and the external references of ``values``."""
        wanted = {c: sorted({v[c] for v in values if v.get(c)}) for c in UNIQUE_COLUMNS}
        sought = {c: set(w) for c, w in wanted.items()}
        # One query for every unique column: a row may hold several of the values.
        size = max(len(w) for w in wanted.values())
        for start in range(0, size, chunk):
            parts = {c: w[start : start + chunk] for c, w in wanted.items() if w[start:]}
            if not parts:
                continue
            attributes = [getattr(Contract, c) for c in UNIQUE_COLUMNS]
            stmt = select(Contract.id, *attributes).where(
                or_(*(getattr(Contract, c).in_(part) for c, part in parts.items()))
            )
            for contract_id, *held in await session.execute(stmt):
                number = held[0]
                for column, value in zip(UNIQUE_COLUMNS, held, strict=True):
                    if value is not None and value in sought[column]:
                        self.held[column][value] = (contract_id, number)
        refs = sorted(
            {(r["app"], r["external_id"]) for v in values for r in v.get("external_refs") or ()}
        )
        pair = tuple_(ExternalRef.app, ExternalRef.external_id)
        for start in range(0, len(refs), chunk):
            stmt = (
                select(ExternalRef.app, ExternalRef.external_id, Contract.id, Contract.number)
                .join(Contract, ExternalRef.contract_id == Contract.id)
                .where(pair.in_(refs[start : start + chunk]))
            )
            for app, external_id, contract_id, number in await session.execute(stmt):
                self.refs[(app, external_id)] = (contract_id, number)

    async def holder(self, column: str, value: Any, other_than: int | None) -> str | None:
        held = self.held[column].get(value)
        if held is None:
            return None
        owner = _owner_id(held[0])
        return held[1] if owner is None or owner != other_than else None

    async def pool_family(self, name: str) -> str | None:
        return self.pools.get(name)

    async def plan(self, plan_id: int) -> PlanFacts | None:
        return self.plans.get(plan_id)

    async def ref_holder(self, app: str, external_id: str) -> tuple[int | None, str] | None:
        held = self.refs.get((app, external_id))
        return None if held is None else (_owner_id(held[0]), held[1])

    def applied(
        self,
        owner: object,
        number: str,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        refs: tuple[Iterable[tuple[str, str]], Iterable[tuple[str, str]]],
    ) -> None:
        """``owner`` was written: the values and references it held (``before``, ``refs[0]``)
        are free, those it holds now (``after``, ``refs[1]``) are taken."""
        for column in UNIQUE_COLUMNS:
            old, new = before.get(column), after.get(column)
            held = self.held[column]
            if old is not None and old in held and _is(held[old][0], owner):
                del held[old]
            if new is not None:
                held[new] = (owner, number)
        refs_before, refs_after = refs
        for key in refs_before:
            if key in self.refs and _is(self.refs[key][0], owner):
                del self.refs[key]
        for key in refs_after:
            self.refs[key] = (owner, number)


# -- the rules --------------------------------------------------------------------------------


async def check_number(lookups: Lookups, row: Contract | None, data: Mapping[str, Any]) -> None:
    """The contract number is unique (as CrudService._check_unique words it)."""
    number = data.get("number")
    if number is not None and await lookups.holder("number", number, _id(row)):
        raise Conflict(f"a contract with number {number!r} already exists", field="number")


async def check_contract(lookups: Lookups, row: Contract | None, data: Mapping[str, Any]) -> None:
    """Refuse ``data`` (a create when ``row`` is None, else an update of ``row``)."""
    if "status" in data and row is not None and data["status"] != row.status:
        check_transition(row, ContractStatus(data["status"]))
    start = data.get("start_date", row.start_date if row else None)
    end = data.get("end_date", row.end_date if row else None)
    if start and end and end < start:
        raise InvalidInput(f"end_date {end} is before start_date {start}", field="end_date")
    if "username_key" in data:
        taken = await lookups.holder("username_key", data["username_key"], _id(row))
        if taken:
            raise Conflict(
                f"username {data['username']!r} is already used by contract {taken}",
                field="config.username",
            )
    for column in EXCLUSIVE_ADDRESSES:
        if data.get(column):
            holder = await lookups.holder(column, data[column], _id(row))
            if holder:
                raise Conflict(
                    f"{data[column]} is already assigned to contract {holder}",
                    field=field_name(column),
                )
    await _check_pools(lookups, data)
    await _check_plan(lookups, row, data)
    await _check_refs(lookups, row, data.get("external_refs"))


def _id(row: Contract | None) -> int | None:
    return None if row is None else row.id


def check_transition(row: Contract, target: ContractStatus) -> None:
    current = ContractStatus(row.status)
    if target not in allowed_transitions(current).values():
        raise InvalidTransition(
            f"contract {row.number} cannot go from {current} to {target}", field="status"
        )


async def _check_pools(lookups: Lookups, data: Mapping[str, Any]) -> None:
    for column, families in (
        ("pool_name_ipv4", {PoolFamily.IPV4}),
        ("pool_name_ipv6", {PoolFamily.IPV6, PoolFamily.IPV6_PD}),
    ):
        name = data.get(column)
        if not name:
            continue
        family = await lookups.pool_family(name)
        if family is None:
            raise InvalidInput(f"no pool named {name!r}", field=field_name(column))
        if family not in families:
            raise InvalidInput(f"pool {name!r} is an {family} pool", field=field_name(column))


async def _check_plan(lookups: Lookups, row: Contract | None, data: Mapping[str, Any]) -> None:
    plan_id = data.get("plan_id")
    if plan_id is None or (row is not None and row.plan_id == plan_id):
        return  # keeping a retired plan is fine; only new assignments need an active one
    plan = await lookups.plan(plan_id)
    if plan is None:
        raise InvalidInput(f"plan {plan_id} does not exist", field="plan_id")
    if not plan.active:
        raise InvalidInput(
            f"plan {plan.name!r} is retired (inactive): it keeps its contracts but takes no "
            "new ones",
            field="plan_id",
        )


async def _check_refs(
    lookups: Lookups, row: Contract | None, refs: Sequence[Mapping[str, str]] | None
) -> None:
    seen: set[tuple[str, str]] = set()
    for index, ref in enumerate(refs or ()):
        key = (ref["app"], ref["external_id"])
        if key in seen:
            raise InvalidInput(
                f"{key[0]} id {key[1]!r} is listed twice", field=f"external_refs[{index}]"
            )
        seen.add(key)
        holder = await lookups.ref_holder(*key)
        if holder is not None and (row is None or holder[0] != row.id):
            raise Conflict(
                f"{key[0]} id {key[1]!r} already belongs to contract {holder[1]}",
                field=f"external_refs[{index}]",
            )
