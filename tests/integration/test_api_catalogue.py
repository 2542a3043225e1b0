"""Manufacturers, POPs and NAS through the real HTTP API, on every database backend."""

from __future__ import annotations

import httpx

from conftest import Factory, RunningDaemon
from support import problem


def test_manufacturer_crud_and_activation(api: httpx.Client, make: Factory) -> None:
    created = make.manufacturer(vendor_id=14988, description="RouterOS boxes")
    assert created["active"] is True and created["vendor_id"] == 14988
    assert created["created_by"] == "admin" and created["created_via"] == "api"

    got = api.get(f"/api/v1/manufacturers/{created['id']}")
    assert got.status_code == 200 and got.json()["name"] == created["name"]

    patched = api.patch(
        f"/api/v1/manufacturers/{created['id']}",
        json={"description": "changed"},
        headers={"X-Client-System": "erp"},
    )
    assert patched.status_code == 200
    assert patched.json()["description"] == "changed" and patched.json()["name"] == created["name"]
    assert patched.json()["updated_via"] == "erp"

    off = api.post(f"/api/v1/manufacturers/{created['id']}/deactivate")
    assert off.status_code == 200 and off.json()["active"] is False
    listed = api.get("/api/v1/manufacturers", params={"q": created["name"], "active": False})
    assert [m["id"] for m in listed.json()["items"]] == [created["id"]]
    on = api.post(f"/api/v1/manufacturers/{created['id']}/activate")
    assert on.json()["active"] is True

    assert api.delete(f"/api/v1/manufacturers/{created['id']}").status_code == 204
    problem(api.get(f"/api/v1/manufacturers/{created['id']}"), 404)


def test_manufacturer_dictionary_vendor_fills_vendor_id(make: Factory) -> None:
    created = make.manufacturer(dictionary_vendor="mikrotik")
    assert created["dictionary_vendor"] == "Mikrotik" and created["vendor_id"] == 14988


def test_manufacturer_unknown_dictionary_vendor_is_422(api: httpx.Client, make: Factory) -> None:
    response = api.post(
        "/api/v1/manufacturers", json={"name": make.name("mf"), "dictionary_vendor": "Nope"}
    )
    problem(response, 422, "dictionary_vendor")


def test_duplicate_names_are_409(api: httpx.Client, make: Factory) -> None:
    first = make.manufacturer()
    problem(api.post("/api/v1/manufacturers", json={"name": first["name"]}), 409, "name")
    other = make.manufacturer()
    problem(api.patch(f"/api/v1/manufacturers/{other['id']}", json={"name": first["name"]}), 409)


def test_invalid_bodies_name_the_field(api: httpx.Client) -> None:
    problem(api.post("/api/v1/manufacturers", json={}), 422, "name")
    problem(
        api.post("/api/v1/manufacturers", json={"name": "x", "vendor_id": -1}), 422, "vendor_id"
    )
    problem(api.post("/api/v1/manufacturers", json={"name": "x", "colour": "red"}), 422, "colour")
    problem(api.post("/api/v1/manufacturers", json={"name": "bad\x00name"}), 422, "name")
    problem(api.patch("/api/v1/manufacturers/1", json={"name": None}), 422)
    problem(
        api.post(
            "/api/v1/manufacturers",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        400,  # the documented answer to a body that does not parse (test_api_input_edges)
        "body",
    )


def test_unknown_ids_are_404(api: httpx.Client) -> None:
    for path in ("manufacturers", "pops", "nas", "radius/pools", "radius/layouts", "contracts"):
        problem(api.get(f"/api/v1/{path}/2147483647"), 404, "id")
        problem(api.delete(f"/api/v1/{path}/2147483647"), 404)
    problem(api.get("/api/v1/manufacturers/0"), 422, "item_id")
    problem(api.get("/api/v1/manufacturers/99999999999999999999"), 422, "item_id")


def test_manufacturer_with_nas_cannot_be_deleted(api: httpx.Client, make: Factory) -> None:
    manufacturer = make.manufacturer()
    nas = make.nas(manufacturer_id=manufacturer["id"])
    body = problem(api.delete(f"/api/v1/manufacturers/{manufacturer['id']}"), 409)
    assert nas["name"] in body["detail"] and "1 NAS" in body["detail"]
    assert api.delete(f"/api/v1/nas/{nas['id']}").status_code == 204
    assert api.delete(f"/api/v1/manufacturers/{manufacturer['id']}").status_code == 204


def test_pop_crud_and_in_use(api: httpx.Client, make: Factory) -> None:
    pop = make.pop()
    assert pop["city"] == "Lisbon"
    nas = make.nas(pop_id=pop["id"])
    assert nas["pop_id"] == pop["id"]
    body = problem(api.delete(f"/api/v1/pops/{pop['id']}"), 409)
    assert nas["name"] in body["detail"]
    listed = api.get("/api/v1/nas", params={"pop_id": pop["id"]}).json()
    assert [n["id"] for n in listed["items"]] == [nas["id"]]


def test_nas_secret_is_write_only(api: httpx.Client, make: Factory) -> None:
    nas = make.nas()
    assert "secret" not in nas
    assert "secret" not in api.get(f"/api/v1/nas/{nas['id']}").json()
    listing = api.get("/api/v1/nas", params={"q": nas["name"]}).text
    assert "s3cret-" not in listing
    changed = api.patch(f"/api/v1/nas/{nas['id']}", json={"secret": "another-long-secret"})
    assert changed.status_code == 200 and "secret" not in changed.json()


def test_nas_defaults_and_cidr(make: Factory) -> None:
    nas = make.nas(address="192.0.2.0/28")
    assert nas["address"] == "192.0.2.0/28"
    assert nas["coa_port"] == 3799 and nas["require_message_authenticator"] is True


def test_nas_bad_input(api: httpx.Client, make: Factory) -> None:
    manufacturer = make.manufacturer()
    good = {
        "name": make.name("nas"),
        "address": make.address(),
        "secret": "long-enough-secret",
        "manufacturer_id": manufacturer["id"],
    }
    cases = {
        "address": "300.1.1.1",
        "secret": "testing123",
        "coa_port": 70000,
        "manufacturer_id": 2147483647,
        "pop_id": 2147483647,
    }
    for field, value in cases.items():
        problem(api.post("/api/v1/nas", json={**good, field: value}), 422, field)
    problem(api.post("/api/v1/nas", json={**good, "address": "192.0.2.1/24"}), 422, "address")
    problem(api.post("/api/v1/nas", json={**good, "secret": "short"}), 422, "secret")


def test_nas_duplicate_address_is_409(api: httpx.Client, make: Factory) -> None:
    nas = make.nas()
    body = {
        "name": make.name("nas"),
        "address": nas["address"],
        "secret": "long-enough-secret",
        "manufacturer_id": nas["manufacturer_id"],
    }
    assert nas["name"] in problem(api.post("/api/v1/nas", json=body), 409, "address")["detail"]


def test_list_pagination(api: httpx.Client, make: Factory) -> None:
    city = make.name("city")
    ids = [make.pop(city=city)["id"] for _ in range(5)]
    first = api.get("/api/v1/pops", params={"q": city, "limit": 2, "sort": "id"}).json()
    assert first["total"] == 5 and first["limit"] == 2 and first["offset"] == 0
    assert [p["id"] for p in first["items"]] == ids[:2]
    last = api.get("/api/v1/pops", params={"q": city, "limit": 2, "offset": 4}).json()
    assert [p["id"] for p in last["items"]] == ids[4:]
    newest = api.get("/api/v1/pops", params={"q": city, "sort": "-id"}).json()
    assert [p["id"] for p in newest["items"]] == ids[::-1]
    problem(api.get("/api/v1/pops", params={"sort": "secret"}), 422, "sort")
    problem(api.get("/api/v1/pops", params={"limit": 0}), 422, "limit")
    problem(api.get("/api/v1/pops", params={"limit": 100000}), 422, "limit")


def test_health_needs_no_token(daemon: RunningDaemon) -> None:
    client = daemon.client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["accounting"] == {"mode": "database", "spooled": 0}
    assert ready["authentication"]["contracts_in_index"] >= 0


def test_manufacturer_vendor_id_must_match_dictionary_vendor(
    api: httpx.Client, make: Factory
) -> None:
    body = {"name": make.name("mf"), "dictionary_vendor": "MIKROTIK", "vendor_id": 9}
    assert (
        "14988" in problem(api.post("/api/v1/manufacturers", json=body), 422, "vendor_id")["detail"]
    )
