"""A new database starts with the default manufacturers and layouts, created once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import RunningDaemon, admin_sql, make_settings, start_daemon, stop_daemon
from radius_contracts.aaa.render import render_rows, template_values
from radius_contracts.domain import ConnectionConfig, ContractSnapshot, ContractStatus
from radius_contracts.radius.dictionary import check_value
from radius_contracts.services.defaults import DEFAULT_MANUFACTURERS
from radius_contracts.settings import Settings
from radius_contracts.startup import engine_of, load_catalog, open_services
from support import run_cli  # the CLI as an operator runs it

MANUFACTURERS = {
    "MikroTik": ("Mikrotik", 14988),
    "accel-ppp": ("Accel-PPP", 55999),
    "Cisco": ("Cisco", 9),
    "Huawei": ("Huawei", 2011),
    "Juniper ERX": ("ERX", 4874),
    "WISPr": ("WISPr", 14122),
}
LAYOUTS = {
    "mikrotik-active": ("MikroTik", "active"),
    "mikrotik-suspended": ("MikroTik", "suspended"),
    "accel-ppp-active": ("accel-ppp", "active"),
    "cisco-active": ("Cisco", "active"),
    "huawei-active": ("Huawei", "active"),
    "juniper-erx-active": ("Juniper ERX", "active"),
    "wispr-active": ("WISPr", "active"),
}

SAMPLE = ContractSnapshot(
    id=1,
    number="C-1",
    status=ContractStatus.ACTIVE,
    config=ConnectionConfig(
        username="ana@fiber",
        max_upload="10M",
        max_download="50M",
        pool_name_ipv4="cgnat-1",
        pool_name_ipv6="pd-1",
    ),
)


def _all(api: httpx.Client, path: str, **filters: str) -> list[dict[str, Any]]:
    response = api.get(path, params={"limit": 1000, **filters})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _defaults(api: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    manufacturers = {m["name"]: m for m in _all(api, "/api/v1/manufacturers")}
    layouts = {item["name"]: item for item in _all(api, "/api/v1/radius/layouts")}
    return manufacturers, layouts


def test_new_daemon_has_the_default_manufacturers(api: httpx.Client) -> None:
    manufacturers, _ = _defaults(api)

    for name, (vendor, vendor_id) in MANUFACTURERS.items():
        found = manufacturers[name]
        assert (found["dictionary_vendor"], found["vendor_id"]) == (vendor, vendor_id)
        assert found["active"] is True
        assert found["created_by"] == "system"
        assert found["description"]


def test_new_daemon_has_the_default_layouts(api: httpx.Client) -> None:
    manufacturers, layouts = _defaults(api)

    for name, (manufacturer, purpose) in LAYOUTS.items():
        layout = layouts[name]
        assert layout["manufacturer_id"] == manufacturers[manufacturer]["id"]
        assert layout["purpose"] == purpose
        assert layout["active"] is True
        assert layout["description"]
        assert layout["attributes"]
    assert len(LAYOUTS) == sum(len(m.layouts) for m in DEFAULT_MANUFACTURERS) == 7


def test_defaults_are_audited_as_the_system(api: httpx.Client) -> None:
    entries = _all(api, "/api/v1/audit", entity="layouts", action="create", actor="system")

    assert {e["changes"]["name"] for e in entries} >= set(LAYOUTS)


def test_every_default_layout_renders_for_a_contract(
    api: httpx.Client, daemon: RunningDaemon
) -> None:
    _, layouts = _defaults(api)
    catalog = load_catalog(daemon.settings)
    values = template_values(SAMPLE)

    rendered = {}
    for name in LAYOUTS:
        rows = [(r["attribute"], r["template"]) for r in layouts[name]["attributes"]]
        rendered[name] = render_rows(rows, values)
        assert len(rendered[name]) == len(rows), name  # nothing left out for a full contract
        for attribute, value in rendered[name]:
            spec = catalog.get(attribute)
            assert spec is not None, attribute
            assert check_value(spec, value) is None, (name, attribute, value)

    assert rendered["mikrotik-active"] == [
        ("Mikrotik-Rate-Limit", "10M/50M 0/0 0/0 0/0 8 0/0"),
        ("Framed-Pool", "cgnat-1"),
        ("Mikrotik-Delegated-IPv6-Pool", "pd-1"),
    ]
    assert rendered["mikrotik-suspended"] == [
        ("Mikrotik-Rate-Limit", "256k/256k"),
        ("Mikrotik-Address-List", "suspended"),
        ("Framed-Pool", "cgnat-1"),
    ]
    assert rendered["accel-ppp-active"][0] == ("Filter-Id", "50000/10000")
    assert rendered["cisco-active"][:2] == [
        ("Cisco-AVPair", "qos-policy-in=add-class(sub,(class-default),police(10000000))"),
        ("Cisco-AVPair", "qos-policy-out=add-class(sub,(class-default),police(50000000))"),
    ]
    assert rendered["huawei-active"][:2] == [
        ("Huawei-Input-Average-Rate", "10000000"),
        ("Huawei-Output-Average-Rate", "50000000"),
    ]
    assert rendered["juniper-erx-active"][0] == (
        "ERX-Service-Activate",
        "internet(10000000,50000000)",
    )
    assert rendered["wispr-active"] == [
        ("WISPr-Bandwidth-Max-Up", "10000000"),
        ("WISPr-Bandwidth-Max-Down", "50000000"),
    ]


def test_mikrotik_minimum_speeds_fill_limit_at() -> None:
    rows = next(m for m in DEFAULT_MANUFACTURERS if m.name == "MikroTik").layouts[0].rows
    contract = ContractSnapshot(
        id=2,
        number="C-2",
        status=ContractStatus.ACTIVE,
        config=ConnectionConfig(
            username="u", max_upload="10M", max_download="50M", min_upload="2M", min_download="5M"
        ),
    )

    assert render_rows(rows, template_values(contract))[0] == (
        "Mikrotik-Rate-Limit",
        "10M/50M 0/0 0/0 0/0 8 2M/5M",
    )


# -- first start only ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a database of its own (a scratch PostgreSQL database, or SQLite in tmp)."""
    url = None
    if request.param == "postgres":
        shared = request.getfixturevalue("postgres_url")  # skips when PostgreSQL is unreachable
        base, _, name = shared.rpartition("/")
        scratch = f"{name}_defaults_{secrets.token_hex(3)}"
        url = f"{base}/{scratch}"
        asyncio.run(admin_sql(shared, f'CREATE DATABASE "{scratch}"'))
    yield make_settings(tmp_path / "state", url)
    if url:
        asyncio.run(admin_sql(shared, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))


async def _names(settings: Settings, *, migrate: bool) -> tuple[set[str], set[str]]:
    """Manufacturer and layout names after opening the services as the daemon does."""
    services = await open_services(settings, run_migrations=migrate)
    try:
        manufacturers = await services.manufacturers.page({}, limit=100)
        layouts = await services.layouts.page({}, limit=100)
    finally:
        await engine_of(services).dispose()
    return {m.name for m in manufacturers.items}, {la.name for la in layouts.items}


def test_existing_database_is_not_seeded_again(fresh_settings: Settings) -> None:
    running, thread = start_daemon(fresh_settings)
    try:
        api = running.client(running.admin_token)
        _, layouts = _defaults(api)
        deleted = layouts["huawei-active"]["id"]
        assert api.delete(f"/api/v1/radius/layouts/{deleted}").status_code == 204
    finally:
        stop_daemon(running, thread)

    # A restart on the same state: open_services is what Daemon.start runs first.
    manufacturers, layout_names = asyncio.run(_names(fresh_settings, migrate=True))

    assert layout_names == set(LAYOUTS) - {"huawei-active"}
    assert manufacturers == set(MANUFACTURERS)


def test_migrate_command_seeds_a_new_database(tmp_path: Path) -> None:
    config = tmp_path / "rc.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    result = run_cli("migrate", config=config)
    assert result.returncode == 0, result.stderr

    settings = make_settings(tmp_path / "state", None)
    assert asyncio.run(_names(settings, migrate=False)) == (set(MANUFACTURERS), set(LAYOUTS))
    assert run_cli("migrate", config=config).returncode == 0  # idempotent, nothing added
    assert asyncio.run(_names(settings, migrate=False)) == (set(MANUFACTURERS), set(LAYOUTS))
