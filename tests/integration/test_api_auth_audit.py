"""Tokens and roles, and the audit trail of every write."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
import pytest

from conftest import Factory, RunningDaemon
from radius_contracts.api.app import create_app
from radius_contracts.domain import TokenRole
from radius_contracts.services.base import Actor
from support import problem, run_cli


def test_missing_or_bad_token_is_401(daemon: RunningDaemon) -> None:
    anonymous = daemon.client()
    response = anonymous.get("/api/v1/manufacturers")
    problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    problem(daemon.client("rc_not-a-real-token").get("/api/v1/pops"), 401)
    problem(daemon.client("garbage").get("/api/v1/pops"), 401)
    problem(anonymous.post("/api/v1/pops", json={"name": "x"}), 401)


def test_the_application_checks_the_token_itself_behind_the_guard(daemon: RunningDaemon) -> None:
    """The guard in front checks tokens before bodies are read, but lets a request through
    when the database did not answer it; the application then checks the token again. Called
    here without the guard, the application alone must refuse a missing or bad token."""
    assert daemon.daemon.services is not None
    app = create_app(daemon.daemon.services)

    async def answers() -> list[tuple[int, str | None]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            found = []
            for headers in (
                {},
                {"Authorization": "Bearer rc_not-a-real-token"},
                {"X-API-Key": "garbage"},
                {"Authorization": f"Bearer {daemon.admin_token}"},
            ):
                response = await client.get("/api/v1/pops", headers=headers)
                found.append((response.status_code, response.headers.get("www-authenticate")))
            return found

    assert daemon.run(answers()) == [(401, "Bearer"), (401, "Bearer"), (401, "Bearer"), (200, None)]


def test_x_client_system_is_bounded_and_checked(daemon: RunningDaemon) -> None:
    api = daemon.client(daemon.admin_token)
    fits = "b" * 100
    made = api.post("/api/v1/pops", json={"name": f"pop-{secrets.token_hex(3)}"},
                    headers={"X-Client-System": fits})  # fmt: skip
    assert made.status_code == 201 and made.json()["created_via"] == fits
    for bad in ("b" * 101, "billing system", "bill/ing"):
        refused = api.post("/api/v1/pops", json={"name": f"pop-{secrets.token_hex(3)}"},
                           headers={"X-Client-System": bad})  # fmt: skip
        problem(refused, 422)


def test_x_api_key_header_works(daemon: RunningDaemon) -> None:
    client = daemon.client(**{"X-API-Key": daemon.admin_token})
    assert client.get("/api/v1/pops").status_code == 200


def test_revoked_token_is_refused_on_the_very_next_request(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    """Checks are cached; revoking from another process (the CLI) still takes effect at once,
    and so does revoking in the daemon's own process."""
    tokens = daemon.daemon.services.tokens
    config = tmp_path / "rc.toml"
    url = daemon.settings.database_url
    config.write_text(f'state_dir = "{tmp_path}"\n[database]\nurl = "{url}"\n')
    for revoke_in_cli in (True, False):
        name = f"revoke-me-{secrets.token_hex(4)}"
        _row, token = daemon.run(tokens.create(Actor("test"), name, TokenRole.READ_ONLY))
        client = daemon.client(token)
        for _ in range(3):  # the first check reads the database, the next ones the cache
            assert client.get("/api/v1/pops").status_code == 200
        if revoke_in_cli:
            revoked = run_cli("token", "revoke", name, config=config)
            assert revoked.returncode == 0, revoked.stderr
        else:
            daemon.run(tokens.revoke(Actor("test"), name))
        problem(client.get("/api/v1/pops"), 401)
        problem(client.get("/api/v1/pops"), 401)
    assert daemon.client(daemon.admin_token).get("/api/v1/pops").status_code == 200


def test_read_only_token_cannot_write(readonly_api: httpx.Client, make: Factory) -> None:
    pop = make.pop()
    assert readonly_api.get(f"/api/v1/pops/{pop['id']}").status_code == 200
    problem(readonly_api.post("/api/v1/pops", json={"name": "nope"}), 403)
    problem(readonly_api.patch(f"/api/v1/pops/{pop['id']}", json={"city": "x"}), 403)
    problem(readonly_api.delete(f"/api/v1/pops/{pop['id']}"), 403)
    problem(readonly_api.post(f"/api/v1/pops/{pop['id']}/deactivate"), 403)


def test_audit_records_who_when_and_via_without_secrets(api: httpx.Client, make: Factory) -> None:
    nas = make.nas()
    api.patch(
        f"/api/v1/nas/{nas['id']}",
        json={"secret": "rotated-secret-value"},
        headers={"X-Client-System": "netbox"},
    )
    contract = make.contract(config={"password": "hunter2-password"})
    entries = api.get("/api/v1/audit", params={"entity": "nas", "entity_id": nas["id"]}).json()
    actions = [(e["action"], e["actor"], e["via"]) for e in entries["items"]]
    assert actions == [("update", "admin", "netbox"), ("create", "admin", "api")]
    assert entries["items"][0]["changes"] == {"secret": "***"}
    contract_log = api.get(
        "/api/v1/audit", params={"entity": "contracts", "entity_id": contract["id"]}
    ).text
    assert "hunter2" not in contract_log and "***" in contract_log
    all_text = api.get("/api/v1/audit", params={"limit": 1000}).text
    assert "rotated-secret-value" not in all_text and "s3cret-" not in all_text


def _history(api: httpx.Client, entity: str, row_id: int) -> list[str]:
    params: dict[str, str | int] = {"entity": entity, "entity_id": row_id, "limit": 1000}
    return [e["action"] for e in api.get("/api/v1/audit", params=params).json()["items"]]


@pytest.mark.parametrize("entity", ["nas", "contracts"])
def test_deleted_newest_id_is_never_reused(api: httpx.Client, make: Factory, entity: str) -> None:
    """SQLite would give the next row max(id) + 1 and with it the deleted row's history."""
    create = make.nas if entity == "nas" else make.contract
    newest = create()
    assert api.delete(f"/api/v1/{entity}/{newest['id']}").status_code == 204
    assert _history(api, entity, newest["id"]) == ["delete", "create"]

    again = create()
    assert again["id"] > newest["id"]
    assert _history(api, entity, again["id"]) == ["create"]


WRITE_METHODS = ("post", "put", "patch", "delete")
# The writes a review found unguarded once: the enumeration below must keep finding them.
ONCE_UNGUARDED = {
    ("POST", "/api/v1/contracts/{item_id}/suspend"),
    ("POST", "/api/v1/contracts/bulk/cancel"),
    ("PUT", "/api/v1/contracts/{item_id}/connection"),
    ("PUT", "/api/v1/contracts/by-external/{app}/{external_id}"),
}


def _write_operations(daemon: RunningDaemon) -> list[tuple[str, str]]:
    """Every operation of the API that may change something, as the daemon describes itself."""
    paths = daemon.client().get("/openapi.json").json()["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in WRITE_METHODS and path.startswith("/api/v1/")
    )


def _nothing_there(path: str) -> str:
    """``path`` with every parameter naming nothing that exists: an id past any row, an
    unknown name. A write that wrongly lets the token through then fails without harm."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(2**31 - 1) if name.endswith("id") and name != "external_id" else "no-such-x"

    return re.sub(r"\{([a-z_]+)\}", value, path)


def test_read_only_token_is_refused_on_every_write_route(daemon: RunningDaemon) -> None:
    """Found from /openapi.json, so a route added later is checked without touching this test.

    The refusal comes before the body is validated: ``{}`` fits no write's body.
    """
    operations = _write_operations(daemon)
    assert set(operations) >= ONCE_UNGUARDED and len(operations) >= 40
    reader, admin = daemon.client(daemon.readonly_token), daemon.client(daemon.admin_token)
    let_through, refused_admin = [], []
    for method, path in operations:
        url = _nothing_there(path)
        response = reader.request(method, url, json={})
        if response.status_code != 403 or "read-only" not in response.json()["detail"]:
            let_through.append((method, path, response.status_code))
        # The same request with an admin token passes the role check (and finds nothing):
        # the 403 above is the role's doing.
        if admin.request(method, url, json={}).status_code in (401, 403):
            refused_admin.append((method, path))
    assert let_through == []
    assert refused_admin == []
