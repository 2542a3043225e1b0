"""Service plans: speeds, timeouts, a data quota and time windows that contracts reference.

A plan edit is committed, the index re-derives the plan's contracts, their quota states are
re-checked against the new cap, and then their online sessions follow by CoA (or Disconnect)
through the live-change path, paced at ``[coa] plan_rate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import Contract, Plan, PlanExternalRef
from radius_contracts.domain import ContractSnapshot
from radius_contracts.errors import Conflict, InvalidInput, NotFound
from radius_contracts.plans import (
    SPEED_FIELDS,
    QuotaAction,
    overlapping_windows,
    window_of,
)
from radius_contracts.services.base import Actor, CrudService
from radius_contracts.store.common import usage

# The API's nested quota object ↔ the plans table's columns.
QUOTA_COLUMNS = {
    "cap_bytes": "quota_bytes",
    "period": "quota_period",
    "counts": "quota_counts",
    "action": "quota_action",
}
FUP_COLUMNS = {name: f"fup_{name}" for name in SPEED_FIELDS}

__all__ = ["FUP_COLUMNS", "QUOTA_COLUMNS", "Plans", "flatten_plan"]


def flatten_plan(data: Mapping[str, Any]) -> dict[str, Any]:
    """API shape (nested ``quota``) → column names; ``quota: null`` clears the quota."""
    flat = {k: v for k, v in data.items() if k != "quota"}
    if "quota" in data:
        quota = data["quota"] or {}
        for key, column in QUOTA_COLUMNS.items():
            flat[column] = quota.get(key)
        speeds = quota.get("fup") or {}
        for key, column in FUP_COLUMNS.items():
            flat[column] = speeds.get(key)
    return flat


class Plans(CrudService[Plan]):
    model = Plan
    label = "plan"
    entity = "plans"
    filters = ("active",)
    search = ("name", "description")

    def _list_stmt(self, filters: Mapping[str, Any]) -> Select[Plan]:
        stmt = super()._list_stmt(filters)
        if filters.get("app"):
            stmt = stmt.where(
                exists().where(
                    PlanExternalRef.plan_id == Plan.id, PlanExternalRef.app == filters["app"]
                )
            )
        if filters.get("has_quota") is not None:
            quota = Plan.quota_bytes.is_not(None)
            stmt = stmt.where(quota if filters["has_quota"] else ~quota)
        return stmt

    async def get_by_external(self, app: str, external_id: str) -> Plan:
        with wrap_db_errors():
            async with self.context.sessions() as session:
                row = await self.by_external(session, app, external_id)
        if row is None:
            raise NotFound(f"no plan with {app} id {external_id!r}", field="external_id")
        return row

    @staticmethod
    async def by_external(session: AsyncSession, app: str, external_id: str) -> Plan | None:
        stmt = (
            select(Plan)
            .join(PlanExternalRef)
            .where(PlanExternalRef.app == app, PlanExternalRef.external_id == external_id)
        )
        return (await session.scalars(stmt)).first()

    # -- checks -------------------------------------------------------------------------------

    async def _check(self, session: AsyncSession, row: Plan | None, data: dict[str, Any]) -> None:
        if "windows" in data:
            windows = [window_of(window) for window in data["windows"]]
            pair = overlapping_windows(windows)
            if pair is not None:
                first, second = pair
                raise InvalidInput(
                    f"window {second} overlaps window {first}: a minute may be in one window only",
                    field=f"windows[{second}]",
                )
            # Sessions are moved to the new windows by this change's own CoA; the window job
            # starts counting boundaries afresh from here.
            data["window_applied"] = None
        action = data.get("quota_action", row.quota_action if row else None)
        cap = data.get("quota_bytes", row.quota_bytes if row else None)
        if cap is not None and action == QuotaAction.FUP.value:
            fup = [
                data.get(column, getattr(row, column) if row else None)
                for column in FUP_COLUMNS.values()
            ]
            if not any(fup):
                raise InvalidInput(
                    "a fup quota action needs the reduced speeds (quota.fup)", field="quota.fup"
                )
        await self._check_refs(session, row, data.get("external_refs"))

    @staticmethod
    async def _check_refs(
        session: AsyncSession, row: Plan | None, refs: Sequence[Mapping[str, str]] | None
    ) -> None:
        seen: set[tuple[str, str]] = set()
        for index, ref in enumerate(refs or ()):
            key = (ref["app"], ref["external_id"])
            if key in seen:
                raise InvalidInput(
                    f"{key[0]} id {key[1]!r} is listed twice", field=f"external_refs[{index}]"
                )
            seen.add(key)
            holder = await Plans.by_external(session, *key)
            if holder is not None and (row is None or holder.id != row.id):
                raise Conflict(
                    f"{key[0]} id {key[1]!r} already belongs to plan {holder.name!r}",
                    field=f"external_refs[{index}]",
                )

    async def _users(self, session: AsyncSession, row: Plan) -> list[str]:
        phrase = await usage(session, "contracts", Contract.number, Contract.plan_id == row.id)
        return [phrase] if phrase else []

    def _apply(self, row: Plan, data: Mapping[str, Any]) -> None:
        for key, value in data.items():
            if key == "external_refs":
                wanted = [(ref["app"], ref["external_id"]) for ref in value]
                current = {(ref.app, ref.external_id): ref for ref in row.external_refs}
                row.external_refs = [
                    current.get(k) or PlanExternalRef(app=k[0], external_id=k[1]) for k in wanted
                ]
            else:
                setattr(row, key, value)

    # -- writing ------------------------------------------------------------------------------

    async def create(self, actor: Actor, data: Mapping[str, Any]) -> Plan:
        return await super().create(actor, flatten_plan(data))

    async def update(self, actor: Actor, row_id: int, changes: Mapping[str, Any]) -> Plan:
        return await super().update(actor, row_id, flatten_plan(changes))

    async def upsert_external(
        self, actor: Actor, app: str, external_id: str, data: Mapping[str, Any]
    ) -> tuple[Plan, bool]:
        """Create or update the plan ``app`` knows as ``external_id``; True when created."""
        values = dict(data)
        refs = [dict(ref) for ref in values.get("external_refs") or ()]
        if not any(ref["app"] == app and ref["external_id"] == external_id for ref in refs):
            refs.insert(0, {"app": app, "external_id": external_id})
        with wrap_db_errors():
            async with self.context.sessions() as session:
                existing = await self.by_external(session, app, external_id)
        if existing is None:
            if not values.get("name"):
                raise InvalidInput("name is required to create a plan", field="name")
            values["external_refs"] = refs
            return await self.create(actor, values), True
        if "external_refs" in values:
            values["external_refs"] = refs  # the reference in the path stays attached
        return await self.update(actor, existing.id, values), False

    # -- live sessions ------------------------------------------------------------------------

    async def _before(self, row_id: int | None) -> Any:
        live = self.context.live
        if live is None or row_id is None:
            return None
        return {contract.id: contract for contract in live.contracts_of_plan(row_id)}

    async def _committed(self, row: Plan, before: Any) -> Plan:
        await self.context.committed(self.entity, row.id)
        contracts: dict[int, ContractSnapshot | None] = before or {}
        quota = self.context.quota
        if quota is not None and contracts:
            # A new cap (or period, or counting rule) may put contracts over or under it.
            await quota.evaluate(list(contracts), follow=False)
        live = self.context.live
        if live is not None and contracts:
            live.plan_changed(contracts)
        return row
