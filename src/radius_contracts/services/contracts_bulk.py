"""Bulk create-or-update by external id: a billing system's sync, a chunk per transaction.

Each item goes through exactly what a single ``PUT /contracts/by-external/{app}/{id}`` does
(the same defaults, checks, flattening and audit entry), inside one transaction for the whole
chunk; the index, the change feed and live sessions follow once, after the commit.

An item that breaks a domain rule (a taken username, an unknown pool, a missing number on a
create) is reported with its index and left out; the others are applied. A database error
that no check caught (another node took the username between check and insert) rejects the
whole chunk: nothing of it is committed, and the caller may send it again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import Contract, ExternalRef
from radius_contracts.errors import Conflict, InvalidInput, NotFound, RadiusContractsError
from radius_contracts.services.base import Actor, audit_rows, stamp, stamped
from radius_contracts.services.contract_checks import (
    UNIQUE_COLUMNS,
    ChunkLookups,
    check_contract,
    check_number,
)
from radius_contracts.services.contract_fields import flatten, in_zone, new_contract

if TYPE_CHECKING:
    from radius_contracts.services.contracts import Contracts

BULK_UPSERT_LIMIT = 1000
"""Items per bulk upsert request: one transaction each (about 1 MiB of typical bodies)."""

_STATUS: tuple[tuple[type[RadiusContractsError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
)


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """What happened to one item: 201 created, 200 updated, else the error a single call
    would have answered (404, 409, 422) with its detail and field."""

    index: int
    external_id: str
    status: int
    id: int | None = None
    number: str | None = None
    detail: str | None = None
    field: str | None = None


def _status_of(exc: RadiusContractsError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    raise exc  # StorageUnavailable and the like: the chunk fails as a whole


@dataclass(slots=True)
class _New:
    """A contract this chunk creates: inserted with its references in one statement each."""

    values: dict[str, Any]  # columns, and external_refs in the API's shape
    id: int | None = None


async def bulk_upsert(
    contracts: Contracts,
    actor: Actor,
    app: str,
    items: Sequence[tuple[str, Mapping[str, Any]]],
) -> list[ItemOutcome]:
    """Upsert ``items`` ((external id, API-shape changes), in order) in one transaction."""
    context = contracts.context
    started = time.monotonic()
    wanted = list(dict.fromkeys(external_id for external_id, _ in items))
    plans: dict[str, int | InvalidInput] = {}
    outcomes: dict[int, ItemOutcome] = {}
    written: list[tuple[str, int, Contract | _New, dict[str, Any]]] = []
    before: dict[int, Any] = {}
    with wrap_db_errors():
        async with context.transaction() as session:
            rows: dict[str, Contract | _New] = dict(await _by_external(session, app, wanted))
            for found in rows.values():
                assert found.id is not None
                before.setdefault(found.id, await contracts._before(found.id))
            # What each item writes, in column names; refused items get their outcome now.
            prepared: list[tuple[int, str, dict[str, Any]]] = []
            created: set[str] = set()
            for index, (external_id, data) in enumerate(items):
                creating = external_id not in rows and external_id not in created
                try:
                    values = dict(data)
                    if "plan_external_id" in values:
                        ref = values.pop("plan_external_id")
                        plan = None if ref is None else await _plan(contracts, plans, app, ref)
                        values["plan_id"] = plan
                    values = contracts.upsert_values(app, external_id, values, creating=creating)
                    values = in_zone(values, context.zone)
                    flat = flatten(new_contract(values) if creating else values)
                except RadiusContractsError as exc:
                    outcomes[index] = _refused(index, external_id, exc)
                    continue
                if creating:
                    created.add(external_id)
                prepared.append((index, external_id, flat))
            lookups = await ChunkLookups.load(session, [flat for _, _, flat in prepared])
            pending: list[_New] = []
            for index, external_id, flat in prepared:
                target = rows.get(external_id)
                if isinstance(target, _New):
                    # Created earlier in this chunk and now changed again: insert it, then
                    # update it as any stored contract.
                    await _insert(session, actor, pending)
                    pending = []
                    assert target.id is not None
                    target = await _load(session, target.id)
                    rows[external_id] = target
                try:
                    with contracts.api_field_names():
                        await check_number(lookups, target, flat)
                        await check_contract(lookups, target, flat)
                except RadiusContractsError as exc:
                    outcomes[index] = _refused(index, external_id, exc)
                    continue
                given = dict(flat)
                if target is None:
                    new = _New(flat)
                    refs = [(ref["app"], ref["external_id"]) for ref in flat["external_refs"]]
                    lookups.applied(new, flat["number"], {}, flat, ([], refs))
                    pending.append(new)
                    rows[external_id] = new
                    written.append(("create", index, new, given))
                    continue
                held = {column: getattr(target, column) for column in UNIQUE_COLUMNS}
                refs_before = [(ref.app, ref.external_id) for ref in target.external_refs]
                contracts._apply(target, flat)
                stamp(target, actor, created=False)
                now = {column: getattr(target, column) for column in UNIQUE_COLUMNS}
                refs_now = [(ref.app, ref.external_id) for ref in target.external_refs]
                lookups.applied(target, target.number, held, now, (refs_before, refs_now))
                written.append(("update", index, target, given))
            await _insert(session, actor, pending)
            await session.flush()
            entries: list[tuple[str, int, Mapping[str, Any]]] = []
            plan_of: dict[int, int | None] = {}
            for action, index, row, given in written:
                assert row.id is not None
                entries.append((action, row.id, given))
                plan_of[row.id] = _column(row, "plan_id")
                status = 201 if action == "create" else 200
                number = _column(row, "number")
                outcomes[index] = ItemOutcome(index, items[index][0], status, row.id, number)
            await audit_rows(session, actor, contracts.entity, entries)
    contracts.log_bulk(len(written), len(items) - len(written), time.monotonic() - started)
    if context.on_written is not None:
        # New contracts as inserted, unless a later item changed them again (read back).
        changed = {row.id for action, _, row, _ in written if action == "update"}
        new_rows = [
            {**row.values, "id": row.id}
            for _, _, row, _ in written
            if isinstance(row, _New) and row.id not in changed
        ]
        context.on_written(contracts.entity, new_rows, created=True)
    await contracts.committed_bulk(plan_of, before)
    return [outcomes[index] for index in range(len(items))]


def _column(row: Contract | _New, name: str) -> Any:
    return row.values[name] if isinstance(row, _New) else getattr(row, name)


async def _insert(session: AsyncSession, actor: Actor, pending: Sequence[_New]) -> None:
    """Insert the new contracts, then their external references; each learns its id."""
    if not pending:
        return
    stamps = stamped(actor, created=True)
    contracts_table = cast(Table, Contract.__table__)
    rows = [
        {**{k: v for k, v in new.values.items() if k != "external_refs"}, **stamps}
        for new in pending
    ]
    stmt = insert(contracts_table).returning(contracts_table.c.id, sort_by_parameter_order=True)
    ids = (await session.execute(stmt, rows)).scalars().all()
    for new, new_id in zip(pending, ids, strict=True):
        new.id = new_id
    refs = [
        {"contract_id": new.id, "app": ref["app"], "external_id": ref["external_id"]}
        for new in pending
        for ref in new.values["external_refs"]
    ]
    if refs:
        await session.execute(insert(cast(Table, ExternalRef.__table__)), refs)


async def _load(session: AsyncSession, contract_id: int) -> Contract:
    stmt = (
        select(Contract)
        .where(Contract.id == contract_id)
        .options(selectinload(Contract.external_refs))
    )
    return (await session.scalars(stmt)).one()


def _refused(index: int, external_id: str, exc: RadiusContractsError) -> ItemOutcome:
    return ItemOutcome(index, external_id, _status_of(exc), detail=exc.detail, field=exc.field)


async def _by_external(
    session: AsyncSession, app: str, external_ids: Sequence[str], chunk: int = 500
) -> dict[str, Contract]:
    """The contracts ``app`` knows by these ids, with their references loaded."""
    rows: dict[str, Contract] = {}
    for start in range(0, len(external_ids), chunk):
        stmt = (
            select(ExternalRef.external_id, Contract)
            .join(Contract, ExternalRef.contract_id == Contract.id)
            .where(
                ExternalRef.app == app,
                ExternalRef.external_id.in_(external_ids[start : start + chunk]),
            )
            .options(selectinload(Contract.external_refs))
        )
        for external_id, row in await session.execute(stmt):
            rows[external_id] = row
    return rows


async def _plan(
    contracts: Contracts, plans: dict[str, int | InvalidInput], app: str, ref: str
) -> int:
    """The plan id for ``ref`` (looked up once per chunk, refusals too)."""
    if ref not in plans:
        try:
            plans[ref] = await contracts.plan_of(app, ref)
        except InvalidInput as exc:
            plans[ref] = exc
    found = plans[ref]
    if isinstance(found, InvalidInput):
        raise InvalidInput(found.detail, field=found.field)
    return found
