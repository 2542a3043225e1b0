"""What a change means for a live session (aaa.coa_plan): pure decisions, no network."""

from __future__ import annotations

import pytest

from radius_contracts.aaa.coa_plan import (
    CoaChange,
    CoaError,
    DisconnectChange,
    destination,
    identification,
    plan_change,
    plan_layout_change,
    service_name,
)
from radius_contracts.domain import CoaPolicy, NasSnapshot, SessionTarget

MIKROTIK = CoaPolicy(attributes=("Mikrotik-Rate-Limit", "Session-Timeout"))
JUNIPER = CoaPolicy(
    identifiers=("Acct-Session-Id",),
    attributes=("ERX-Service-Activate",),
    deactivate={"ERX-Service-Activate": "ERX-Service-Deactivate"},
)
OLD = (("Mikrotik-Rate-Limit", "10M/50M"), ("Framed-Pool", "main"))


def test_nothing_changed_sends_nothing() -> None:
    assert plan_change(OLD, OLD, MIKROTIK, "contract changed") is None


def test_live_attribute_change_sends_every_live_attribute() -> None:
    new = (("Mikrotik-Rate-Limit", "10M/100M"), ("Framed-Pool", "main"), ("Session-Timeout", "60"))
    change = plan_change(OLD, new, MIKROTIK, "contract changed")
    assert change == CoaChange(
        (("Mikrotik-Rate-Limit", "10M/100M"), ("Session-Timeout", "60")), "contract changed"
    )


def test_names_compare_without_case() -> None:
    new = (("mikrotik-rate-limit", "10M/50M"), ("Framed-Pool", "main"))
    assert plan_change(OLD, new, MIKROTIK, "x") is None


def test_other_attribute_change_disconnects_naming_it() -> None:
    new = (("Mikrotik-Rate-Limit", "10M/100M"), ("Framed-Pool", "other"))
    change = plan_change(OLD, new, MIKROTIK, "contract changed")
    assert change == DisconnectChange("contract changed (Framed-Pool cannot change by CoA)")


def test_removed_live_attribute_without_deactivation_disconnects() -> None:
    new = (("Framed-Pool", "main"),)
    change = plan_change(OLD, new, MIKROTIK, "r")
    assert isinstance(change, DisconnectChange)
    assert "Mikrotik-Rate-Limit" in change.reason


def test_refusal_disconnects_with_its_text() -> None:
    assert plan_change(OLD, "contract is inactive", MIKROTIK, "r") == DisconnectChange(
        "contract is inactive"
    )


def test_no_live_attributes_means_every_change_disconnects() -> None:
    new = (("Mikrotik-Rate-Limit", "1M/1M"), ("Framed-Pool", "main"))
    assert isinstance(plan_change(OLD, new, CoaPolicy(), "r"), DisconnectChange)


def test_unknown_old_reply_sends_the_live_attributes_as_they_are() -> None:
    assert plan_change(None, OLD, MIKROTIK, "r") == CoaChange(
        (("Mikrotik-Rate-Limit", "10M/50M"),), "r"
    )
    assert plan_change(None, (("Framed-Pool", "x"),), MIKROTIK, "r") is None


def test_juniper_deactivates_the_old_service_by_name_first() -> None:
    old = (("ERX-Service-Activate", "internet(10,50)"),)
    new = (("ERX-Service-Activate", "internet(10,80)"),)
    assert plan_change(old, new, JUNIPER, "r") == CoaChange(
        (("ERX-Service-Deactivate", "internet"), ("ERX-Service-Activate", "internet(10,80)")), "r"
    )
    # A service that is no longer wanted is only switched off.
    assert plan_change(old, (), JUNIPER, "r") == CoaChange(
        (("ERX-Service-Deactivate", "internet"),), "r"
    )


def test_layout_change_never_disconnects() -> None:
    new = (("Mikrotik-Rate-Limit", "10M/50M 0/0"), ("Framed-Pool", "other"))
    assert plan_layout_change(OLD, new, MIKROTIK, "layout x changed") == CoaChange(
        (("Mikrotik-Rate-Limit", "10M/50M 0/0"),), "layout x changed"
    )
    only_other = (("Mikrotik-Rate-Limit", "10M/50M"), ("Framed-Pool", "other"))
    assert plan_layout_change(OLD, only_other, MIKROTIK, "r") is None


def test_service_name() -> None:
    assert service_name("internet(1,2)") == "internet"
    assert service_name(" video ") == "video"


TARGET = SessionTarget(
    id=1,
    contract_id=2,
    nas_id=3,
    username="alice",
    acct_session_id="81000001",
    framed_ip="100.64.0.9",
    nas_ip_address="192.0.2.7",
    nas_port=15,
)


def test_identification_sends_what_was_recorded_in_policy_order() -> None:
    policy = CoaPolicy(identifiers=("NAS-Port", "User-Name", "NAS-Identifier", "Framed-IP-Address"))
    assert identification(TARGET, policy) == (
        ("NAS-Port", "15"),
        ("User-Name", "alice"),
        ("Framed-IP-Address", "100.64.0.9"),
    )
    with pytest.raises(CoaError, match="none of the identifiers"):
        identification(TARGET, CoaPolicy(identifiers=("NAS-Identifier",)))


def _nas(address: str, coa_address: str | None = None) -> NasSnapshot:
    return NasSnapshot(
        id=3, name="bras", address=address, secret="s", manufacturer_id=1,
        manufacturer_name="m", manufacturer_active=True, pop_name=None, coa_port=3799,
        require_message_authenticator=True, coa_address=coa_address,
    )  # fmt: skip


def test_destination() -> None:
    assert destination(_nas("192.0.2.7"), TARGET) == ("192.0.2.7", 3799)
    assert destination(_nas("192.0.2.0/24"), TARGET) == ("192.0.2.7", 3799)
    assert destination(_nas("192.0.2.0/24", "198.51.100.1"), TARGET) == ("198.51.100.1", 3799)
    with pytest.raises(CoaError, match="coa_address"):
        destination(_nas("203.0.113.0/24"), TARGET)
