"""Reject phrases map to a bounded set of metrics labels, values and all."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from radius_contracts.aaa import chap_challenges
from radius_contracts.aaa.authorize import mac_binding_refusal, purpose_of
from radius_contracts.aaa.handler import too_large_reason
from radius_contracts.aaa.reject_reasons import LABELS, OTHER, reject_label
from radius_contracts.domain import ConnectionConfig, ContractSnapshot, ContractStatus


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("wrong password", "wrong_password"),
        ("unknown user", "unknown_user"),
        ("NAS is not active", "nas_inactive"),
        ("no password, CHAP or MS-CHAPv2 credentials", "no_credentials"),
        ("contract starts on 2031-01-01", "contract_not_started"),
        ("contract ended on 2020-01-01", "contract_ended"),
        ("MAC address aa:bb:cc:dd:ee:ff is not the one bound to the contract", "mac_binding"),
        ("simultaneous use limit of 2 reached", "simultaneous_use"),
        ('pool "odd"\nname is exhausted', "pool_exhausted"),
        (too_large_reason(4321), "reply_too_large"),
        (chap_challenges.SHORT_CHALLENGE, "chap_challenge_short"),
        (chap_challenges.REUSED_CHALLENGE, "chap_challenge_reused"),
        ("something new", OTHER),
    ],
)
def test_reason_phrases_map_to_labels(reason: str, label: str) -> None:
    assert reject_label(reason) == label
    assert label in LABELS


def _contract(**fields: Any) -> ContractSnapshot:
    config = ConnectionConfig(username="u", password="p", mac="aa:bb:cc:dd:ee:ff")
    fields.setdefault("status", ContractStatus.ACTIVE)
    return ContractSnapshot(id=1, number="C1", config=config, **fields)


def test_the_authorization_rules_phrases_all_have_a_label() -> None:
    today = date(2026, 6, 1)
    refusals = [
        purpose_of(_contract(status=ContractStatus.INACTIVE), today),
        purpose_of(_contract(status=ContractStatus.CANCELLED), today),
        purpose_of(_contract(start_date=today + timedelta(days=1)), today),
        purpose_of(_contract(end_date=today - timedelta(days=1)), today),
        mac_binding_refusal(_contract(), None),
        mac_binding_refusal(_contract(), "11:22:33:44:55:66"),
    ]
    labels = [reject_label(str(refusal)) for refusal in refusals]
    assert OTHER not in labels, list(zip(refusals, labels, strict=True))
