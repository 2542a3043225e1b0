"""The state directory and its secret files are private however the daemon is started (issue 18).

`scripts/serve.sh` runs with the login shell's umask (0022 here) and no systemd UMask=: the
daemon must still leave the state directory 0700 and every file in it (database, WAL, SHM,
spool, admin token) 0600, tighten what an earlier start left open, and `check-config` must warn
about looser modes it finds.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from radius_client import RadiusClient, attr
from served import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "state-files-secret"


def open_to_others(state: Path) -> list[str]:
    found = []
    for path in [state, *state.rglob("*")]:
        mode = path.lstat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            found.append(f"{path.relative_to(state.parent)} {stat.S_IMODE(mode):04o}")
    return found


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    return subprocess.run(
        [sys.executable, "-m", "radius_contracts", "check-config", "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


def test_serve_sh_leaves_nothing_in_the_state_dir_for_others(
    tmp_path: Path, database_url: str | None
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    leftover = state / "notes.txt"  # what an earlier, careless start left behind
    leftover.write_text("old\n")
    os.chmod(leftover, 0o644)
    api, auth, acct = free_port(), free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    config = tmp_path / "rc.toml"
    config.write_text(
        f'state_dir = "{state}"\n'
        + (f'[database]\nurl = "{database_url}"\n' if database_url else "")
        + f'[api]\nport = {api}\n[radius]\nbind = "127.0.0.1"\nauth_port = {auth}\n'
        f"acct_port = {acct}\n"
    )
    warned = check_config(config)
    assert warned.returncode == 0, warned.stderr
    assert f"{state} is 0755" in warned.stderr and f"{leftover} is 0644" in warned.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    old_umask = os.umask(0o022)  # the usual login shell's
    try:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "serve.sh"), "--config", str(config)],
            env=env, stdout=(tmp_path / "serve.log").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
    finally:
        os.umask(old_umask)
    try:
        base = f"http://127.0.0.1:{api}"
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.1)
        token = (state / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        makers = httpx.get(f"{base}/api/v1/manufacturers", params={"q": "MikroTik"},
                           headers=headers).json()["items"]  # fmt: skip
        nas = {
            "name": "lo",
            "address": "127.0.0.1",
            "secret": SECRET,
            "manufacturer_id": makers[0]["id"],
            "require_message_authenticator": False,
        }
        assert httpx.post(f"{base}/api/v1/nas", json=nas, headers=headers).status_code == 201
        # An accounting record, so the database (WAL) and the spool have been written.
        with RadiusClient(acct, SECRET) as client:
            reply = client.exchange(
                client.accounting_request(
                    attr("User-Name", "nobody"),
                    attr("Acct-Status-Type", "Start"),
                    attr("Acct-Session-Id", "state-files-1"),
                )
            )
        assert reply is not None
        if database_url is None:
            assert (state / "radius-contracts.db").exists()
        assert (state / "admin-token").exists()
        assert open_to_others(state) == []
    finally:
        process.terminate()
        process.wait(30)
    assert open_to_others(state) == []
    quiet = check_config(config)
    assert "warning" not in quiet.stderr, quiet.stderr
