"""Speeds and the contract status machine."""

from __future__ import annotations

import pytest

from radius_contracts.domain import ContractStatus, allowed_transitions, parse_speed


@pytest.mark.parametrize(
    ("text", "bps"),
    [("512k", 512_000), ("50M", 50_000_000), ("1G", 1_000_000_000), ("2000000", 2_000_000),
     ("1.5M", 1_500_000), (" 10m ", 10_000_000), ("0", 0)],
)  # fmt: skip
def test_parse_speed(text: str, bps: int) -> None:
    assert parse_speed(text) == bps


@pytest.mark.parametrize("text", ["", "fast", "10 Mbit", "-5M", "1.0005k", "1e9", "5T"])
def test_parse_speed_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_speed(text)


def test_cancelled_is_final_and_suspended_can_return() -> None:
    assert allowed_transitions(ContractStatus.CANCELLED) == {}
    assert allowed_transitions(ContractStatus.SUSPENDED) == {
        "activate": ContractStatus.ACTIVE,
        "deactivate": ContractStatus.INACTIVE,
        "cancel": ContractStatus.CANCELLED,
    }
