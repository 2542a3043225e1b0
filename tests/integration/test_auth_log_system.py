"""GET /api/v1/auth-log over real UDP (radclient): every outcome, unknown usernames bounded."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import LO_SECRET as SECRET
from conftest import Factory, RunningDaemon
from radclient import radclient

CLI = [sys.executable, "-m", "radius_contracts"]


def _port(daemon: RunningDaemon) -> int:
    assert daemon.daemon.auth_port is not None
    return daemon.daemon.auth_port


def pap(user: str, password: str) -> str:
    return f'User-Name = "{user}"\nUser-Password = "{password}"\nMessage-Authenticator = 0x00\n'


def _within(seconds: float, probe: Callable[[], Any]) -> Any:
    """``probe()``'s first truthy result within ``seconds``; its last result otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _entries(api: httpx.Client, **params: Any) -> dict[str, Any]:
    response = api.get("/api/v1/auth-log", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def operator_config(daemon: RunningDaemon, tmp_path: Path) -> Path:
    config = tmp_path / "rc.toml"
    config.write_text(
        f'state_dir = "{daemon.settings.state_dir}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = {daemon.daemon.api_port}\n'
    )
    return config


def test_a_wrong_password_and_an_unknown_user_show_within_two_seconds(
    daemon: RunningDaemon,
    lo_nas: dict[str, Any],
    make: Factory,
    readonly_api: httpx.Client,
    operator_config: Path,
) -> None:
    contract = make.contract(config={"password": "right-one"})
    known = contract["config"]["username"]
    stranger = f"typo-{secrets.token_hex(4)}"
    since = datetime.now(UTC).isoformat()
    assert radclient(_port(daemon), SECRET, pap(known, "wrong-one")).code == "Access-Reject"
    assert radclient(_port(daemon), SECRET, pap(stranger, "whatever")).code == "Access-Reject"
    answered = time.monotonic()

    def both() -> dict[str, dict[str, Any]]:
        items = _entries(readonly_api, result="reject", nas_id=lo_nas["id"], since=since)["items"]
        found = {e["username"]: e for e in items if e["username"] in (known, stranger)}
        return found if len(found) == 2 else {}

    found = _within(2.0, both)
    assert time.monotonic() - answered < 2.5  # the probe's own HTTP time on a loaded host
    assert set(found) == {known, stranger}, found
    assert found[known]["reason"] == "wrong password"
    assert found[known]["contract_id"] == contract["id"]
    assert found[stranger]["reason"] == "unknown user"
    assert found[stranger]["contract_id"] is None and found[stranger]["count"] == 1
    assert found[stranger]["nas_id"] == lo_nas["id"] and found[stranger]["method"] == "pap"

    # The operator CLI reads the same endpoint.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    out = subprocess.run(
        [*CLI, "auth-log", "--rejects", "--since", since, "--config", str(operator_config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    ).stdout
    assert stranger in out and known in out
    assert "unknown user" in out and "wrong password" in out


def test_filters_combine(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "pw-filters"})
    user = contract["config"]["username"]
    since = datetime.now(UTC).isoformat()
    assert radclient(_port(daemon), SECRET, pap(user, "pw-filters")).code == "Access-Accept"
    assert radclient(_port(daemon), SECRET, pap(user, "nope")).code == "Access-Reject"
    _within(3.0, lambda: _entries(api, username=user)["total"] == 2)

    assert [e["result"] for e in _entries(api, username=user)["items"]] == ["reject", "accept"]
    assert _entries(api, username=user, result="accept")["total"] == 1
    assert _entries(api, contract_id=contract["id"], reason="WRONG")["total"] == 1
    assert _entries(api, username=user, nas_id=lo_nas["id"], since=since)["total"] == 2
    assert _entries(api, username=user, until=since)["total"] == 0
    assert _entries(api, username=user.upper())["total"] == 0  # as sent: exact
    paged = _entries(api, username=user, limit=1, offset=1)
    assert (paged["total"], [e["result"] for e in paged["items"]]) == (2, ["accept"])
    out_of_range = {"since": "0001-01-01T00:00:00+05:00"}  # year 0 in UTC
    for bad in ({"nas_id": "x"}, {"since": "yesterday"}, {"result": "maybe"}, {"limit": 0},
                out_of_range):  # fmt: skip
        response = api.get("/api/v1/auth-log", params=bad)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert next(iter(bad)) in response.text


def test_anyone_with_a_token_may_read_it_and_no_one_without(daemon: RunningDaemon) -> None:
    anonymous = httpx.get(f"{daemon.base_url}/api/v1/auth-log", timeout=10)
    assert anonymous.status_code == 401


@pytest.fixture
def small_cap(daemon: RunningDaemon) -> Iterator[int]:
    """The shared daemon with unknown_rows_per_minute = 50, as after a reload."""
    assert daemon.daemon.services is not None
    bound = daemon.daemon.services.auth_log.bound
    before, bound.per_minute = bound.per_minute, 50
    yield 50
    bound.per_minute = before


def _radclient_many(daemon: RunningDaemon, requests: list[str]) -> None:
    """Send every request over UDP with FreeRADIUS's radclient, 100 in flight at a time."""
    binary = shutil.which("radclient")
    if binary is None:
        pytest.fail("radclient is missing: scripts/test.sh installs freeradius-utils")
    subprocess.run(
        [binary, "-q", "-p", "100", "-r", "1", "-t", "5",
         f"127.0.0.1:{_port(daemon)}", "auth", SECRET],
        input="\n".join(requests),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # rejects make radclient exit 1
    )  # fmt: skip


def test_random_unknown_usernames_leave_a_bounded_number_of_rows(
    daemon: RunningDaemon, lo_nas: dict[str, Any], api: httpx.Client, small_cap: int
) -> None:
    tag = secrets.token_hex(3)
    names = [f"brute-{tag}-{n:05d}" for n in range(2000)]
    since = datetime.now(UTC).isoformat()
    _radclient_many(daemon, [pap(name, "guess") for name in names])

    def rows() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for offset in range(0, 10_000, 1000):
            page = _entries(api, nas_id=lo_nas["id"], reason="unknown user", since=since,
                            offset=offset)  # fmt: skip
            items += page["items"]
            if len(page["items"]) < 1000:
                return items
        return items

    mine = _within(10.0, lambda: (r := rows()) and sum(e["count"] for e in r) >= 2000 and r)
    assert mine, "the 2,000 outcomes were not all written within 10 s"
    minutes = {e["at"][:16] for e in mine}  # rows of one minute share its first 16 characters
    named = [e for e in mine if e["username"] is not None]
    folded = [e for e in mine if e["username"] is None]
    assert {e["username"] for e in named} <= set(names)
    assert sum(e["count"] for e in mine) == 2000  # every request is counted, none twice
    # At most the cap of named rows per minute, then one row for the rest of that minute.
    assert len(named) <= small_cap * len(minutes)
    assert len(folded) <= len(minutes)
    assert len(mine) <= (small_cap + 1) * len(minutes) <= 2 * (small_cap + 1)
    assert all(e["count"] == 1 for e in named)  # each name came once


def test_one_unknown_name_repeated_is_one_row_with_a_count(
    daemon: RunningDaemon, lo_nas: dict[str, Any], api: httpx.Client
) -> None:
    name = f"again-{secrets.token_hex(4)}"
    _radclient_many(daemon, [pap(name, "guess")] * 5)

    def counted() -> list[dict[str, Any]]:
        items = _entries(api, username=name)["items"]
        return items if sum(e["count"] for e in items) >= 5 else []

    rows = _within(5.0, counted)
    assert sum(e["count"] for e in rows) == 5
    assert 1 <= len(rows) <= 2  # two only when the five straddle a minute
