"""Inputs that used to get past validation and fail in the database or the response (500s).

Found by fuzzing the API (test_openapi_fuzz) and by probing around what it found; each is now a
422 naming the field, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest

from conftest import Factory
from support import problem


def _post_raw(api: httpx.Client, path: str, body: str) -> httpx.Response:
    """POST a JSON text as is: NaN, lone surrogates and deep nesting cannot go through json=."""
    return api.post(path, content=body, headers={"Content-Type": "application/json"})


def test_nul_in_a_description_is_refused(api: httpx.Client, make: Factory) -> None:
    # PostgreSQL cannot store NUL in text; the description was the one free text not checked.
    problem(api.post("/api/v1/pops", json={"name": make.name("pop"), "description": "a\x00"}),
            422, "description")  # fmt: skip
    pop = make.pop(description="two\nlines\tand a tab\r\n")
    assert pop["description"] == "two\nlines\tand a tab\r\n"
    problem(api.patch(f"/api/v1/pops/{pop['id']}", json={"description": "\x07"}),
            422, "description")  # fmt: skip


def test_customer_external_id_fits_its_column(api: httpx.Client, make: Factory) -> None:
    # The column holds 100 characters; 101..128 passed validation and broke PostgreSQL.
    body = {"number": make.name("C"), "config": {"username": make.name("u")},
            "customer": {"external_id": "x" * 101}}  # fmt: skip
    problem(api.post("/api/v1/contracts", json=body), 422, "customer.external_id")
    contract = make.contract(customer={"external_id": "y" * 100})
    assert contract["customer"]["external_id"] == "y" * 100


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("NaN", "NaN and Infinity"),  # PostgreSQL's json type refuses them
        ("-Infinity", "NaN and Infinity"),
        ('"\\ud800"', "lone surrogates"),  # cannot be encoded as UTF-8 in the response
        ('{"\\udfff": 1}', "lone surrogates"),
        ("[" * 40 + "]" * 40, "nest deeper"),  # overflowed the response serializer
    ],
)
def test_custom_fields_hold_plain_json(
    api: httpx.Client, make: Factory, value: str, why: str
) -> None:
    number, username = make.name("C"), make.name("u")
    for place, field in (("custom_fields", "custom_fields"),
                         ("customer", "customer.custom_fields")):  # fmt: skip
        fields = f'{{"x": {value}}}'
        extra = fields if place == "custom_fields" else f'{{"custom_fields": {fields}}}'
        body = (
            f'{{"number": "{number}", "config": {{"username": "{username}"}}, "{place}": {extra}}}'
        )
        found = problem(_post_raw(api, "/api/v1/contracts", body), 422, field)
        assert why in found["detail"]


def test_ordinary_custom_fields_still_work(make: Factory) -> None:
    fields = {"plan": "Home 100", "vlan": 101, "ratio": 0.5, "tags": ["a", {"b": None}]}
    assert make.contract(custom_fields=fields)["custom_fields"] == fields


def test_speeds_take_ascii_digits_only(api: httpx.Client, make: Factory) -> None:
    # Arabic-Indic "12M" parsed as 12 Mbit/s but would have been sent to the NAS as written.
    body = {
        "number": make.name("C"),
        "config": {"username": make.name("u"), "max_upload": "\u0661\u0662M"},
    }
    problem(api.post("/api/v1/contracts", json=body), 422, "config.max_upload")


def test_unparsable_body_is_a_documented_400(api: httpx.Client) -> None:
    response = api.post(
        "/api/v1/pops", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )
    problem(response, 400)
    spec = api.get("/openapi.json").json()
    assert "400" in spec["paths"]["/api/v1/pops"]["post"]["responses"]


def test_patch_schemas_do_not_offer_null_where_it_is_refused(api: httpx.Client) -> None:
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    number = schemas["ContractUpdate"]["properties"]["number"]
    assert number["type"] == "string" and "anyOf" not in number and "default" not in number
    # Fields that may be cleared keep null.
    assert {"type": "null"} in schemas["ContractUpdate"]["properties"]["end_date"]["anyOf"]
    assert "anyOf" not in schemas["ConnectionConfigPatch"]["properties"]["username"]


def test_text_search_ignores_case(api: httpx.Client, make: Factory) -> None:
    contract = make.contract(customer={"name": "Zé MARTINS-Quaresma"})
    for q in ("martins-quaresma", "MARTINS-QUARESMA", "zé martins"):
        found = api.get("/api/v1/contracts", params={"q": q}).json()
        assert contract["id"] in [item["id"] for item in found["items"]], (q, found)


def test_total_without_a_count_on_the_last_page(api: httpx.Client, make: Factory) -> None:
    tag = make.name("tot")
    ids = [make.contract(customer={"name": f"{tag} {i}"})["id"] for i in range(3)]
    page = api.get("/api/v1/contracts", params={"q": tag, "limit": 2}).json()
    assert (page["total"], len(page["items"])) == (3, 2)
    last = api.get("/api/v1/contracts", params={"q": tag, "limit": 2, "offset": 2}).json()
    assert (last["total"], [i["id"] for i in last["items"]]) == (3, ids[2:])
    past = api.get("/api/v1/contracts", params={"q": tag, "limit": 2, "offset": 5}).json()
    assert (past["total"], past["items"]) == (3, [])
    assert json.dumps(past)  # plain JSON


def _marked(marker: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, body, field): each body invalid in ``field`` by a value holding marker."""
    user = {"username": f"u-{marker[:8]}"}
    nas = {"name": f"n-{marker[:8]}", "address": "192.0.2.1", "manufacturer_id": 1}

    def contract(**config: Any) -> dict[str, Any]:
        return {"number": f"C-{marker[:8]}", "config": {**user, **config}}

    return [
        # Secrets: too long, with a control character.
        ("POST", "/api/v1/contracts", contract(password=f"hunter2{marker}" * 8), "config.password"),
        ("POST", "/api/v1/contracts", contract(password=f"{marker}\x01"), "config.password"),
        ("POST", "/api/v1/nas", {**nas, "secret": f"{marker}\x00"}, "secret"),
        ("PUT", "/api/v1/contracts/by-external/billing/x1",
         {"config": {**user, "password": "p\x7f" + marker}}, "config.password"),
        # Values the validators parse, each refused by a message of its own.
        ("POST", "/api/v1/contracts", contract(mac=marker), "config.mac"),
        ("POST", "/api/v1/contracts", contract(max_download=f"{marker}M"), "config.max_download"),
        ("POST", "/api/v1/contracts", contract(ipv4=marker), "config.ipv4"),
        ("POST", "/api/v1/contracts", contract(ipv6=f"{marker}/64"), "config.ipv6"),
        ("POST", "/api/v1/contracts", {**contract(), "status": marker}, "status"),
        ("POST", "/api/v1/nas", {**nas, "secret": "s3cret-long", "address": marker}, "address"),
        ("POST", "/api/v1/radius/pools",
         {"name": "p", "family": "ipv4", "ranges": [f"{marker}/24"]}, "ranges[0]"),
        ("POST", "/api/v1/pops", {"name": marker * 20}, "name"),
        ("POST", "/api/v1/pops", {"name": "pop", "unknown": marker}, "unknown"),
    ]  # fmt: skip


def test_invalid_input_is_named_never_quoted(api: httpx.Client) -> None:
    """A 422 says which field and why, never with the value sent: a password or secret must
    not come back in a response (or in a client's or proxy's log of it)."""
    marker = "Zq7" + secrets.token_hex(12)
    for method, path, body, field in _marked(marker):
        response = api.request(method, path, json=body)
        problem(response, 422, field)
        assert marker not in response.text, (method, path, field, response.text)


@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        (
            '{"name": "x",\n  "city": "Lisbon"\n  "description": "y"}',
            "line 3, column 3",
            "a comma was expected",
        ),
        ('{"name": "x",}', "line 1, column 14", "a key in double quotes was expected"),
        ("{'name': 'x'}", "line 1, column 2", "a key in double quotes was expected"),
        ('{"name": "x\n"}', "line 1, column 12", "a string holds a raw line break"),
        ('{"name": "x"', "line 1, column 13", "a comma was expected"),
        ('{"name": "x"} {}', "line 1, column 15", "something follows the end"),
        ('{"name": secret-word}', "line 1, column 10", "a value was expected"),
    ],
)
def test_malformed_json_says_where_in_words(
    api: httpx.Client, body: str, where: str, what: str
) -> None:
    # It used to be a 422 with field "[15]": the parser's offset and nothing else.
    found = problem(_post_raw(api, "/api/v1/pops", body), 400, "body")
    assert found["detail"].startswith(f"the body is not valid JSON: {where}: {what}")
    assert "secret-word" not in found["detail"]  # the body is never quoted back
