"""SIGHUP against `radius-contracts serve` as a child process: real signals, real radclient.

A reload under load loses no request; a broken config or dictionary keeps the running set and
says which file is wrong; a fixed one applies; NAS added behind the daemon's back count after
the reload and not before.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import Factory, add_nas
from radius_client import RadiusClient
from radius_contracts.radius import codec
from radius_contracts.settings import default_dictionary
from served import Served
from support import base_config, radius_section

SECRET = "reload-nas-secret"
AUTH_REQUESTS = 6000
ACCT_REQUESTS = 4000


def write_config(path: Path, base: str, extra: str = "") -> None:
    """The config file: ``base`` (state, ports, database) and ``extra`` TOML sections."""
    path.write_text(base + extra)


def api_client(served: Served, tmp_path: Path) -> httpx.Client:
    token = (tmp_path / "state" / "admin-token").read_text().strip()
    return httpx.Client(
        base_url=served.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def wait_for_log(log: Path, text: str, count: int = 1, timeout: float = 20.0) -> str:
    """The log once ``text`` appears in it ``count`` times (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        content = log.read_text()
        if content.count(text) >= count:
            return content
        assert time.monotonic() < deadline, f"{text!r} x{count} not logged:\n{content[-3000:]}"
        time.sleep(0.05)


def stop(served: Served) -> int:
    if served.process.poll() is None:
        served.process.send_signal(signal.SIGTERM)
    try:
        return served.process.wait(30)
    except subprocess.TimeoutExpired:
        served.process.kill()
        raise


# -- (1) reloads under radclient load --------------------------------------------------------


def _radclient_file(path: Path, entries: list[str]) -> Path:
    path.write_text("\n".join(entries))
    return path


def _run_radclient(
    port: int, command: str, requests: Path, per_second: int
) -> subprocess.Popen[str]:
    binary = shutil.which("radclient")
    if binary is None:
        pytest.fail("radclient is missing: scripts/test.sh installs freeradius-utils")
    # Each request names the reply it must get (Response-Packet-Type); -s sums them up. -n
    # paces the load, so that it lasts long enough for the SIGHUPs on a fast machine too
    # (unpaced, a quiet 2-core VM answered it all in under a second).
    argv = [binary, "-q", "-s", "-p", "32", "-r", "3", "-t", "2", "-n", str(per_second)]
    argv += ["-f", str(requests)]
    return subprocess.Popen(
        [*argv, f"127.0.0.1:{port}", command, SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _summary(output: str) -> dict[str, int]:
    """radclient -s totals: Sent, Received, Lost, and Passed/Failed against the expected code."""
    totals: dict[str, int] = {}
    for line in output.splitlines():
        name, _, value = line.partition(":")
        if value.strip().isdigit():
            totals[name.strip()] = int(value)
    return totals


def test_reloads_under_load_lose_no_request(tmp_path: Path, database_url: str | None) -> None:
    base, ports = base_config(tmp_path, database_url)
    config = tmp_path / "rc.toml"
    quiet = radius_section(ports, reject_delay=0.0, reply_message=False)
    chatty = radius_section(ports, reject_delay=0.0, reply_message=True, duplicate_window=6.0)
    write_config(config, base, quiet)
    log = tmp_path / "serve.log"
    served = Served(config, ports["api"], log)
    try:
        with api_client(served, tmp_path) as api:
            add_nas(api, SECRET)
            make = Factory(api)
            # Unlimited simultaneous use: every accept of the load would count as a login.
            contracts = [
                make.contract(config={"password": f"pw-{n}", "simultaneous_use": None})
                for n in range(6)
            ]
        users = [(c["config"]["username"], f"pw-{n}") for n, c in enumerate(contracts)]
        auth_entries = []
        for n in range(AUTH_REQUESTS):
            user, password = users[n % len(users)]
            expect = "Access-Accept"
            if n % 3 == 0:
                password, expect = f"wrong-{n}", "Access-Reject"  # a third are rejected
            auth_entries.append(
                f'User-Name = "{user}"\nUser-Password = "{password}"\n'
                f"Message-Authenticator = 0x00\nResponse-Packet-Type = {expect}\n"
            )
        acct_entries = [
            f'Acct-Status-Type = Start\nAcct-Session-Id = "RL-{n}"\n'
            f'User-Name = "{users[n % len(users)][0]}"\nNAS-Port = {n}\n'
            for n in range(ACCT_REQUESTS)
        ]
        auth_file = _radclient_file(tmp_path / "auth.txt", auth_entries)
        acct_file = _radclient_file(tmp_path / "acct.txt", acct_entries)
        # Paced to last about 2 s each, whatever the machine: ~40 SIGHUPs under load.
        auth = _run_radclient(ports["auth"], "auth", auth_file, AUTH_REQUESTS // 2)
        acct = _run_radclient(ports["acct"], "acct", acct_file, ACCT_REQUESTS // 2)
        sent = during = 0
        deadline = time.monotonic() + 60
        # SIGHUP every 50 ms while the load runs, the config flipping between two valid sets.
        while (auth.poll() is None or acct.poll() is None or sent < 20) and sent < 1000:
            assert time.monotonic() < deadline, "radclient did not finish within 60 s"
            write_config(config, base, chatty if sent % 2 == 0 else quiet)
            served.process.send_signal(signal.SIGHUP)
            sent += 1
            if auth.poll() is None and acct.poll() is None:
                during += 1
            time.sleep(0.05)
        auth_out, auth_err = auth.communicate(timeout=60)
        acct_out, acct_err = acct.communicate(timeout=60)
        assert served.process.poll() is None, log.read_text()[-3000:]
        auth_sum, acct_sum = _summary(auth_out), _summary(acct_out)
        assert auth_sum.get("Lost") == 0 and acct_sum.get("Lost") == 0, (auth_out, acct_out)
        # Every request got the reply its Response-Packet-Type named: exact accepts/rejects.
        rejects = len(range(0, AUTH_REQUESTS, 3))
        assert auth_sum["Accepted"] == AUTH_REQUESTS - rejects, auth_out
        assert auth_sum["Rejected"] == rejects, auth_out
        assert auth_sum["Failed filter"] == 0 and acct_sum["Failed filter"] == 0
        assert acct_sum["Passed filter"] == ACCT_REQUESTS, acct_out
        assert auth.returncode == 0 and acct.returncode == 0, (auth_err[-2000:], acct_err[-2000:])
        # The last SIGHUP's reload runs after radclient is done: wait for it, then count.
        time.sleep(0.5)
        text = wait_for_log(log, "reloaded:")
        reloads = text.count("reloaded:")
        assert reloads >= 5, text[-3000:]  # SIGHUPs during a reload fold into the next one
        assert "reload failed" not in text and "Traceback" not in text
        assert during >= 20, f"only {during} SIGHUPs while both radclients ran"
        print(f"{sent} SIGHUPs ({during} under load), {reloads} reloads; {auth_sum} {acct_sum}")
    finally:
        assert stop(served) == 0
    assert "Traceback" not in log.read_text()


# -- (2) a broken config or dictionary keeps the running set ------------------------------


EXTRA_VENDOR = 64999  # an IANA number nobody uses in our dictionaries


def _write_dictionary(path: Path, *, broken: bool = False, attributes: int = 1) -> None:
    """A master dictionary: the shipped one plus a vendor of our own (read strictly)."""
    lines = [f"$INCLUDE {default_dictionary()}"]
    lines += [f"VENDOR\tReloadTest\t{EXTRA_VENDOR}", "BEGIN-VENDOR\tReloadTest"]
    lines += [f"ATTRIBUTE\tReloadTest-Note-{n}\t{n}\tstring" for n in range(1, attributes + 1)]
    if broken:
        lines.append("ATTRIBUTE\tReloadTest-Broken")  # no code, no type
    lines.append("END-VENDOR\tReloadTest")
    path.write_text("\n".join(lines) + "\n")


def _reject_message(port: int) -> str | None:
    with RadiusClient(port, SECRET) as client:
        reply = client.exchange(client.access_request("nobody-at-all", "nothing"), timeout=5)
    assert reply is not None and reply.code == codec.Code.ACCESS_REJECT
    return reply.text("Reply-Message")


def test_broken_files_keep_the_running_set_and_fixed_ones_apply(tmp_path: Path) -> None:
    base, ports = base_config(tmp_path, None)
    dictionary = tmp_path / "dictionary"
    _write_dictionary(dictionary)
    config = tmp_path / "rc.toml"

    def radius(reply_message: bool) -> str:
        return radius_section(
            ports, reject_delay=0.0, reply_message=reply_message, dictionary=dictionary
        )

    write_config(config, base, radius(False))
    log = tmp_path / "serve.log"
    served = Served(config, ports["api"], log)
    try:
        with api_client(served, tmp_path) as api:
            add_nas(api, SECRET)
            maker = api.post("/api/v1/manufacturers", json={"name": "ReloadTest"}).json()
            layout = {
                "name": "reload-test",
                "manufacturer_id": maker["id"],
                "purpose": "active",
                "attributes": [{"attribute": "ReloadTest-Note-2", "template": "{username}"}],
            }
            assert _reject_message(ports["auth"]) is None

            # Bad TOML: the old set stays, the error names the file, the daemon answers.
            config.write_text(base + radius(True) + "[api\n")
            served.process.send_signal(signal.SIGHUP)
            text = wait_for_log(log, "reload failed")
            assert f"config file {config} is not valid TOML" in text
            assert _reject_message(ports["auth"]) is None

            # An invalid value: named by its key; nothing of the file applies.
            config.write_text(base + radius(True) + "[coa]\ntries = 0\n")
            served.process.send_signal(signal.SIGHUP)
            text = wait_for_log(log, "reload failed", count=2)
            assert "coa.tries" in text
            assert _reject_message(ports["auth"]) is None

            # A broken dictionary: named with its line; the config change waits with it.
            write_config(config, base, radius(True))
            _write_dictionary(dictionary, broken=True, attributes=2)
            served.process.send_signal(signal.SIGHUP)
            text = wait_for_log(log, "reload failed", count=3)
            assert f"{dictionary}:6" in text, text[-2000:]
            assert _reject_message(ports["auth"]) is None
            refused = api.post("/api/v1/radius/layouts", json=layout)
            assert refused.status_code == 422 and "ReloadTest-Note-2" in refused.text

            # Fixed: the Reply-Message comes back and the new attribute is usable in a layout.
            _write_dictionary(dictionary, attributes=2)
            served.process.send_signal(signal.SIGHUP)
            wait_for_log(log, "reloaded:")
            wait_for_log(log, "added 1 dictionary attributes")
            assert _reject_message(ports["auth"]) == "authentication failed"
            created = api.post("/api/v1/radius/layouts", json=layout)
            assert created.status_code == 201, created.text

            # A key that needs a restart is named, and keeps its running value.
            write_config(config, base.replace(f"port = {ports['api']}", "port = 1"), radius(True))
            served.process.send_signal(signal.SIGHUP)
            text = wait_for_log(log, "take effect only at a restart")
            assert "api.port" in text
            assert api.get("/healthz").status_code == 200
            metrics = api.get("/metrics").text
            assert 'radius_contracts_reloads_total{result="failed"} 3.0' in metrics, metrics
            assert 'radius_contracts_reloads_total{result="ok"} 2.0' in metrics, metrics
        assert text.count("ERROR") == 3, text  # one line per failed reload
    finally:
        assert stop(served) == 0
    assert "Traceback" not in log.read_text()


# -- (3) a NAS added behind the daemon's back ------------------------------------------------


def test_nas_inserted_behind_the_daemons_back_counts_after_sighup(tmp_path: Path) -> None:
    base, ports = base_config(tmp_path, None)
    config = tmp_path / "rc.toml"
    write_config(config, base, radius_section(ports, reject_delay=0.0))
    log = tmp_path / "serve.log"
    served = Served(config, ports["api"], log)
    try:
        with api_client(served, tmp_path) as api:
            add_nas(api, SECRET)
            contract = Factory(api).contract(config={"password": "behind-pw"})
        user = contract["config"]["username"]
        # Another program writes the NAS table: a copy of ours at 127.0.0.3.
        database = tmp_path / "state" / "radius-contracts.db"
        with sqlite3.connect(database) as db:
            columns = [row[1] for row in db.execute("PRAGMA table_info(nas)") if row[1] != "id"]
            chosen = [
                {"name": "'behind-the-back'", "address": "'127.0.0.3'"}.get(column, column)
                for column in columns
            ]
            db.execute(
                f"INSERT INTO nas ({', '.join(columns)}) "
                f"SELECT {', '.join(chosen)} FROM nas WHERE address = '127.0.0.1'"
            )
        with RadiusClient(ports["auth"], SECRET, source="127.0.0.3") as client:
            assert client.exchange(client.access_request(user, "behind-pw"), timeout=1) is None
            served.process.send_signal(signal.SIGHUP)
            wait_for_log(log, "reloaded:")
            reply = client.exchange(client.access_request(user, "behind-pw"), timeout=5)
        assert reply is not None and reply.accepted
        assert "2 NAS" in log.read_text()
    finally:
        assert stop(served) == 0
