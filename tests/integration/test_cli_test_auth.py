"""``radius-contracts test-auth`` against a running daemon, run as an operator would run it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from typing import Any

from conftest import LO_SECRET, Factory, RunningDaemon

CLI = [sys.executable, "-m", "radius_contracts", "test-auth"]


def run_test_auth(
    daemon: RunningDaemon, *args: str, secret: str = LO_SECRET
) -> subprocess.CompletedProcess[str]:
    argv = [*CLI, *args, "--port", str(daemon.daemon.auth_port), "--timeout", "0.5"]
    # The secret through the environment, as the help recommends (argv shows in ps).
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
    if secret:
        env["RADIUS_CONTRACTS_TEST_SECRET"] = secret
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert not secret or secret not in result.stdout + result.stderr
    return result


def user_with_password(make: Factory) -> tuple[str, str]:
    """A new contract's user name and password (the API never shows a password back)."""
    password = "pw-" + secrets.token_hex(6)
    contract = make.contract(config={"password": password})
    return contract["config"]["username"], password


def test_pap_accept_prints_the_reply_attributes_by_name(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    user, password = user_with_password(make)
    result = run_test_auth(daemon, user, password)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    answer = next(line for line in lines if line.startswith("Access-"))
    assert answer.startswith(f"Access-Accept from 127.0.0.1 port {daemon.daemon.auth_port} in ")
    assert answer.endswith(" ms")
    assert any(line.startswith("  Mikrotik-Rate-Limit = 10M/50M") for line in lines), lines
    assert "warning" not in result.stdout


def test_wrong_password_is_a_reject_with_its_reply_message(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    user, _password = user_with_password(make)
    result = run_test_auth(daemon, user, "not-it")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "\nAccess-Reject from 127.0.0.1" in result.stdout
    assert "\n  Reply-Message = " in result.stdout


def test_chap_accept(daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory) -> None:
    user, password = user_with_password(make)
    result = run_test_auth(daemon, user, password, "--chap")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(chap)" in result.stdout and "\nAccess-Accept from" in result.stdout


def test_mschapv2_accept_checks_the_servers_proof(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    user, password = user_with_password(make)
    result = run_test_auth(daemon, user, password, "--mschapv2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\nAccess-Accept from" in result.stdout
    assert "MS-CHAP2-Success verified" in result.stdout
    # MPPE keys are hidden with the secret: shown as octets, never decrypted.
    assert "\n  MS-MPPE-Send-Key = 0x" in result.stdout


def test_wrong_secret_gets_no_answer_within_the_timeouts(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    user, password = user_with_password(make)
    started = time.monotonic()
    result = run_test_auth(daemon, user, password, "--retries", "1", secret="not-the-secret")
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"No answer from 127.0.0.1 port {daemon.daemon.auth_port} after 2 tries" in result.stdout
    assert "secret" in result.stdout
    assert elapsed < 10  # two tries of 0.5 s, plus starting Python


def test_secret_on_the_command_line_is_not_printed(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    user, password = user_with_password(make)
    result = run_test_auth(daemon, user, password, "--secret", LO_SECRET)
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secret_is_a_usage_error(daemon: RunningDaemon) -> None:
    result = run_test_auth(daemon, "someone", "pw", secret="")
    assert result.returncode == 2
    assert "--secret" in result.stderr
