"""import-freeradius against a FreeRADIUS rlm_sql SQLite database, run as an operator would."""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import admin_sql, make_settings, start_daemon, stop_daemon
from radius_client import RadiusClient
from radius_contracts.services import import_freeradius as fr
from radius_contracts.settings import load_settings
from radius_contracts.startup import engine_of, open_services

CLI = [sys.executable, "-m", "radius_contracts"]

# The rlm_sql SQLite schema (raddb/mods-config/sql/main/sqlite/schema.sql), tables we read.
SCHEMA = """
CREATE TABLE nas (id INTEGER PRIMARY KEY, nasname TEXT NOT NULL, shortname TEXT,
  type TEXT DEFAULT 'other', ports INTEGER, secret TEXT NOT NULL DEFAULT 'secret',
  server TEXT, community TEXT, description TEXT DEFAULT 'RADIUS Client');
CREATE TABLE radcheck (id INTEGER PRIMARY KEY, username TEXT NOT NULL DEFAULT '',
  attribute TEXT NOT NULL DEFAULT '', op TEXT NOT NULL DEFAULT '==',
  value TEXT NOT NULL DEFAULT '');
CREATE TABLE radreply (id INTEGER PRIMARY KEY, username TEXT NOT NULL DEFAULT '',
  attribute TEXT NOT NULL DEFAULT '', op TEXT NOT NULL DEFAULT '=',
  value TEXT NOT NULL DEFAULT '');
CREATE TABLE radgroupcheck (id INTEGER PRIMARY KEY, groupname TEXT NOT NULL DEFAULT '',
  attribute TEXT NOT NULL DEFAULT '', op TEXT NOT NULL DEFAULT '==',
  value TEXT NOT NULL DEFAULT '');
CREATE TABLE radgroupreply (id INTEGER PRIMARY KEY, groupname TEXT NOT NULL DEFAULT '',
  attribute TEXT NOT NULL DEFAULT '', op TEXT NOT NULL DEFAULT '=',
  value TEXT NOT NULL DEFAULT '');
CREATE TABLE radusergroup (id INTEGER PRIMARY KEY, username TEXT NOT NULL DEFAULT '',
  groupname TEXT NOT NULL DEFAULT '', priority INTEGER NOT NULL DEFAULT 1);
"""

NAS = [
    ("10.0.0.1", "gw-mikrotik", "mikrotik", "nas-secret-1"),
    ("10.0.1.0/24", "bras-cisco", "cisco", "nas-secret-2"),
    ("192.0.2.7", None, "other", "nas-secret-3"),
    ("bras.example.net", "by-name", "juniper", "nas-secret-4"),
]
RADCHECK = [
    ("alice", "Cleartext-Password", ":=", "alice-pass-1"),
    ("alice", "Simultaneous-Use", ":=", "2"),
    ("bob", "Cleartext-Password", ":=", "bob-pass-2"),
    ("carol", "Crypt-Password", ":=", "$1$abc$hashhashhash"),
    ("dave", "Cleartext-Password", "==", "dave-pass-3"),
    ("erin", "Cleartext-Password", ":=", "erin-pass-4"),  # no Simultaneous-Use: no limit
]
RADREPLY = [
    ("alice", "Mikrotik-Rate-Limit", "=", "10M/20M"),
    ("alice", "Framed-IP-Address", "=", "100.64.0.10"),
    ("dave", "Session-Timeout", "=", "3600"),
]
RADUSERGROUP = [("alice", "gold", 1), ("bob", "gold", 1), ("bob", "basic", 5), ("dave", "basic", 1)]
RADGROUPCHECK = [("basic", "Simultaneous-Use", ":=", "1")]
RADGROUPREPLY = [
    ("gold", "Mikrotik-Rate-Limit", "=", "50M/100M 0/0 0/0 0/0 8 5M/10M"),
    ("basic", "Mikrotik-Rate-Limit", "=", "1M/2M"),
]
SECRETS = [
    "nas-secret-1", "nas-secret-2", "nas-secret-3", "alice-pass-1", "bob-pass-2", "erin-pass-4"
]  # fmt: skip


def freeradius_db(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        db.executemany(
            "INSERT INTO nas (nasname, shortname, type, secret) VALUES (?, ?, ?, ?)", NAS
        )
        for table, rows in (
            ("radcheck", RADCHECK),
            ("radreply", RADREPLY),
            ("radgroupcheck", RADGROUPCHECK),
            ("radgroupreply", RADGROUPREPLY),
        ):
            owner = "groupname" if table.startswith("radgroup") else "username"
            db.executemany(
                f"INSERT INTO {table} ({owner}, attribute, op, value) VALUES (?, ?, ?, ?)", rows
            )
        db.executemany(
            "INSERT INTO radusergroup (username, groupname, priority) VALUES (?, ?, ?)",
            RADUSERGROUP,
        )
    db.close()
    return path


def run(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    return subprocess.run(
        [*CLI, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "rc.toml"
    path.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "rc.db"}"\n'
    )
    assert run("migrate", config=path).returncode == 0
    return path


def snapshot(config: Path) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        services = await open_services(load_settings(config), run_migrations=False)
        try:
            contracts = (await services.contracts.page({}, limit=100)).items
            nas = (await services.nas.page({}, limit=100)).items
            makers = (await services.manufacturers.page({}, limit=100)).items
            manufacturers = {m.id: m.name for m in makers}
            return {
                "contracts": {c.number: c for c in contracts},
                "nas": {n.name: (n.address, manufacturers[n.manufacturer_id]) for n in nas},
                "coa_identifiers": {m.name: m.coa_identifiers for m in makers},
            }
        finally:
            await engine_of(services).dispose()

    return asyncio.run(read())


def test_dry_run_import_and_rerun(tmp_path: Path, config: Path) -> None:
    url = f"sqlite:///{freeradius_db(tmp_path / 'fr.db')}"

    dry = run("import-freeradius", "--url", url, "--dry-run", config=config)
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout
    assert "would create NAS gw-mikrotik: address 10.0.0.1, manufacturer MikroTik" in out
    assert "would create NAS bras-cisco: address 10.0.1.0/24, manufacturer Cisco" in out
    assert "would create NAS 192.0.2.7: address 192.0.2.7, manufacturer Generic" in out
    assert "would create manufacturer Generic" in out
    assert "skipped: NAS by-name: nasname: 'bras.example.net' is not an IP or CIDR" in out
    assert "would create contract fr-alice (active): username alice, password ***" in out
    assert "skipped: user carol: Cleartext-Password: no usable password" in out
    assert "cannot map: user carol: Crypt-Password" in out
    assert "cannot map: user dave: Session-Timeout: reply attribute not mapped" in out
    assert "burst, priority and limit-at not mapped" in out  # bob's gold group
    for secret in SECRETS:
        assert secret not in out and secret not in dry.stderr
    before = snapshot(config)
    assert before["contracts"] == {} and "gw-mikrotik" not in before["nas"]

    real = run("import-freeradius", "--url", url, config=config)
    assert real.returncode == 0, real.stderr
    assert "created 3 NAS and 4 contracts" in real.stdout
    for secret in SECRETS:
        assert secret not in real.stdout
    after = snapshot(config)
    assert after["nas"]["gw-mikrotik"] == ("10.0.0.1", "MikroTik")
    assert after["nas"]["bras-cisco"] == ("10.0.1.0/24", "Cisco")
    assert after["nas"]["192.0.2.7"] == ("192.0.2.7", "Generic")
    contracts = after["contracts"]
    assert set(contracts) == {"fr-alice", "fr-bob", "fr-dave", "fr-erin"}
    alice, bob, dave = contracts["fr-alice"], contracts["fr-bob"], contracts["fr-dave"]
    # The user's own rate limit beats the group's; bob's lowest-priority-number group wins.
    assert (alice.password, alice.max_upload, alice.max_download) == ("alice-pass-1", "10M", "20M")
    assert (alice.ipv4, alice.simultaneous_use, alice.status) == ("100.64.0.10", 2, "active")
    assert (bob.max_upload, bob.max_download, bob.simultaneous_use) == ("50M", "100M", 1)
    assert (dave.password, dave.max_upload, dave.simultaneous_use) == ("dave-pass-3", "1M", 1)
    assert contracts["fr-erin"].simultaneous_use is None  # unlimited, as FreeRADIUS had it
    # The manufacturer the import creates takes CoA like one created through the API.
    assert after["coa_identifiers"]["Generic"] == ["User-Name", "Acct-Session-Id"]

    again = run("import-freeradius", "--url", url, config=config)
    assert again.returncode == 0, again.stderr
    assert "created 0 NAS and 0 contracts" in again.stdout
    assert "skipped: user alice: number: fr-alice already exists" in again.stdout
    assert "skipped: NAS gw-mikrotik: name: already exists" in again.stdout
    assert snapshot(config)["contracts"].keys() == contracts.keys()


@pytest.mark.parametrize("kind", ["missing-file", "no-tables", "bad-scheme"])
def test_unusable_source_exits_2(tmp_path: Path, config: Path, kind: str) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    url = {
        "missing-file": f"sqlite:///{tmp_path / 'nope.db'}",
        "no-tables": f"sqlite:///{empty}",
        "bad-scheme": "mysql://root@localhost/radius",
    }[kind]
    result = run("import-freeradius", "--url", url, config=config)
    assert result.returncode == 2
    assert "radius-contracts: error:" in result.stderr
    assert not (tmp_path / "nope.db").exists()


def test_rate_limit_parsing() -> None:
    assert fr.parse_rate_limit("10M/20M") == (("10M", "20M"), "")
    assert fr.parse_rate_limit("512k") == (("512k", "512k"), "")
    speeds, rest = fr.parse_rate_limit("2M/4M 4M/8M 1M/2M 10/10 8")
    assert speeds == ("2M", "4M") and "burst" in rest
    assert fr.parse_rate_limit("fast/slow")[0] is None


def test_framed_pool_and_reject_mapping() -> None:
    data = fr.FrData(
        radcheck=[
            fr.FrItem("erin", "Cleartext-Password", ":=", "pw"),
            fr.FrItem("erin", "Auth-Type", ":=", "Reject"),
        ],
        radreply=[
            fr.FrItem("erin", "Framed-Pool", "=", "cgnat"),
            fr.FrItem("erin", "Framed-IP-Address", "=", "255.255.255.254"),
        ],
    )
    plan = fr.plan_import(data)
    (contract,) = plan.contracts
    assert contract.status == "inactive" and contract.config["pool_name_ipv4"] == "cgnat"
    assert "ipv4" not in contract.config
    assert {issue.attribute for issue in plan.issues} == {"Auth-Type", "Framed-IP-Address"}


@pytest.mark.postgres
def test_a_running_daemon_uses_imported_contracts_at_once(
    tmp_path: Path, postgres_url: str
) -> None:
    """On PostgreSQL the import announces what it created on the change feed: a daemon running
    on the same database authenticates the imported users without a restart or reload."""
    name = f"rc_import_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(postgres_url, f'CREATE DATABASE "{name}"'))
    url = f"{postgres_url.rpartition('/')[0]}/{name}"
    try:
        running, thread = start_daemon(make_settings(tmp_path / "state", url))
        try:
            config = tmp_path / "rc.toml"
            config.write_text(f'state_dir = "{tmp_path / "cli"}"\n[database]\nurl = "{url}"\n')
            source = freeradius_db(tmp_path / "fr.db")
            with sqlite3.connect(source) as db:  # a NAS the test can send from
                db.execute(
                    "INSERT INTO nas (nasname, shortname, type, secret) "
                    "VALUES ('127.0.0.61', 'lo-import', 'mikrotik', 'import-lo-secret')"
                )
            db.close()
            port = running.daemon.auth_port
            assert port is not None
            with RadiusClient(port, "import-lo-secret", source="127.0.0.61", timeout=1) as nas:
                assert nas.exchange(nas.access_request("alice", "alice-pass-1")) is None
                result = run("import-freeradius", "--url", f"sqlite:///{source}", config=config)
                assert result.returncode == 0, result.stderr
                deadline = time.monotonic() + 2  # the limit for changes made on another node
                while (reply := nas.exchange(nas.access_request("alice", "alice-pass-1"))) is None:
                    assert time.monotonic() < deadline, "the import did not reach the daemon"
            assert reply.accepted
        finally:
            stop_daemon(running, thread)
    finally:
        asyncio.run(admin_sql(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
