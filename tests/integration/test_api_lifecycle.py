"""Every standard resource answers the same lifecycle the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conftest import Factory
from support import problem

RESOURCES: dict[str, tuple[str, Callable[[Factory], dict[str, Any]]]] = {
    "manufacturers": ("manufacturers", lambda make: make.manufacturer()),
    "pops": ("pops", lambda make: make.pop()),
    "nas": ("nas", lambda make: make.nas()),
    "pools": ("radius/pools", lambda make: make.pool()),
    "layouts": ("radius/layouts", lambda make: make.layout()),
}


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_standard_lifecycle(api: httpx.Client, make: Factory, resource: str) -> None:
    path, create = RESOURCES[resource]
    item = create(make)
    url = f"/api/v1/{path}/{item['id']}"
    assert api.get(url).json() == item

    changed = api.patch(url, json={"description": "edited by test"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] == "edited by test"
    assert changed.json()["updated_at"] >= item["updated_at"]

    assert api.post(f"{url}/deactivate").json()["active"] is False
    inactive = api.get(f"/api/v1/{path}", params={"active": False, "limit": 1000}).json()
    assert item["id"] in [i["id"] for i in inactive["items"]]
    assert api.post(f"{url}/activate").json()["active"] is True

    problem(api.patch(url, json={"no_such_field": 1}), 422, "no_such_field")
    problem(api.patch(url, json={"active": None}), 422)

    assert api.delete(url).status_code == 204
    problem(api.get(url), 404)
    problem(api.patch(url, json={"description": "x"}), 404)
    problem(api.post(f"{url}/activate"), 404)


def test_attribute_get_and_toggle(api: httpx.Client) -> None:
    listed = api.get("/api/v1/radius/attributes", params={"q": "Framed-MTU"}).json()["items"]
    attribute = next(a for a in listed if a["name"] == "Framed-MTU")
    url = f"/api/v1/radius/attributes/{attribute['id']}"
    assert api.get(url).json()["code"] == 12
    assert api.post(f"{url}/deactivate").json()["active"] is False
    body = {
        "name": "framed-mtu-user",
        "attributes": [{"attribute": "Framed-MTU", "template": "1492"}],
    }
    problem(api.post("/api/v1/radius/layouts", json=body), 422, "attributes[0].attribute")
    assert api.post(f"{url}/activate").json()["active"] is True
