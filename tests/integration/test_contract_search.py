"""?q= on contracts: a case-insensitive substring of number, username, customer name or id.

On SQLite a trigram FTS5 table finds the candidates and on PostgreSQL pg_trgm indexes do
(db.search); the answers must stay those of a plain substring scan, through every write path.
"""

from __future__ import annotations

import httpx

from conftest import Factory


def _found(api: httpx.Client, q: str) -> list[int]:
    response = api.get("/api/v1/contracts", params={"q": q, "limit": 200})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_search_follows_creates_updates_and_deletes(api: httpx.Client, make: Factory) -> None:
    tag = make.name("srch")
    contract = make.contract(customer={"name": f"{tag} Ana Gonçalves"})
    assert _found(api, tag) == [contract["id"]]
    assert _found(api, f"{tag} ANA GONÇ".upper().replace("Ç", "ç")) == [contract["id"]]
    api.patch(f"/api/v1/contracts/{contract['id']}", json={"customer": {"name": "Rui Sousa"}})
    assert _found(api, tag) == []
    api.patch(f"/api/v1/contracts/{contract['id']}", json={"number": f"{tag}-N"})
    assert _found(api, f"{tag}-n") == [contract["id"]]
    assert api.delete(f"/api/v1/contracts/{contract['id']}").status_code == 204
    assert _found(api, tag) == []
    again = make.contract(number=f"{tag}-N")
    assert _found(api, tag) == [again["id"]]


def test_search_by_every_column_and_awkward_text(api: httpx.Client, make: Factory) -> None:
    tag = make.name("odd")
    plain = make.contract(customer={"name": f'{tag} 100% _x_ "quoted" o\'brien'})
    by_username = make.contract(config={"username": f"{tag}.user@isp"})
    by_customer = make.contract(customer={"external_id": f"{tag}-CUST"})
    bulk_id = make.name("bulk-srch")
    bulk = api.put(
        "/api/v1/contracts/by-external/billing",
        json=[{"external_id": bulk_id, "number": f"{bulk_id}-C", "config": {"username": bulk_id}}],
    ).json()["results"][0]["id"]
    assert _found(api, tag) == [plain["id"], by_username["id"], by_customer["id"]]
    assert _found(api, f"{tag} 100%") == [plain["id"]]
    assert _found(api, "100% _x_") == [plain["id"]]  # % and _ are literal
    assert _found(api, '"quoted"') == [plain["id"]]  # quotes are literal
    assert _found(api, "o'brien") == [plain["id"]]
    assert _found(api, f"{tag}.USER@") == [by_username["id"]]
    assert _found(api, f"{tag}-cust") == [by_customer["id"]]
    assert _found(api, bulk_id.upper()) == [bulk]
    assert plain["id"] in _found(api, "_x")  # under 3 characters: scanned, same answer
