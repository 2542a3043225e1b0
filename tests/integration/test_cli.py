"""The radius-contracts command line, run as an operator would run it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from pki import make_pki
from support import CLI, run_cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "rc.toml"
    path.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[api]\nport = {free_port()}\n'
        '[logging]\nformat = "json"\n'
    )
    return path


def test_check_config_ok(config: Path) -> None:
    result = run_cli("check-config", config=config)
    assert result.returncode == 0, result.stderr
    assert "config ok" in result.stdout and "attributes" in result.stdout


def test_check_config_names_the_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[api]\nport = 'eighty'\n")
    result = run_cli("check-config", config=path)
    assert result.returncode == 2
    assert "api.port" in result.stderr and "RADIUS_CONTRACTS_API__PORT" in result.stderr


def test_broken_dictionary_names_file_and_line(tmp_path: Path) -> None:
    dictionary = tmp_path / "dictionary"
    dictionary.write_text("ATTRIBUTE\tGood-One\t1\tstring\nATTRIBUTE\tBroken\n")
    path = tmp_path / "rc.toml"
    path.write_text(f'[radius]\ndictionary = "{dictionary}"\n')
    result = run_cli("check-config", config=path)
    assert result.returncode == 2
    assert f"{dictionary}:2" in result.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_check_config_reads_the_radsec_files(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    path = tmp_path / "rc.toml"
    radsec = (
        f'[radsec]\nenabled = true\ncertificate = "{pki / "server.pem"}"\n'
        f'private_key = "{pki / "server.key"}"\nca_file = "{pki / "ca.pem"}"\n'
    )
    path.write_text(radsec)
    result = run_cli("check-config", config=path)
    assert result.returncode == 0, result.stderr
    assert "radsec: TLS files ok, port 2083" in result.stdout
    # The expired certificate with its own key: a NAS would refuse it.
    path.write_text(
        radsec.replace("server.pem", "expired.pem").replace("server.key", "expired.key")
    )
    result = run_cli("check-config", config=path)
    assert result.returncode == 2
    assert "expired" in result.stderr and "expired.pem" in result.stderr
    path.write_text(radsec.replace("server.key", "nas.key"))  # not the certificate's key
    result = run_cli("check-config", config=path)
    assert result.returncode == 2 and "radsec" in result.stderr
    path.write_text("[radsec]\nenabled = true\n")
    result = run_cli("check-config", config=path)
    assert result.returncode == 2 and "certificate, private_key, ca_file" in result.stderr


def test_migrate_and_tokens(config: Path) -> None:
    assert run_cli("migrate", config=config).returncode == 0
    assert run_cli("migrate", config=config).returncode == 0  # idempotent
    created = run_cli("token", "create", "billing", "--role", "read-only", config=config)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("rc_") and len(token) > 40
    listed = run_cli("token", "list", config=config)
    assert "billing\tread-only" in listed.stdout and token not in listed.stdout
    assert run_cli("token", "create", "billing", config=config).returncode == 2
    assert run_cli("token", "revoke", "billing", config=config).returncode == 0
    again = run_cli("token", "revoke", "billing", config=config)
    assert again.returncode == 2 and "no active token" in again.stderr


def test_serve_answers_reloads_and_stops_on_sigterm(config: Path, tmp_path: Path) -> None:
    port = int(config.read_text().split("port = ")[1].split()[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(30)
    env["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
    log = tmp_path / "serve.log"
    with log.open("w") as out, notify:
        process = subprocess.Popen(
            [*CLI, "serve", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.1)
            token_file = tmp_path / "state" / "admin-token"
            assert token_file.stat().st_mode & 0o777 == 0o600
            token = token_file.read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            created = httpx.post(
                f"{base}/api/v1/pops", json={"name": "cli-pop"}, headers=headers, timeout=10
            )
            assert created.status_code == 201, created.text
            assert notify.recv(1024).startswith(b"READY=1")
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "reloaded" not in log.read_text():
                assert time.monotonic() < deadline and process.poll() is None, log.read_text()
                time.sleep(0.1)
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            # systemd's reload protocol: RELOADING=1 with the monotonic clock, then READY=1.
            reloading = notify.recv(1024).split(b"\n")
            assert reloading[0] == b"RELOADING=1" and reloading[1].startswith(b"MONOTONIC_USEC=")
            assert notify.recv(1024) == b"READY=1"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
            assert notify.recv(1024) == b"STOPPING=1"
        finally:
            if process.poll() is None:
                process.kill()
    text = log.read_text()
    assert "radius-contracts stopped" in text
    assert token not in text  # the bootstrap token goes to its file, never to the log
