"""Authorization rules over contract snapshots: status, dates, MAC binding."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from radius_contracts.aaa.authorize import Refusal, mac_binding_refusal, purpose_of
from radius_contracts.aaa.render import SAMPLE_CONTRACT
from radius_contracts.domain import ContractStatus, LayoutPurpose

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
