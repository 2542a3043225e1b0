"""Authorization rules over contract snapshots: status, dates, MAC binding."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from radius_contracts.aaa.authorize import Refusal, mac_binding_refusal, purpose_of
from radius_contracts.aaa.render import SAMPLE_CONTRACT
from radius_contracts.domain import ContractSnapshot, ContractStatus, LayoutPurpose
from radius_contracts.plans import (
    PlanSnapshot,
    QuotaAction,
    QuotaCounts,
    QuotaPeriod,
    QuotaRule,
    QuotaState,
)

TODAY = date(2026, 6, 15)
PLAIN = replace(SAMPLE_CONTRACT, start_date=None, end_date=None, auto_extend=False)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (ContractStatus.ACTIVE, LayoutPurpose.ACTIVE),
        (ContractStatus.SUSPENDED, LayoutPurpose.SUSPENDED),
        (ContractStatus.INACTIVE, "contract is inactive"),
        (ContractStatus.CANCELLED, "contract is cancelled"),
    ],
)
def test_status_decides_the_purpose_or_the_refusal(status: ContractStatus, expected: str) -> None:
    assert purpose_of(replace(PLAIN, status=status), TODAY) == expected


def test_dates_are_inclusive_and_auto_extend_ignores_the_end() -> None:
    assert purpose_of(replace(PLAIN, start_date=TODAY), TODAY) is LayoutPurpose.ACTIVE
    assert purpose_of(replace(PLAIN, end_date=TODAY), TODAY) is LayoutPurpose.ACTIVE
    later = purpose_of(replace(PLAIN, start_date=date(2026, 7, 1)), TODAY)
    assert isinstance(later, Refusal) and later == "contract starts on 2026-07-01"
    ended = replace(PLAIN, end_date=date(2026, 6, 14))
    assert purpose_of(ended, TODAY) == "contract ended on 2026-06-14"
    assert purpose_of(replace(ended, auto_extend=True), TODAY) is LayoutPurpose.ACTIVE


def test_inactive_wins_over_dates() -> None:
    contract = replace(PLAIN, status=ContractStatus.INACTIVE, end_date=date(2020, 1, 1))
    assert purpose_of(contract, TODAY) == "contract is inactive"


def test_mac_binding() -> None:
    bound = replace(PLAIN, config=replace(PLAIN.config, mac="00:11:22:33:44:55"))
    assert mac_binding_refusal(bound, "00-11-22-33-44-55") is None
    assert mac_binding_refusal(bound, "0011.2233.4455") is None
    assert mac_binding_refusal(bound, "00:11:22:33:44:56") is not None
    refusal = mac_binding_refusal(bound, None)
    assert refusal is not None and "no Calling-Station-Id" in refusal
    unbound = replace(PLAIN, config=replace(PLAIN.config, mac=None))
    assert mac_binding_refusal(unbound, None) is None


def _over(
    action: QuotaAction | None, state: QuotaState | None = QuotaState.OVER
) -> ContractSnapshot:
    """PLAIN on a plan whose quota (None: no quota) takes ``action``, in quota ``state``."""
    quota = None
    if action is not None:
        quota = QuotaRule(10**9, QuotaPeriod.MONTH, QuotaCounts.BOTH, action)
    plan = PlanSnapshot(id=7, name="capped", quota=quota)
    return replace(PLAIN, plan_id=7, plan=plan, quota_state=state)


@pytest.mark.parametrize(
    ("action", "state", "expected"),
    [
        (QuotaAction.REJECT, QuotaState.OVER, "data quota exceeded"),
        (QuotaAction.LAYOUT, QuotaState.OVER, LayoutPurpose.QUOTA),
        (QuotaAction.FUP, QuotaState.OVER, LayoutPurpose.ACTIVE),  # speeds are in its config
        (QuotaAction.REJECT, QuotaState.NORMAL, LayoutPurpose.ACTIVE),
        (QuotaAction.LAYOUT, QuotaState.NORMAL, LayoutPurpose.ACTIVE),
        (None, QuotaState.OVER, LayoutPurpose.ACTIVE),  # a plan without a quota
    ],
)
def test_a_quota_past_its_cap_refuses_or_picks_the_quota_layout_as_its_action_says(
    action: QuotaAction | None, state: QuotaState, expected: str
) -> None:
    decided = purpose_of(_over(action, state), TODAY)
    assert decided == expected
    assert isinstance(decided, Refusal) == (expected == "data quota exceeded")


def test_quota_state_without_a_plan_changes_nothing() -> None:
    orphan = replace(PLAIN, plan_id=None, plan=None, quota_state=QuotaState.OVER)
    assert purpose_of(orphan, TODAY) is LayoutPurpose.ACTIVE


def test_suspension_and_dates_come_before_the_quota() -> None:
    over = _over(QuotaAction.REJECT)
    suspended = replace(over, status=ContractStatus.SUSPENDED)
    assert purpose_of(suspended, TODAY) is LayoutPurpose.SUSPENDED
    late = replace(over, start_date=date(2026, 7, 1))
    assert purpose_of(late, TODAY) == "contract starts on 2026-07-01"


def test_a_mac_refusal_quotes_at_most_40_characters_of_what_the_nas_sent() -> None:
    bound = replace(PLAIN, config=replace(PLAIN.config, mac="00:11:22:33:44:55"))
    sent = "66:77:88:99:aa:bb" + "x" * 60
    refusal = mac_binding_refusal(bound, sent)
    assert refusal == f"MAC address {sent[:40]} is not the one bound to the contract"
