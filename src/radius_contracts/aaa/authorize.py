"""Authorization rules: may this authenticated contract connect through this NAS, and how.

Pure functions over snapshots; the handler turns the answer into a reply.
"""

from __future__ import annotations

from datetime import date

from radius_contracts.domain import ContractSnapshot, ContractStatus, LayoutPurpose, parse_mac
from radius_contracts.plans import QuotaAction, QuotaState


class Refusal(str):
    """Why a contract may not connect: a short phrase for the auth log and Reply-Message."""

    __slots__ = ()


def purpose_of(contract: ContractSnapshot, today: date) -> LayoutPurpose | Refusal:
    """The layout purpose the contract's status and dates call for, or why it is refused.

    ``suspended`` contracts still connect, to the ``suspended`` layout (e.g. a payment page),
    when the NAS's manufacturer has one; the handler checks that. A contract over its data
    quota is refused, or gets the ``quota`` layout, when its plan's quota action says so
    (reduced speeds alone are in its config already).
    """
    status = contract.status
    if status is ContractStatus.INACTIVE:
        return Refusal("contract is inactive")
    if status is ContractStatus.CANCELLED:
        return Refusal("contract is cancelled")
    if contract.start_date is not None and today < contract.start_date:
        return Refusal(f"contract starts on {contract.start_date.isoformat()}")
    if contract.end_date is not None and today > contract.end_date and not contract.auto_extend:
        return Refusal(f"contract ended on {contract.end_date.isoformat()}")
    if status is ContractStatus.SUSPENDED:
        return LayoutPurpose.SUSPENDED
    if contract.quota_state is QuotaState.OVER and contract.plan is not None:
        quota = contract.plan.quota
        if quota is not None and quota.action is QuotaAction.REJECT:
            return Refusal("data quota exceeded")
        if quota is not None and quota.action is QuotaAction.LAYOUT:
            return LayoutPurpose.QUOTA
    return LayoutPurpose.ACTIVE


def mac_binding_refusal(
    contract: ContractSnapshot, calling_station_id: str | None
) -> Refusal | None:
    """Why the caller's MAC (Calling-Station-Id) breaks the contract's MAC binding, if it does.

    The bound MAC itself is never named: the reason can reach the subscriber's screen.
    """
    bound = contract.config.mac
    if bound is None:
        return None
    if calling_station_id is None:
        return Refusal("contract is bound to a MAC address and the NAS sent no Calling-Station-Id")
    calling = parse_mac(calling_station_id)
    if calling != bound:
        shown = calling_station_id[:40]  # the NAS's text, bounded for the Reply-Message
        return Refusal(f"MAC address {shown} is not the one bound to the contract")
    return None
