"""PUT /contracts/by-external/{app} with a list: a billing system's sync in one transaction.

Each item is checked and audited as the single upsert would; refused items are reported by
index and left out; the RADIUS index holds the rest as soon as the answer comes.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from conftest import LO_SECRET as SECRET
from conftest import Factory, RunningDaemon
from radclient import radclient

BULK = "/api/v1/contracts/by-external/billing"


def _item(make: Factory, **fields: Any) -> dict[str, Any]:
    config = {"username": make.name("bulk"), "password": "pw-" + secrets.token_hex(6),
              **fields.pop("config", {})}  # fmt: skip
    return {"external_id": make.name("B"), "number": make.name("C"), "config": config, **fields}


def _pap(user: str, password: str) -> str:
    return f'User-Name = "{user}"\nUser-Password = "{password}"\nMessage-Authenticator = 0x00\n'


def test_bulk_creates_updates_and_reports_refusals_by_index(
    api: httpx.Client, make: Factory
) -> None:
    taken = make.contract()
    existing = _item(make)
    first = api.put(BULK, json=[existing])
    assert first.status_code == 200, first.text
    assert first.json()["created"] == 1
    twin = make.name("twin")
    items = [
        _item(make),
        {"external_id": existing["external_id"], "config": {"max_download": "70M"}},
        _item(make, config={"username": taken["config"]["username"].upper()}),  # taken
        _item(make, config={"pool_name_ipv4": make.name("nopool")}),  # unknown pool
        {"external_id": make.name("B"), "config": {"username": make.name("u")}},  # no number
        _item(make, config={"username": twin}),
        _item(make, config={"username": twin}),  # the one before took it: same as two calls
    ]
    answer = api.put(BULK, json=items, headers={"X-Client-System": "erp"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    statuses = [(r["index"], r["status"], r["field"]) for r in body["results"]]
    assert statuses == [
        (0, 201, None),
        (1, 200, None),
        (2, 409, "config.username"),
        (3, 422, "config.pool_name_ipv4"),
        (4, 422, "number"),
        (5, 201, None),
        (6, 409, "config.username"),
    ]
    assert (body["created"], body["updated"], body["refused"]) == (2, 1, 4)
    assert taken["number"] in body["results"][2]["detail"]
    updated = api.get(f"{BULK}/{existing['external_id']}").json()
    assert updated["config"]["max_download"] == "70M"
    assert updated["config"]["username"] == existing["config"]["username"]
    assert updated["updated_via"] == "erp"
    for refused in (items[2], items[3], items[4], items[6]):
        assert api.get(f"{BULK}/{refused['external_id']}").status_code == 404
    created = api.get(f"{BULK}/{items[0]['external_id']}").json()
    assert created["external_refs"] == [{"app": "billing", "external_id": items[0]["external_id"]}]
    assert created["config"]["simultaneous_use"] == 1  # the defaults of every create path


def test_bulk_items_are_audited_like_single_calls_without_secrets(
    api: httpx.Client, make: Factory
) -> None:
    item = _item(make, config={"password": "bulk-secret-pw"})
    (result,) = api.put(BULK, json=[item]).json()["results"]
    api.put(BULK, json=[{"external_id": item["external_id"], "status": "suspended"}])
    params = {"entity": "contracts", "entity_id": result["id"]}
    entries = api.get("/api/v1/audit", params=params).json()["items"]
    actions = [(e["action"], e["actor"]) for e in entries]
    assert actions == [("update", "admin"), ("create", "admin")]
    assert entries[0]["changes"] == {"status": "suspended"}
    assert entries[1]["changes"]["password"] == "***"
    assert "bulk-secret-pw" not in api.get("/api/v1/audit", params=params).text


def test_bulk_created_contracts_authenticate_at_once(
    daemon: RunningDaemon, lo_nas: dict[str, Any], api: httpx.Client, make: Factory
) -> None:
    items = [_item(make) for _ in range(3)]
    assert api.put(BULK, json=items).json()["created"] == 3
    assert daemon.daemon.auth_port is not None
    for item in items:
        user, password = item["config"]["username"], item["config"]["password"]
        result = radclient(daemon.daemon.auth_port, SECRET, _pap(user, password))
        assert result.code == "Access-Accept", result.output
        assert result.first("Mikrotik-Address-List") is None, result.output
    api.put(BULK, json=[{"external_id": items[0]["external_id"], "status": "suspended"}])
    user, password = items[0]["config"]["username"], items[0]["config"]["password"]
    result = radclient(daemon.daemon.auth_port, SECRET, _pap(user, password))
    # The next Access-Request already gets the suspended layout.
    assert result.first("Mikrotik-Address-List") == "suspended", result.output


def test_bulk_malformed_or_oversized_is_refused_whole(
    api: httpx.Client, readonly_api: httpx.Client, make: Factory
) -> None:
    good = _item(make)
    bad = api.put(BULK, json=[good, {**_item(make), "config": {"username": 5}}])
    assert bad.status_code == 422, bad.text
    assert "1" in str(bad.json())  # names the item
    assert api.get(f"{BULK}/{good['external_id']}").status_code == 404  # nothing applied
    missing_id = api.put(BULK, json=[{"number": make.name("C")}])
    assert missing_id.status_code == 422
    too_many = [{"external_id": f"x{i}"} for i in range(1001)]
    assert api.put(BULK, json=too_many).status_code == 422
    assert api.put(BULK, json=[]).status_code == 422
    assert readonly_api.put(BULK, json=[_item(make)]).status_code == 403


def test_bulk_items_see_the_items_before_them(api: httpx.Client, make: Factory) -> None:
    """An id twice is created then changed; a username one item gives up, a later one takes."""
    old = _item(make)
    assert api.put(BULK, json=[old]).json()["created"] == 1
    new = _item(make)
    renamed = make.name("renamed")
    items = [
        new,
        {"external_id": new["external_id"], "config": {"max_download": "90M"}},
        {"external_id": old["external_id"], "config": {"username": renamed}},
        _item(make, config={"username": old["config"]["username"]}),  # freed just before
        _item(make, external_refs=[{"app": "erp", "external_id": old["external_id"]}]),
        _item(make, external_refs=[{"app": "erp", "external_id": old["external_id"]}]),
    ]
    results = api.put(BULK, json=items).json()["results"]
    assert [r["status"] for r in results] == [201, 200, 200, 201, 201, 409]
    assert results[5]["field"] == "external_refs[1]"  # [0]: the billing id, put first
    assert results[0]["id"] == results[1]["id"]
    got = api.get(f"{BULK}/{new['external_id']}").json()
    assert got["config"]["max_download"] == "90M"
    assert got["config"]["username"] == new["config"]["username"]
    assert api.get(f"{BULK}/{old['external_id']}").json()["config"]["username"] == renamed
