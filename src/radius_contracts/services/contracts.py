"""Contracts: subscribers' connection config, status machine, billing-system references."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Select, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from radius_contracts.aaa.handler import Preview
from radius_contracts.aaa.live import LiveSessions
from radius_contracts.db import search
from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import AcctSession, Contract, ExternalRef, Nas
from radius_contracts.db.types import utcnow
from radius_contracts.domain import (
    TRANSITIONS,
    ContractSnapshot,
    ContractStatus,
)
from radius_contracts.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    StorageUnavailable,
)
from radius_contracts.services.base import Actor, CrudService, audit, audit_many, stamp
from radius_contracts.services.contract_checks import (
    ChunkLookups,
    check_contract,
    check_number,
    check_transition,
)
from radius_contracts.services.contract_fields import (
    field_name,
    flatten,
    in_zone,
    new_config,
    new_contract,
)
from radius_contracts.services.contracts_bulk import ItemOutcome, bulk_upsert
from radius_contracts.services.plans import Plans
from radius_contracts.store import common
from radius_contracts.store.common import Page

log = logging.getLogger("radius_contracts.services.contracts")

# One contract with its external references in one statement (the relationship's own
# "selectin" loading costs a second statement, and on SQLite a second trip to its thread).
_WITH_REFS = (joinedload(Contract.external_refs),)

# True while a create leaves taken numbers, usernames, addresses and external ids to the
# database's unique constraints (Contracts._insert); per task, so concurrent calls keep theirs.
_ON_CONSTRAINTS: ContextVar[bool] = ContextVar("contracts_on_constraints", default=False)


@contextmanager
def _api_field_names() -> Iterator[None]:
    """A conflict the database caught (a race the checks lost) names the field as sent."""
    try:
        yield
    except Conflict as exc:
        if exc.field:
            exc.field = field_name("username" if exc.field == "username_key" else exc.field)
        raise


class Contracts(CrudService[Contract]):
    model = Contract
    label = "contract"
    entity = "contracts"
    unique = ("number",)
    load_options = _WITH_REFS
    filters = (
        "status",
        "number",
        "customer_external_id",
        "pool_name_ipv4",
        "pool_name_ipv6",
        "plan_id",
    )
    search = ("number", "username", "customer_name", "customer_external_id")
    sorts = (
        "id",
        "number",
        "username",
        "status",
        "customer_name",
        "start_date",
        "end_date",
        "created_at",
        "updated_at",
    )

    # -- reading ------------------------------------------------------------------------------

    _fts: bool | None = None  # the SQLite database has the search table (db.search)

    async def page(
        self,
        filters: Mapping[str, Any],
        *,
        sort: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Contract]:
        if filters.get("q") and self.context.dialect == "sqlite" and self._fts is None:
            with wrap_db_errors():
                async with self.context.sessions() as session:
                    found = await session.scalar(
                        text("SELECT 1 FROM sqlite_master WHERE name = :name"),
                        {"name": search.FTS_TABLE},
                    )
            self._fts = found is not None
        return await super().page(filters, sort=sort, limit=limit, offset=offset)

    def _list_stmt(self, filters: Mapping[str, Any]) -> Select[Contract]:
        stmt = super()._list_stmt(filters)
        q = str(filters.get("q") or "")
        if self._fts and self.context.dialect == "sqlite" and len(q) >= 3:
            # The trigram index finds the candidates (a superset: it folds case at least as
            # far as LIKE does); the LIKE that super() added decides, as without the index.
            # Under 3 characters a trigram cannot match: those scan, as before.
            candidates = text(search.FTS_CANDIDATES).bindparams(fts=search.fts_phrase(q))
            stmt = stmt.where(Contract.id.in_(candidates))
        if filters.get("username"):
            stmt = stmt.where(Contract.username_key == str(filters["username"]).lower())
        if filters.get("app"):
            stmt = stmt.where(
                exists().where(
                    ExternalRef.contract_id == Contract.id, ExternalRef.app == filters["app"]
                )
            )
        # Contracts online on a NAS (or on any NAS of a POP) right now.
        online = [AcctSession.contract_id == Contract.id, AcctSession.stopped_at.is_(None)]
        if filters.get("nas_id") is not None:
            stmt = stmt.where(exists().where(*online, AcctSession.nas_id == filters["nas_id"]))
        if filters.get("pop_id") is not None:
            on_pop = select(Nas.id).where(Nas.pop_id == filters["pop_id"])
            stmt = stmt.where(exists().where(*online, AcctSession.nas_id.in_(on_pop)))
        return stmt

    async def get_by(self, *, number: str | None = None, username: str | None = None) -> Contract:
        stmt = select(Contract).options(*_WITH_REFS)
        if number is not None:
            stmt, what = stmt.where(Contract.number == number), f"number {number!r}"
        else:
            assert username is not None
            stmt, what = stmt.where(Contract.username_key == username.lower()), f"user {username!r}"
        with wrap_db_errors():
            async with self.context.sessions() as session:
                row = (await session.scalars(stmt)).unique().one_or_none()
        if row is None:
            raise NotFound(f"no contract with {what}")
        return row

    async def get_by_external(self, app: str, external_id: str) -> Contract:
        with wrap_db_errors():
            async with self.context.sessions() as session:
                row = await self._by_external(session, app, external_id)
        if row is None:
            raise NotFound(f"no contract with {app} id {external_id!r}", field="external_id")
        return row

    @staticmethod
    async def _by_external(session: AsyncSession, app: str, external_id: str) -> Contract | None:
        stmt = (
            select(Contract)
            .join(ExternalRef)
            .where(ExternalRef.app == app, ExternalRef.external_id == external_id)
            .options(*_WITH_REFS)
        )
        return (await session.scalars(stmt)).unique().one_or_none()

    # -- checks (services.contract_checks: the same rules for single and bulk writes) --------

    async def _check_unique(
        self, session: AsyncSession, row: Contract | None, data: Mapping[str, Any]
    ) -> None:
        """The number is checked first thing in :meth:`_check`, with the other values."""

    async def _check(
        self, session: AsyncSession, row: Contract | None, data: dict[str, Any]
    ) -> None:
        lookups = await ChunkLookups.load(session, [data], holders=not _ON_CONSTRAINTS.get())
        await check_number(lookups, row, data)
        await check_contract(lookups, row, data)

    _check_transition = staticmethod(check_transition)

    def _apply(self, row: Contract, data: Mapping[str, Any]) -> None:
        for key, value in data.items():
            if key == "external_refs":
                self._apply_refs(row, value)
            else:
                setattr(row, key, value)

    @staticmethod
    def _apply_refs(row: Contract, refs: Sequence[Mapping[str, str]]) -> None:
        # Keep the rows that stay: deleting and re-inserting the same (app, external_id) in
        # one flush would trip the unique constraint, since inserts are flushed first.
        wanted = [(ref["app"], ref["external_id"]) for ref in refs]
        current = {(ref.app, ref.external_id): ref for ref in row.external_refs}
        row.external_refs = [
            current.get(key) or ExternalRef(app=key[0], external_id=key[1]) for key in wanted
        ]

    # -- writing ------------------------------------------------------------------------------

    async def create(self, actor: Actor, data: Mapping[str, Any]) -> Contract:
        """Create from the API shape (nested ``config`` and ``customer``); what ``data``
        leaves out gets the defaults of contract_fields, the only place that has them."""
        with _api_field_names():
            data = in_zone(data, self.context.zone)
            return await super().create(actor, flatten(new_contract(data)))

    async def _insert(self, actor: Actor, data: Mapping[str, Any]) -> Contract:
        """Insert on the unique constraints alone first: nearly every create takes values
        nobody holds, and reading who holds them cost a statement (and a trip to the SQLite
        thread) in the write transaction, a third of a create's CPU. Only a create that the
        database or a rule refuses runs again with every lookup, and is refused as it always
        was (field, holder, the first rule broken), or goes in if the holder left meanwhile."""
        token = _ON_CONSTRAINTS.set(True)
        try:
            return await super()._insert(actor, data)
        except (Conflict, InvalidInput):
            pass  # rolled back: nothing of it was written
        finally:
            _ON_CONSTRAINTS.reset(token)
        return await super()._insert(actor, data)

    async def update(self, actor: Actor, row_id: int, changes: Mapping[str, Any]) -> Contract:
        """Change the given fields; ``config`` and ``customer`` may be partial."""
        with _api_field_names():
            changes = in_zone(changes, self.context.zone)
            return await super().update(actor, row_id, flatten(changes))

    async def replace_connection(
        self, actor: Actor, row_id: int, config: Mapping[str, Any]
    ) -> Contract:
        """Replace the whole config: what ``config`` leaves out is as a new contract has it."""
        return await self.update(actor, row_id, {"config": new_config(config)})

    async def transition(self, actor: Actor, contract_id: int, action: str) -> Contract:
        _sources, target = TRANSITIONS[action]
        before = await self._before(contract_id)
        with wrap_db_errors():
            async with self.context.transaction() as session:
                row = await common.get(
                    session, self.model, contract_id, self.label, self.load_options
                )
                self._check_transition(row, target)
                status = row.status
                row.status = target
                stamp(row, actor, created=False)
                audit(
                    session, actor, action, self.entity, contract_id, {"status": [status, target]}
                )
        return await self._committed(row, before)

    async def bulk_transition(
        self, actor: Actor, ids: Sequence[int], action: str
    ) -> tuple[list[int], list[tuple[int, str]]]:
        """Apply ``action`` to many contracts in one transaction: (changed ids, refusals).

        A contract whose status does not allow the action, or that does not exist, is left
        alone and reported; the others change together (a billing run suspending its
        non-payers). Each change is audited on its contract, and live sessions follow as for
        single changes.
        """
        sources, target = TRANSITIONS[action]
        wanted = list(dict.fromkeys(ids))
        before = {contract_id: await self._before(contract_id) for contract_id in wanted}
        changed: list[int] = []
        refused: list[tuple[int, str]] = []
        started = time.monotonic()
        with wrap_db_errors():
            async with self.context.transaction() as session:
                # Core statements, not ORM rows: 10,000 rows through the unit of work cost
                # seconds; these are one SELECT and one UPDATE per thousand.
                current: dict[int, tuple[str, str]] = {}
                for start in range(0, len(wanted), 1000):
                    chunk = wanted[start : start + 1000]
                    read = select(Contract.id, Contract.number, Contract.status).where(
                        Contract.id.in_(chunk)
                    )
                    for contract_id, number, status in await session.execute(read):
                        current[contract_id] = (number, status)
                eligible: list[int] = []
                for contract_id in wanted:
                    if contract_id not in current:
                        refused.append((contract_id, f"contract {contract_id} does not exist"))
                        continue
                    number, status = current[contract_id]
                    if ContractStatus(status) not in sources:
                        detail = f"contract {number} cannot go from {status} to {target}"
                        refused.append((contract_id, detail))
                        continue
                    eligible.append(contract_id)
                now = utcnow()
                for start in range(0, len(eligible), 1000):
                    chunk = eligible[start : start + 1000]
                    change = (
                        update(Contract)
                        .where(Contract.id.in_(chunk), Contract.status.in_(sorted(sources)))
                        .values(
                            status=target,
                            updated_at=now,
                            updated_by=actor.name,
                            updated_via=actor.via,
                        )
                        .returning(Contract.id)
                        .execution_options(synchronize_session=False)
                    )
                    changed += (await session.scalars(change)).all()
                # Another node may have changed one in between: the UPDATE's own condition
                # decided, and only what it changed is audited.
                done = set(changed)
                changed = [contract_id for contract_id in eligible if contract_id in done]
                refused += [
                    (contract_id, f"contract {current[contract_id][0]} changed meanwhile")
                    for contract_id in eligible
                    if contract_id not in done
                ]
                await audit_many(
                    session,
                    actor,
                    action,
                    self.entity,
                    [(i, {"status": [current[i][1], target]}) for i in changed],
                )
        if changed:
            log.info(
                "%s: %d contracts changed in one commit (%.2f s), %d refused",
                action,
                len(changed),
                time.monotonic() - started,
                len(refused),
            )
        live = self.context.live
        # The index takes the change a slice at a time, each slice's sessions following at
        # once: the first CoA goes out within milliseconds of the commit, not after 10,000.
        for start in range(0, len(changed), 500):
            part = changed[start : start + 500]
            await self.context.committed_many(self.entity, part)
            if live is not None:
                live.contracts_changed({contract_id: before[contract_id] for contract_id in part})
        return changed, refused

    async def upsert_external(
        self, actor: Actor, app: str, external_id: str, data: Mapping[str, Any]
    ) -> tuple[Contract, bool]:
        """Create or update the contract ``app`` knows as ``external_id``; True when created.

        Fields left out keep their current value, so a billing system can send what it owns.
        """
        values = dict(data)
        if "plan_external_id" in values:
            # The billing system names the plan by its own id, under the same app.
            plan_ref = values.pop("plan_external_id")
            values["plan_id"] = None if plan_ref is None else await self.plan_of(app, plan_ref)
        with wrap_db_errors():
            async with self.context.sessions() as session:
                existing = await self._by_external(session, app, external_id)
        values = self.upsert_values(app, external_id, values, creating=existing is None)
        if existing is None:
            return await self.create(actor, values), True
        return await self.update(actor, existing.id, values), False

    @staticmethod
    def upsert_values(
        app: str, external_id: str, data: Mapping[str, Any], *, creating: bool
    ) -> dict[str, Any]:
        """What an upsert creates or changes (API shape, the plan already resolved): the
        reference in the path always stays attached; a create needs number and username."""
        values = dict(data)
        refs = [dict(ref) for ref in values.get("external_refs") or ()]
        if not any(ref["app"] == app and ref["external_id"] == external_id for ref in refs):
            refs.insert(0, {"app": app, "external_id": external_id})
        if creating:
            values["external_refs"] = refs
            missing = [key for key in ("number", "config") if not values.get(key)]
            if missing or not values["config"].get("username"):
                field = missing[0] if missing else "config.username"
                raise InvalidInput(f"{field} is required to create a contract", field=field)
        elif "external_refs" in values:
            values["external_refs"] = refs
        return values

    async def bulk_upsert_external(
        self, actor: Actor, app: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[ItemOutcome]:
        """Upsert many contracts by ``app``'s ids in one transaction (see contracts_bulk)."""
        return await bulk_upsert(self, actor, app, items)

    api_field_names = staticmethod(_api_field_names)

    async def plan_of(self, app: str, external_id: str) -> int:
        with wrap_db_errors():
            async with self.context.sessions() as session:
                plan = await Plans.by_external(session, app, external_id)
        if plan is None:
            raise InvalidInput(f"no plan with {app} id {external_id!r}", field="plan_external_id")
        return plan.id

    def log_bulk(self, written: int, refused: int, seconds: float) -> None:
        if written:
            log.info(
                "bulk upsert: %d contracts written in one commit (%.2f s), %d refused",
                written,
                seconds,
                refused,
            )

    async def committed_bulk(
        self, plans: Mapping[int, int | None], before: Mapping[int, Any]
    ) -> None:
        """After a bulk commit of contracts (id → plan id): the index and other nodes once,
        quota states, then live sessions."""
        ids = list(plans)
        if not ids:
            return
        await self.context.committed_many(self.entity, ids)
        quota = self.context.quota
        planned = [row_id for row_id, plan_id in plans.items() if plan_id is not None]
        if quota is not None and planned:
            await quota.evaluate(planned, follow=False)
        live = self.context.live
        if live is not None:
            changed = {
                row_id: before[row_id]
                for row_id in ids
                if before.get(row_id) is not None and live.contract(row_id) is not None
            }
            if changed:
                live.contracts_changed(changed)

    # -- live sessions (CoA and Disconnect after the commit) --------------------------------------

    async def _committed(self, row: Contract, before: Any) -> Contract:
        await self.context.committed(self.entity, row.id)
        quota = self.context.quota
        if quota is not None and row.plan_id is not None:
            # A new plan or billing day may mean another period, another cap.
            await quota.evaluate([row.id], follow=False)
        self._after(row.id, before)
        return row

    async def _before(self, row_id: int | None) -> ContractSnapshot | None:
        live = self.context.live
        return None if live is None or row_id is None else live.contract(row_id)

    def _after(self, row_id: int, before: Any) -> None:
        live = self.context.live
        # A new contract has no sessions; a deleted one's are found by delete() beforehand.
        if live is not None and before is not None and live.contract(row_id) is not None:
            live.contracts_changed({row_id: before})

    async def delete(self, actor: Actor, row_id: int) -> None:
        live = self.context.live
        # Its sessions lose their contract_id with the row (ON DELETE SET NULL): find them first.
        targets = await live.open_sessions_of([row_id]) if live is not None else []
        await super().delete(actor, row_id)
        if live is not None:
            live.disconnect(targets, "contract deleted")

    async def disconnect(self, actor: Actor, contract_id: int) -> list[int]:
        """Disconnect every open session of the contract; returns their ids (sent after)."""
        live = self._live()
        with wrap_db_errors():
            async with self.context.transaction() as session:
                await common.get(session, Contract, contract_id, self.label)
                targets = await live.open_sessions_of([contract_id])
                ids = [target.id for target in targets]
                audit(session, actor, "disconnect", self.entity, contract_id, {"sessions": ids})
        live.disconnect(targets, f"disconnect requested by {actor.name or 'API'}")
        return ids

    def _live(self) -> LiveSessions:
        if self.context.live is None:
            raise StorageUnavailable("RADIUS is not running in this process")
        return self.context.live

    def preview(self, contract_id: int, nas_id: int) -> Preview:
        """What NAS ``nas_id`` would answer for the contract now (see AccessHandler.preview)."""
        if self.context.access is None:
            raise StorageUnavailable("RADIUS is not running in this process")
        return self.context.access.preview(contract_id, nas_id)

    async def count(self) -> int:
        with wrap_db_errors():
            async with self.context.sessions() as session:
                return int(await session.scalar(select(func.count(Contract.id))) or 0)
