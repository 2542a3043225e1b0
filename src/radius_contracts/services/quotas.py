"""A contract's data quota: how much of this period's cap it used, and top-ups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from radius_contracts.aaa.quota import QuotaKeeper
from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import Contract
from radius_contracts.errors import Conflict, StorageUnavailable
from radius_contracts.plans import QuotaAction, QuotaCounts, QuotaPeriod
from radius_contracts.services.base import Actor, ServiceContext, audit
from radius_contracts.store import common
from radius_contracts.store import quota as store

__all__ = ["QuotaStatus", "Quotas"]


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """The contract's current quota period as the API shows it (no quota: state ``none``)."""

    contract_id: int
    plan_id: int | None
    plan: str | None
    state: str  # normal, over, none
    cap_bytes: int | None = None
    extra_bytes: int = 0
    used_bytes: int = 0
    remaining_bytes: int | None = None
    counts: QuotaCounts | None = None
    period: QuotaPeriod | None = None
    action: QuotaAction | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    changed_at: datetime | None = None


class Quotas:
    def __init__(self, context: ServiceContext) -> None:
        self.context = context

    def _keeper(self) -> QuotaKeeper:
        if self.context.quota is None:
            raise StorageUnavailable("RADIUS is not running in this process")
        return self.context.quota

    async def status(self, contract_id: int) -> QuotaStatus:
        keeper = self._keeper()
        with wrap_db_errors():
            async with self.context.sessions() as session:
                row = await common.get(session, Contract, contract_id, "contract")
                target = keeper.targets([contract_id]).get(contract_id)
                usage = await store.read(session, contract_id, target) if target else None
        contract = keeper.contract(contract_id)
        plan = contract.plan if contract is not None else None
        if target is None or usage is None or plan is None or plan.quota is None:
            return QuotaStatus(contract_id, row.plan_id, plan.name if plan else None, "none")
        cap = target.cap_bytes + usage.extra_bytes
        return QuotaStatus(
            contract_id=contract_id,
            plan_id=plan.id,
            plan=plan.name,
            state=usage.state.value,
            cap_bytes=target.cap_bytes,
            extra_bytes=usage.extra_bytes,
            used_bytes=usage.used_bytes,
            remaining_bytes=max(cap - usage.used_bytes, 0),
            counts=plan.quota.counts,
            period=plan.quota.period,
            action=plan.quota.action,
            period_start=self._midnight(keeper, usage.period_start),
            period_end=self._midnight(keeper, usage.period_end),
            changed_at=usage.changed_at,
        )

    @staticmethod
    def _midnight(keeper: QuotaKeeper, day: date) -> datetime:
        return datetime.combine(day, time(), keeper.zone)

    async def top_up(
        self, actor: Actor, contract_id: int, *, add_bytes: int = 0, reset: bool = False
    ) -> QuotaStatus:
        """Add to this period's allowance, or count it from zero again; the contract's
        sessions get full speed back by CoA when that lifts it under the cap."""
        keeper = self._keeper()
        changes: dict[str, object] = {"reset": True} if reset else {}
        if add_bytes:
            changes["add_bytes"] = add_bytes
        with wrap_db_errors():
            async with self.context.transaction() as session:
                await common.get(session, Contract, contract_id, "contract")
                target = keeper.targets([contract_id]).get(contract_id)
                if target is None:
                    raise Conflict(
                        f"contract {contract_id} has no data quota (its plan has none)",
                        field="contract_id",
                    )
                await store.top_up(session, contract_id, target, add_bytes=add_bytes, reset=reset)
                audit(session, actor, "quota", "contracts", contract_id, changes)
        await keeper.evaluate([contract_id])
        return await self.status(contract_id)
