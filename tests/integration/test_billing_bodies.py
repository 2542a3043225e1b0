"""Billing systems send what they send: HLiberty's contract body (../shared/seeds/000_…) as it
comes, through POST and the by-external upsert, and then a real login with radclient.

The body below is the seed's "Create a new contract" request example with the ``config`` of its
response example, field for field; only the number, the username and the ids are made unique,
because the tests share one database per backend.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
import pytest

from conftest import LO_SECRET, Factory, RunningDaemon
from radclient import radclient
from support import problem


def hliberty_contract() -> dict[str, Any]:
    tag = secrets.token_hex(4)
    return {
        "number": f"CTR001-{tag}",
        "customer_id": str(uuid.uuid4()),
        "billing_customer_id": "cf3388d2-82df-4f94-8704-4db0f78abf28",
        "signature_date": "2024-12-25T00:00:00+00:00",
        "agent_id": "18bfca62-e884-4274-8358-3810708751df",
        "approval_date": "2024-12-25T00:00:00+00:00",
        "start_date": "2024-12-26T00:00:00+00:00",
        "end_date": None,
        "suspension_date": None,
        "cancellation_date": None,
        "total_value": 500,
        "contract_status": "ACTIVE",
        "contract_stage": "INSTALLED",
        "active": True,
        "json_original": None,
        "json_billing": None,
        "json_payment_method": None,
        "json_items": None,
        "config": {
            "username": f"james-{tag}",
            "password": "jamespass",
            "min_upload": None,
            "max_upload": "50M",
            "min_download": None,
            "max_download": "500M",
            "pool_name_ipv4": None,
            "ipv4": None,
            "poll_name_ipv6": None,
            "ipv6": None,
        },
    }


def login(daemon: RunningDaemon, username: str, password: str) -> Any:
    assert daemon.daemon.auth_port is not None
    request = (
        f'User-Name = "{username}"\nUser-Password = "{password}"\nMessage-Authenticator = 0x00\n'
    )
    return radclient(daemon.daemon.auth_port, LO_SECRET, request)


def check_mapped(contract: dict[str, Any], sent: dict[str, Any]) -> None:
    assert contract["status"] == "active"
    assert contract["start_date"] == "2024-12-26"  # the date in the ISP's zone (UTC here)
    assert contract["end_date"] is None
    assert contract["customer"]["external_id"] == sent["customer_id"]
    assert contract["custom_fields"] == {
        "customer_id": sent["customer_id"],
        "billing_customer_id": sent["billing_customer_id"],
        "agent_id": sent["agent_id"],
        "signature_date": "2024-12-25T00:00:00+00:00",
        "approval_date": "2024-12-25T00:00:00+00:00",
        "total_value": 500,
        "contract_stage": "INSTALLED",
    }
    config = contract["config"]
    assert (config["max_upload"], config["max_download"]) == ("50M", "500M")
    assert config["pool_name_ipv6"] is None and config["has_password"]
    assert config["simultaneous_use"] == 1  # the default, whatever the path


def test_hliberty_body_as_sent_creates_a_contract_that_logs_in(
    daemon: RunningDaemon, api: httpx.Client, lo_nas: dict[str, Any]
) -> None:
    body = hliberty_contract()
    created = api.post("/api/v1/contracts", json=body)
    assert created.status_code == 201, created.text
    check_mapped(created.json(), body)
    reply = login(daemon, body["config"]["username"], "jamespass")
    assert reply.code == "Access-Accept", reply.output
    assert (reply.first("Mikrotik-Rate-Limit") or "").startswith("50M/500M")


def test_hliberty_body_through_the_upsert_and_its_status_changes(
    daemon: RunningDaemon, api: httpx.Client, lo_nas: dict[str, Any]
) -> None:
    body = hliberty_contract()
    path = f"/api/v1/contracts/by-external/hliberty/{uuid.uuid4()}"
    created = api.put(path, json=body)
    assert created.status_code == 201, created.text
    check_mapped(created.json(), body)
    username = body["config"]["username"]
    assert login(daemon, username, "jamespass").code == "Access-Accept"
    # HLiberty suspends: its status, in its case.
    suspended = api.put(path, json={**body, "contract_status": "SUSPENDED"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    # ... and switches the contract off: active false wins over an active-ish status.
    off = api.put(path, json={**body, "contract_status": "ACTIVE", "active": False})
    assert off.status_code == 200 and off.json()["status"] == "inactive"
    reply = login(daemon, username, "jamespass")
    assert reply.code == "Access-Reject", reply.output
    # Back on: the same body as the first time.
    again = api.put(path, json=body)
    assert again.status_code == 200 and again.json()["status"] == "active"
    assert login(daemon, username, "jamespass").code == "Access-Accept"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"status": "SUSPENDED"}, "suspended"),
        ({"contract_status": "Suspended"}, "suspended"),
        ({"contract_status": "canceled"}, "cancelled"),
        ({"active": False}, "inactive"),
        ({"active": True}, "active"),
        ({"contract_status": "SUSPENDED", "active": True}, "suspended"),
        ({"contract_status": "SUSPENDED", "active": False}, "inactive"),
        ({"contract_status": "CANCELLED", "active": False}, "cancelled"),
        ({"status": "active", "contract_status": "SUSPENDED"}, "active"),  # ours wins
    ],
)
def test_status_rule(api: httpx.Client, make: Factory, fields: dict[str, Any], status: str) -> None:
    body = {"number": make.name("C"), "config": {"username": make.name("u")}, **fields}
    created = api.post("/api/v1/contracts", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == status


def test_typos_are_still_refused_naming_the_field(api: httpx.Client) -> None:
    body = hliberty_contract()
    problem(api.post("/api/v1/contracts", json={**body, "contract_stauts": "ACTIVE"}),
            422, "contract_stauts")  # fmt: skip
    typo = {**body, "config": {**body["config"], "pol_name_ipv4": "cgnat"}}
    problem(api.post("/api/v1/contracts", json=typo), 422, "config.pol_name_ipv4")
    problem(api.post("/api/v1/contracts", json={**body, "contract_status": "PENDING"}),
            422, "contract_status")  # fmt: skip
    problem(api.post("/api/v1/contracts", json={**body, "start_date": "26/12/2024"}),
            422, "start_date")  # fmt: skip
    problem(api.post("/api/v1/contracts", json={**body, "signature_date": "yesterday"}),
            422, "signature_date")  # fmt: skip


def test_poll_name_ipv6_is_pool_name_ipv6(api: httpx.Client, make: Factory) -> None:
    pool = make.pool(family="ipv6")
    body = {"number": make.name("C"),
            "config": {"username": make.name("u"), "poll_name_ipv6": pool["name"]}}  # fmt: skip
    created = api.post("/api/v1/contracts", json=body)
    assert created.status_code == 201, created.text
    contract = created.json()
    assert contract["config"]["pool_name_ipv6"] == pool["name"]
    # HLiberty's "update contract connection settings" sends its config the same way.
    connection = {"username": contract["config"]["username"], "poll_name_ipv6": None,
                  "max_upload": "20M", "max_download": "100M"}  # fmt: skip
    replaced = api.put(f"/api/v1/contracts/{contract['id']}/connection", json=connection)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["config"]["pool_name_ipv6"] is None
    patched = api.patch(f"/api/v1/contracts/{contract['id']}",
                        json={"config": {"poll_name_ipv6": pool["name"]}})  # fmt: skip
    assert patched.json()["config"]["pool_name_ipv6"] == pool["name"]
    # Both spellings: ours wins, as status wins over contract_status.
    both = {"username": make.name("u"), "pool_name_ipv6": pool["name"], "poll_name_ipv6": "x"}
    created = api.post("/api/v1/contracts", json={"number": make.name("C"), "config": both})
    assert created.status_code == 201 and created.json()["config"]["pool_name_ipv6"] == pool["name"]


def test_explicit_custom_fields_win_over_business_fields(api: httpx.Client, make: Factory) -> None:
    body = {"number": make.name("C"), "config": {"username": make.name("u")},
            "contract_stage": "INSTALLED", "custom_fields": {"contract_stage": "mine", "x": 1},
            "customer_id": "c-1", "customer": {"external_id": "c-2", "name": "Ana"}}  # fmt: skip
    created = api.post("/api/v1/contracts", json=body).json()
    assert created["custom_fields"] == {"contract_stage": "mine", "x": 1, "customer_id": "c-1"}
    assert created["customer"] == {"external_id": "c-2", "name": "Ana", "custom_fields": {}}
