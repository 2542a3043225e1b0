"""RADIUS attribute catalogue, layouts (with lint) and pools through the HTTP API."""

from __future__ import annotations

import httpx

from conftest import Factory
from support import problem


def _attribute(api: httpx.Client, name: str) -> dict:
    items = api.get("/api/v1/radius/attributes", params={"q": name, "limit": 1000}).json()["items"]
    return next(a for a in items if a["name"] == name)


# -- attributes ----------------------------------------------------------------------------------


def test_catalogue_lists_dictionary_attributes(api: httpx.Client) -> None:
    rate = _attribute(api, "Mikrotik-Rate-Limit")
    assert rate["vendor_id"] == 14988 and rate["code"] == 8 and rate["type"] == "string"
    assert rate["source"] == "dictionary"
    vendor = api.get("/api/v1/radius/attributes", params={"vendor": "Huawei"}).json()
    assert vendor["total"] > 5 and all(a["vendor"] == "Huawei" for a in vendor["items"])


def test_operator_attribute_lifecycle(api: httpx.Client, make: Factory) -> None:
    name = make.name("Acme-Speed")
    code = 200 + make.count
    created = api.post(
        "/api/v1/radius/attributes",
        json={"name": name, "vendor_id": 99_000 + make.count, "code": code, "type": "integer"},
    )
    assert created.status_code == 201, created.text
    attr = created.json()
    assert attr["source"] == "operator" and attr["type"] == "integer"
    layout = make.layout(attributes=[{"attribute": name, "template": "{max_download_bps}"}])
    body = problem(api.delete(f"/api/v1/radius/attributes/{attr['id']}"), 409)
    assert layout["name"] in body["detail"]
    problem(api.post(f"/api/v1/radius/attributes/{attr['id']}/deactivate"), 409, "active")
    assert api.delete(f"/api/v1/radius/layouts/{layout['id']}").status_code == 204
    assert api.delete(f"/api/v1/radius/attributes/{attr['id']}").status_code == 204


def test_operator_attribute_conflicts(api: httpx.Client, make: Factory) -> None:
    problem(
        api.post(
            "/api/v1/radius/attributes",
            json={"name": "Mikrotik-Rate-Limit", "vendor_id": 14988, "code": 250, "type": "string"},
        ),
        409,
        "name",
    )
    problem(
        api.post(
            "/api/v1/radius/attributes",
            json={"name": make.name("X"), "vendor": "Mikrotik", "code": 8, "type": "string"},
        ),
        409,
        "code",
    )
    problem(
        api.post(
            "/api/v1/radius/attributes",
            json={"name": make.name("X"), "code": 8, "type": "string"},
        ),
        422,
        "vendor_id",
    )
    problem(
        api.post(
            "/api/v1/radius/attributes",
            json={"name": make.name("X"), "vendor_id": 1, "code": 8, "type": "struct"},
        ),
        422,
        "type",
    )


def test_dictionary_attribute_only_toggles(api: httpx.Client) -> None:
    attr = _attribute(api, "Reply-Message")
    problem(api.patch(f"/api/v1/radius/attributes/{attr['id']}", json={"code": 99}), 422, "code")
    problem(api.delete(f"/api/v1/radius/attributes/{attr['id']}"), 409)
    described = api.patch(
        f"/api/v1/radius/attributes/{attr['id']}", json={"description": "shown to users"}
    )
    assert described.status_code == 200 and described.json()["description"] == "shown to users"


# -- layouts -------------------------------------------------------------------------------------


def test_layout_rows_keep_order(api: httpx.Client, make: Factory) -> None:
    rows = [
        {"attribute": "Mikrotik-Rate-Limit", "template": "{max_upload}/{max_download}"},
        {"attribute": "Framed-Pool", "template": "{pool_name_ipv4}"},
        {"attribute": "Mikrotik-Address-List", "template": "customers"},
        {"attribute": "Session-Timeout", "template": "86400"},
    ]
    layout = make.layout(attributes=rows)
    assert layout["attributes"] == rows and layout["purpose"] == "active"
    got = api.get(f"/api/v1/radius/layouts/{layout['id']}/attributes")
    assert got.json() == rows
    replaced = api.put(f"/api/v1/radius/layouts/{layout['id']}/attributes", json=rows[::-1])
    assert replaced.status_code == 200 and replaced.json() == rows[::-1]
    patched = api.patch(f"/api/v1/radius/layouts/{layout['id']}", json={"attributes": rows[:1]})
    assert patched.json()["attributes"] == rows[:1]


def test_layout_lint_names_the_row(api: httpx.Client, make: Factory) -> None:
    manufacturer = make.manufacturer()
    good = {"attribute": "Mikrotik-Rate-Limit", "template": "{max_upload}/{max_download}"}
    cases = [
        ({"attribute": "No-Such-Attribute", "template": "x"}, "attributes[1].attribute"),
        ({"attribute": "Reply-Message", "template": "{nope}"}, "attributes[1].template"),
        ({"attribute": "Reply-Message", "template": "{username"}, "attributes[1].template"),
        (
            {"attribute": "Reply-Message", "template": "{username.__class__}"},
            "attributes[1].template",
        ),
        ({"attribute": "Session-Timeout", "template": "{username}"}, "attributes[1].template"),
        (
            {"attribute": "Framed-IP-Address", "template": "{pool_name_ipv4}"},
            "attributes[1].template",
        ),
    ]
    for row, field in cases:
        body = {
            "name": make.name("l"),
            "manufacturer_id": manufacturer["id"],
            "attributes": [good, row],
        }
        problem(api.post("/api/v1/radius/layouts", json=body), 422, field)


def test_layout_typed_templates_pass(make: Factory) -> None:
    layout = make.layout(
        attributes=[
            {"attribute": "Huawei-Output-Average-Rate", "template": "{max_download_bps}"},
            {"attribute": "Huawei-Input-Average-Rate", "template": "{max_upload_bps}"},
            {"attribute": "Framed-IP-Address", "template": "{ipv4}"},
            {"attribute": "Reply-Message", "template": "{{literal}} {custom.plan}"},
        ]
    )
    assert len(layout["attributes"]) == 4


def test_one_active_layout_per_manufacturer_and_purpose(api: httpx.Client, make: Factory) -> None:
    first = make.layout()
    again = {"name": make.name("l"), "manufacturer_id": first["manufacturer_id"], "attributes": []}
    body = problem(api.post("/api/v1/radius/layouts", json=again), 409)
    assert first["name"] in body["detail"]
    suspended = make.layout(manufacturer_id=first["manufacturer_id"], purpose="suspended")
    assert suspended["purpose"] == "suspended"
    inactive = make.layout(manufacturer_id=first["manufacturer_id"], active=False)
    problem(api.post(f"/api/v1/radius/layouts/{inactive['id']}/activate"), 409, "active")
    assert api.post(f"/api/v1/radius/layouts/{first['id']}/deactivate").status_code == 200
    assert api.post(f"/api/v1/radius/layouts/{inactive['id']}/activate").status_code == 200


def test_layout_variables_listed(api: httpx.Client) -> None:
    names = {v["name"] for v in api.get("/api/v1/radius/layouts/variables").json()}
    assert {"username", "max_download_bps", "max_upload_kbps", "pool_name_ipv4"} <= names


# -- pools ---------------------------------------------------------------------------------------


def test_pool_families(make: Factory) -> None:
    v4 = make.pool()
    assert v4["family"] == "ipv4" and v4["prefix_length"] is None and v4["mode"] == "managed"
    v6 = make.pool(family="ipv6")
    assert v6["prefix_length"] == 64
    pd = make.pool(family="ipv6-pd", prefix_length=56, mode="nas", lease_time=3600)
    assert pd["prefix_length"] == 56 and pd["mode"] == "nas" and pd["lease_time"] == 3600


def test_pool_bad_shapes(api: httpx.Client, make: Factory) -> None:
    def post(**fields: object) -> httpx.Response:
        return api.post("/api/v1/radius/pools", json={"name": make.name("p"), **fields})

    problem(post(family="ipv4", ranges=["2001:db8::/64"]), 422, "ranges[0]")
    problem(post(family="ipv6-pd", ranges=["2001:db8:ffff::/48"]), 422, "prefix_length")
    problem(
        post(family="ipv6-pd", ranges=["2001:db8:fffe::/48"], prefix_length=40), 422, "ranges[0]"
    )
    problem(post(family="ipv4", ranges=["198.51.100.1/24"]), 422, "ranges[0]")
    problem(post(family="ipv4", ranges=[]), 422, "ranges")
    problem(post(family="ipv4", ranges=["198.51.100.0/24", "198.51.100.128/25"]), 422, "ranges[0]")
    problem(post(family="ipv5", ranges=["198.51.100.0/24"]), 422, "family")


def test_pool_overlap_is_409(api: httpx.Client, make: Factory) -> None:
    pool = make.pool()
    network = pool["ranges"][0]
    inner = network.replace(".0/24", ".128/25")
    response = api.post(
        "/api/v1/radius/pools", json={"name": make.name("p"), "family": "ipv4", "ranges": [inner]}
    )
    assert pool["name"] in problem(response, 409, "ranges[0]")["detail"]


def test_pool_used_by_contract_cannot_go(api: httpx.Client, make: Factory) -> None:
    pool = make.pool()
    contract = make.contract(config={"pool_name_ipv4": pool["name"]})
    body = problem(api.delete(f"/api/v1/radius/pools/{pool['id']}"), 409)
    assert contract["number"] in body["detail"]
    problem(api.patch(f"/api/v1/radius/pools/{pool['id']}", json={"name": "renamed"}), 409, "name")
    assert api.delete(f"/api/v1/contracts/{contract['id']}").status_code == 204
    assert api.delete(f"/api/v1/radius/pools/{pool['id']}").status_code == 204
