"""Contracts through the HTTP API: config, status machine, billing upsert, lookups, filters."""

from __future__ import annotations

import httpx

from conftest import Factory
from support import problem


def test_contract_create_returns_everything_but_the_password(
    api: httpx.Client, make: Factory
) -> None:
    pool = make.pool()
    contract = make.contract(
        status="active",
        start_date="2026-01-01",
        end_date="2027-01-01",
        auto_extend=True,
        customer={"external_id": "cust-1", "name": "Ana Silva", "custom_fields": {"vip": True}},
        custom_fields={"plan": "fiber-50"},
        external_refs=[{"app": "billing", "external_id": make.name("b")}],
        config={
            "username": "Ana@Example.NET",
            "min_upload": "512k",
            "max_upload": "10M",
            "min_download": "1G",
            "max_download": "2000000",
            "pool_name_ipv4": pool["name"],
            "ipv6": "2001:db8:1:2::/64",
            "delegated_ipv6_prefix": "2001:db8:100::/56",
            "mac": "AA-BB-CC-00-11-22",
            "simultaneous_use": 2,
        },
    )
    config = contract["config"]
    assert "password" not in config and config["has_password"] is True
    assert (config["min_upload"], config["max_upload"]) == ("512k", "10M")
    assert (config["min_download"], config["max_download"]) == ("1G", "2000000")
    assert config["mac"] == "aa:bb:cc:00:11:22" and config["simultaneous_use"] == 2
    assert config["username"] == "Ana@Example.NET"
    assert contract["customer"] == {
        "external_id": "cust-1",
        "name": "Ana Silva",
        "custom_fields": {"vip": True},
    }
    assert contract["custom_fields"] == {"plan": "fiber-50"}
    assert contract["start_date"] == "2026-01-01" and contract["auto_extend"] is True
    assert "pw-" not in api.get(f"/api/v1/contracts/{contract['id']}").text


def test_username_is_unique_case_insensitively(api: httpx.Client, make: Factory) -> None:
    first = make.contract()
    username = first["config"]["username"].upper()
    body = {"number": make.name("C"), "config": {"username": username}}
    detail = problem(api.post("/api/v1/contracts", json=body), 409, "config.username")["detail"]
    assert first["number"] in detail
    found = api.get("/api/v1/contracts", params={"username": username}).json()
    assert [c["id"] for c in found["items"]] == [first["id"]]


def test_contract_bad_input_names_the_field(api: httpx.Client, make: Factory) -> None:
    def post(config: dict | None = None, **fields: object) -> httpx.Response:
        body = {"number": make.name("C"), "config": {"username": make.name("u"), **(config or {})}}
        return api.post("/api/v1/contracts", json={**body, **fields})

    problem(post({"max_download": "fast"}), 422, "config.max_download")
    problem(post({"max_download": "1.5k5"}), 422, "config.max_download")
    problem(post({"ipv4": "2001:db8::1"}), 422, "config.ipv4")
    problem(post({"ipv6": "10.0.0.0/8"}), 422, "config.ipv6")
    problem(post({"mac": "not-a-mac"}), 422, "config.mac")
    problem(post({"simultaneous_use": 0}), 422, "config.simultaneous_use")
    problem(post({"password": "x" * 129}), 422, "config.password")
    problem(post({"pool_name_ipv4": "no-such-pool"}), 422, "config.pool_name_ipv4")
    problem(post(status="frozen"), 422, "status")
    problem(post(start_date="2026-05-01", end_date="2026-04-01"), 422)
    problem(post(custom_fields={"bad key": 1}), 422)
    problem(api.post("/api/v1/contracts", json={"number": "x"}), 422, "config")


def test_pool_family_must_match(api: httpx.Client, make: Factory) -> None:
    v6 = make.pool(family="ipv6")
    body = {
        "number": make.name("C"),
        "config": {"username": make.name("u"), "pool_name_ipv4": v6["name"]},
    }
    problem(api.post("/api/v1/contracts", json=body), 422, "config.pool_name_ipv4")


def test_fixed_address_belongs_to_one_contract(api: httpx.Client, make: Factory) -> None:
    first = make.contract(config={"ipv4": "198.18.7.9"})
    body = {"number": make.name("C"), "config": {"username": make.name("u"), "ipv4": "198.18.7.9"}}
    detail = problem(api.post("/api/v1/contracts", json=body), 409, "config.ipv4")["detail"]
    assert first["number"] in detail


def test_a_create_breaking_several_rules_is_refused_for_the_first_and_leaves_nothing(
    api: httpx.Client, make: Factory
) -> None:
    # A create goes to the database's unique constraints first; a refused one is checked
    # again in full, so the answer names the first rule broken, in the order of the checks
    # (number, username, addresses, pools, ...), as it always did.
    first = make.contract(config={"ipv4": "198.18.7.10"})
    number = make.name("C")

    def create(number: str, **config: str) -> httpx.Response:
        body = {"number": number, "config": {"username": make.name("u"), **config}}
        return api.post("/api/v1/contracts", json=body)

    no_pool = {"pool_name_ipv4": make.name("no-such-pool")}
    detail = problem(create(first["number"], **no_pool), 409, "number")["detail"]
    assert first["number"] in detail
    taken_name = {"username": first["config"]["username"].upper(), **no_pool}
    problem(create(number, **taken_name), 409, "config.username")
    problem(create(number, ipv4="198.18.7.10", **no_pool), 409, "config.ipv4")
    problem(create(number, **no_pool), 422, "config.pool_name_ipv4")
    # Nothing of the refused creates was written: no row, no audit entry, the number is free.
    assert api.get(f"/api/v1/contracts/by-number/{number}").status_code == 404
    audit = api.get("/api/v1/audit", params={"entity": "contracts", "limit": 1000}).json()
    assert all(entry["changes"].get("number") != number for entry in audit["items"])
    made = create(number)
    assert made.status_code == 201, made.text


def test_patch_changes_only_what_is_sent(api: httpx.Client, make: Factory) -> None:
    contract = make.contract(customer={"name": "Old", "external_id": "x1"})
    response = api.patch(
        f"/api/v1/contracts/{contract['id']}",
        json={"config": {"max_download": "100M"}, "customer": {"name": "New"}},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["config"]["max_download"] == "100M"
    assert changed["config"]["max_upload"] == contract["config"]["max_upload"]
    assert changed["config"]["has_password"] is True
    assert changed["customer"]["name"] == "New" and changed["customer"]["external_id"] == "x1"
    problem(
        api.patch(f"/api/v1/contracts/{contract['id']}", json={"config": {"username": None}}), 422
    )


def test_put_connection_replaces_the_config(api: httpx.Client, make: Factory) -> None:
    contract = make.contract(config={"ipv4": "198.18.9.1"})
    new = {"username": make.name("u"), "max_download": "20M"}
    response = api.put(f"/api/v1/contracts/{contract['id']}/connection", json=new)
    assert response.status_code == 200, response.text
    config = response.json()["config"]
    assert config["username"] == new["username"] and config["max_download"] == "20M"
    assert config["ipv4"] is None and config["has_password"] is False
    assert config["simultaneous_use"] == 1


def test_status_machine(api: httpx.Client, make: Factory) -> None:
    contract = make.contract()
    path = f"/api/v1/contracts/{contract['id']}"
    assert api.get(f"{path}/transitions").json() == {
        "status": "active",
        "allowed": {"suspend": "suspended", "deactivate": "inactive", "cancel": "cancelled"},
    }
    assert api.post(f"{path}/suspend").json()["status"] == "suspended"
    problem(api.post(f"{path}/suspend"), 409, "status")
    assert api.post(f"{path}/activate").json()["status"] == "active"
    assert api.post(f"{path}/deactivate").json()["status"] == "inactive"
    assert api.post(f"{path}/cancel").json()["status"] == "cancelled"
    assert api.get(f"{path}/transitions").json()["allowed"] == {}
    problem(api.post(f"{path}/activate"), 409, "status")
    problem(api.patch(path, json={"status": "active"}), 409, "status")


def test_by_external_upsert_is_idempotent(api: httpx.Client, make: Factory) -> None:
    external_id = make.name("ext")
    path = f"/api/v1/contracts/by-external/billing/{external_id}"
    body = {
        "number": make.name("C"),
        "customer": {"external_id": "c-9", "name": "Rui"},
        "config": {"username": make.name("u"), "password": "pw", "max_download": "30M"},
    }
    created = api.put(path, json=body, headers={"X-Client-System": "billing"})
    assert created.status_code == 201, created.text
    contract = created.json()
    assert contract["external_refs"] == [{"app": "billing", "external_id": external_id}]
    assert contract["created_via"] == "billing"

    again = api.put(path, json=body)
    assert again.status_code == 200 and again.json()["id"] == contract["id"]
    assert again.json()["config"] == contract["config"]

    changed = api.put(path, json={"config": {"max_download": "60M"}})
    assert changed.status_code == 200
    assert changed.json()["config"]["max_download"] == "60M"
    assert changed.json()["config"]["username"] == body["config"]["username"]

    assert api.get(path).json()["id"] == contract["id"]
    assert api.get(f"/api/v1/contracts/by-number/{body['number']}").json()["id"] == contract["id"]
    listed = api.get("/api/v1/contracts", params={"app": "billing", "q": body["number"]}).json()
    assert [c["id"] for c in listed["items"]] == [contract["id"]]


def test_by_external_missing_and_incomplete(api: httpx.Client, make: Factory) -> None:
    problem(api.get(f"/api/v1/contracts/by-external/billing/{make.name('none')}"), 404)
    problem(api.get(f"/api/v1/contracts/by-number/{make.name('none')}"), 404)
    path = f"/api/v1/contracts/by-external/billing/{make.name('ext')}"
    problem(api.put(path, json={"config": {"username": make.name("u")}}), 422, "number")
    problem(api.put(path, json={"number": make.name("C")}), 422, "config")


def test_external_ref_belongs_to_one_contract(api: httpx.Client, make: Factory) -> None:
    ref = {"app": "erp", "external_id": make.name("e")}
    first = make.contract(external_refs=[ref])
    body = {
        "number": make.name("C"),
        "config": {"username": make.name("u")},
        "external_refs": [ref],
    }
    detail = problem(api.post("/api/v1/contracts", json=body), 409, "external_refs[0]")["detail"]
    assert first["number"] in detail
    kept = api.patch(f"/api/v1/contracts/{first['id']}", json={"external_refs": [ref]})
    assert kept.status_code == 200 and kept.json()["external_refs"] == [ref]


def test_every_way_to_one_contract_brings_all_its_external_refs_in_order(
    api: httpx.Client, make: Factory
) -> None:
    # One contract is read with its references joined in (one statement): each lookup must
    # still bring every reference, not only the row the contract was found through.
    refs = [{"app": app, "external_id": make.name("e")} for app in ("erp", "billing", "crm")]
    contract = make.contract(external_refs=refs)
    paths = [
        f"/api/v1/contracts/{contract['id']}",
        f"/api/v1/contracts/by-number/{contract['number']}",
        *(f"/api/v1/contracts/by-external/{r['app']}/{r['external_id']}" for r in refs),
    ]
    for path in paths:
        response = api.get(path)
        assert response.status_code == 200, response.text
        assert response.json()["external_refs"] == refs, path
    changed = api.patch(f"/api/v1/contracts/{contract['id']}", json={"status": "suspended"})
    assert changed.status_code == 200 and changed.json()["external_refs"] == refs
    resumed = api.post(f"/api/v1/contracts/{contract['id']}/activate")
    assert resumed.status_code == 200 and resumed.json()["external_refs"] == refs


def test_list_filters_and_sort(api: httpx.Client, make: Factory) -> None:
    tag = make.name("tag")
    a = make.contract(customer={"name": f"{tag} Zed"})
    b = make.contract(customer={"name": f"{tag} Amy"})
    api.post(f"/api/v1/contracts/{b['id']}/suspend")
    everyone = api.get("/api/v1/contracts", params={"q": tag, "sort": "customer_name"}).json()
    assert [c["id"] for c in everyone["items"]] == [b["id"], a["id"]] and everyone["total"] == 2
    suspended = api.get("/api/v1/contracts", params={"q": tag, "status": "suspended"}).json()
    assert [c["id"] for c in suspended["items"]] == [b["id"]]
    nas = make.nas()
    online = api.get("/api/v1/contracts", params={"q": tag, "nas_id": nas["id"]}).json()
    assert online["total"] == 0
    problem(api.get("/api/v1/contracts", params={"sort": "password"}), 422, "sort")


def test_delete_contract(api: httpx.Client, make: Factory) -> None:
    contract = make.contract()
    assert api.delete(f"/api/v1/contracts/{contract['id']}").status_code == 204
    problem(api.get(f"/api/v1/contracts/{contract['id']}"), 404)
