"""Every way of writing a contract stores the same contract for the same body.

A billing system may create through POST or through the by-external upsert, and correct a
contract later with the upsert or PATCH: none of them may fill in a different default (the
upsert once stored simultaneous_use null, unlimited, where POST stored 1).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conftest import Factory

Body = dict[str, Any]
# Values only one contract may hold: each path's body gets its own, checked then masked.
UNIQUE_CONFIG = ("username", "ipv4", "ipv6", "delegated_ipv6_prefix")


def _unique() -> Body:
    n = secrets.randbelow(2**16)
    return {
        "number": f"C-paths-{secrets.token_hex(4)}",
        "config": {"username": f"paths-{secrets.token_hex(4)}"},
        "ipv4": f"198.18.{n >> 8}.{n & 0xFF}",
        "ipv6": f"2001:db8:{n:x}:1::/64",
        "delegated": f"2001:db8:{n:x}:100::/56",
    }


def _minimal(_pools: dict[str, str]) -> Body:
    u = _unique()
    return {"number": u["number"], "config": u["config"]}


def _full(pools: dict[str, str]) -> Body:
    u = _unique()
    return {
        "number": u["number"],
        "status": "suspended",
        "start_date": "2026-01-01",
        "end_date": "2027-06-30",
        "auto_extend": True,
        "customer": {"external_id": "cust-7", "name": "Ana Silva", "custom_fields": {"vip": 1}},
        "custom_fields": {"plan": "fiber-50", "tags": ["a", "b"]},
        "config": {
            **u["config"],
            "password": "pw-" + secrets.token_hex(6),
            "min_upload": "1M",
            "max_upload": "10M",
            "min_download": "5M",
            "max_download": "50M",
            "pool_name_ipv4": pools["ipv4"],
            "ipv4": u["ipv4"],
            "pool_name_ipv6": pools["ipv6"],
            "ipv6": u["ipv6"],
            "delegated_ipv6_prefix": u["delegated"],
            "mac": "aa-bb-cc-00-11-22",
            "simultaneous_use": 3,
        },
    }


def _nulls(_pools: dict[str, str]) -> Body:
    """Every nullable field sent as null: stored as null (unlimited sessions), not defaulted."""
    u = _unique()
    config = dict.fromkeys(
        ("password", "min_upload", "max_upload", "min_download", "max_download", "pool_name_ipv4",
         "ipv4", "pool_name_ipv6", "ipv6", "delegated_ipv6_prefix", "mac", "simultaneous_use"),
    )  # fmt: skip
    return {
        "number": u["number"],
        "start_date": None,
        "end_date": None,
        "customer": {"external_id": None, "name": None},
        "config": {**u["config"], **config},
    }


def _partial(_pools: dict[str, str]) -> Body:
    """Some of the nested objects only: the rest of each gets its defaults."""
    u = _unique()
    return {
        "number": u["number"],
        "customer": {"name": "Bo"},
        "config": {**u["config"], "max_download": "100M"},
    }


BODIES: dict[str, Callable[[dict[str, str]], Body]] = {
    "minimal": _minimal,
    "full": _full,
    "nulls": _nulls,
    "partial": _partial,
}


def _ok(response: httpx.Response, *codes: int) -> Body:
    assert response.status_code in codes, response.text
    body: Body = response.json()
    return body


def _post(api: httpx.Client, body: Body) -> Body:
    return _ok(api.post("/api/v1/contracts", json=body), 201)


def _upsert(api: httpx.Client, external_id: str, body: Body, code: int) -> Body:
    return _ok(api.put(f"/api/v1/contracts/by-external/billing/{external_id}", json=body), code)


def via_post(api: httpx.Client, body: Body) -> Body:
    return _post(api, body)


def via_upsert_create(api: httpx.Client, body: Body) -> Body:
    return _upsert(api, secrets.token_hex(6), body, 201)


def via_upsert_update(api: httpx.Client, body: Body) -> Body:
    external_id = secrets.token_hex(6)
    _upsert(api, external_id, _minimal({}), 201)
    return _upsert(api, external_id, body, 200)


def _bulk(api: httpx.Client, external_id: str, body: Body, code: int) -> Body:
    """The body as the one item of a bulk upsert; the contract as GET returns it."""
    answer = _ok(api.put("/api/v1/contracts/by-external/billing", json=[
        {**body, "external_id": external_id}]), 200)  # fmt: skip
    (outcome,) = answer["results"]
    assert (outcome["index"], outcome["status"]) == (0, code), outcome
    return _ok(api.get(f"/api/v1/contracts/{outcome['id']}"), 200)


def via_bulk_create(api: httpx.Client, body: Body) -> Body:
    return _bulk(api, secrets.token_hex(6), body, 201)


def via_bulk_update(api: httpx.Client, body: Body) -> Body:
    external_id = secrets.token_hex(6)
    _bulk(api, external_id, _minimal({}), 201)
    return _bulk(api, external_id, body, 200)


def via_patch(api: httpx.Client, body: Body) -> Body:
    created = _post(api, _minimal({}))
    return _ok(api.patch(f"/api/v1/contracts/{created['id']}", json=body), 200)


PATHS: dict[str, Callable[[httpx.Client, Body], Body]] = {
    "POST": via_post,
    "upsert-create": via_upsert_create,
    "upsert-update": via_upsert_update,
    "bulk-create": via_bulk_create,
    "bulk-update": via_bulk_update,
    "PATCH": via_patch,
}


def _stored(api: httpx.Client, written: Body, body: Body) -> Body:
    """The contract as GET returns it, without what differs by construction: its identity,
    timestamps, external references (the upsert adds its own) and the values only one
    contract may hold (checked against the body here)."""
    stored = _ok(api.get(f"/api/v1/contracts/{written['id']}"), 200)
    assert stored == written  # the write's answer is what was stored
    for key in ("id", "number", "external_refs", "created_at", "created_by", "created_via",
                "updated_at", "updated_by", "updated_via"):  # fmt: skip
        stored.pop(key)
    for key in UNIQUE_CONFIG:
        if key in body["config"]:
            assert stored["config"][key] == body["config"][key], key
        stored["config"][key] = "<unique>"
    return stored


def _differences(got: Body, expected: Body, prefix: str = "") -> dict[str, Any]:
    """{field path: (got, expected)} for every field that differs, nested ones by path."""
    found: dict[str, Any] = {}
    for key in sorted(got.keys() | expected.keys()):
        a, b = got.get(key, "<missing>"), expected.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict) and key != "custom_fields":
            found |= _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found[prefix + key] = (a, b)
    return found


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_same_body_same_contract_on_every_write_path(
    api: httpx.Client, make: Factory, kind: str
) -> None:
    """Update paths start from a contract created with the minimal body: what the body leaves
    out keeps the value a create gave it, so every path must end where POST does."""
    pools = {"ipv4": make.pool()["name"], "ipv6": make.pool(family="ipv6")["name"]}
    results = {}
    for path, write in PATHS.items():
        body = BODIES[kind](pools)
        results[path] = _stored(api, write(api, body), body)
    expected = results.pop("POST")
    for path, stored in results.items():
        assert _differences(stored, expected) == {}, f"{path} (got, POST's) for a {kind} body"


def test_replacing_the_connection_gives_a_new_contracts_config(
    api: httpx.Client, make: Factory
) -> None:
    """PUT /connection clears what it leaves out back to what a new contract would have."""
    pools = {"ipv4": make.pool()["name"], "ipv6": make.pool(family="ipv6")["name"]}
    for kind, build in sorted(BODIES.items()):
        body, same_shape = build(pools), build(pools)  # the unique values differ
        posted = _stored(api, via_post(api, body), body)
        full = make.contract(config=_full(pools)["config"])
        url = f"/api/v1/contracts/{full['id']}/connection"
        replaced = _ok(api.put(url, json=same_shape["config"]), 200)
        for key in UNIQUE_CONFIG:
            replaced["config"][key] = "<unique>"
        assert _differences(replaced["config"], posted["config"]) == {}, kind
