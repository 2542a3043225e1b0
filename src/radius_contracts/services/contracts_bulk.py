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
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import Contract, ExternalRef
from radius_contracts.errors import Conflict, InvalidInput, NotFound, RadiusContractsError
from radius_contracts.services.base import Actor, audit, stamp
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
    outcomes: list[ItemOutcome] = []
    written: dict[int, Contract] = {}
    before: dict[int, Any] = {}
    with wrap_db_errors():
        async with context.transaction() as session:
            rows: dict[str, Contract] = {}
            for start in range(0, len(wanted), 500):
                stmt = (
                    select(ExternalRef.external_id, Contract)
                    .join(Contract, ExternalRef.contract_id == Contract.id)
                    .where(
                        ExternalRef.app == app,
                        ExternalRef.external_id.in_(wanted[start : start + 500]),
                    )
                    .options(selectinload(Contract.external_refs))
                )
                for external_id, held in await session.execute(stmt):
                    rows[external_id] = held
            for found in rows.values():
                before.setdefault(found.id, await contracts._before(found.id))
            for index, (external_id, data) in enumerate(items):
                try:
                    values = dict(data)
                    if "plan_external_id" in values:
                        ref = values.pop("plan_external_id")
                        values["plan_id"] = (
                            None if ref is None else await _plan(contracts, plans, app, ref)
                        )
                    row: Contract | None = rows.get(external_id)
                    creating = row is None
                    values = contracts.upsert_values(app, external_id, values, creating=creating)
                    with contracts.api_field_names():
                        values = in_zone(values, context.zone)
                        flat = flatten(new_contract(values) if creating else values)
                        given = dict(flat)
                        await contracts._check_unique(session, row, flat)
                        await contracts._check(session, row, flat)
                except RadiusContractsError as exc:
                    outcomes.append(
                        ItemOutcome(index, external_id, _status_of(exc), detail=exc.detail,
                                    field=exc.field)
                    )  # fmt: skip
                    continue
                if row is None:
                    row = Contract()
                    contracts._apply(row, flat)
                    stamp(row, actor, created=True)
                    session.add(row)
                    # The next items' checks see this one (a username twice in one chunk).
                    await session.flush()
                    rows[external_id] = row
                else:
                    contracts._apply(row, flat)
                    stamp(row, actor, created=False)
                    await session.flush()
                audit(session, actor, "create" if creating else "update", contracts.entity,
                      row.id, given)  # fmt: skip
                written[row.id] = row
                status = 201 if creating else 200
                outcomes.append(ItemOutcome(index, external_id, status, row.id, row.number))
    ids = list(written)
    contracts.log_bulk(len(ids), len(items) - len(ids), time.monotonic() - started)
    await contracts.committed_bulk(written, before)
    return outcomes


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
