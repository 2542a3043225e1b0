"""The README's curl tour works, exactly as written, against a fresh daemon."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import make_settings, start_daemon, stop_daemon

README = Path(__file__).parents[2] / "README.md"


def tour_script() -> str:
    text = README.read_text()
    block = re.search(r"```sh\n(API=http://127\.0\.0\.1:8080/api/v1\n.*?)```", text, re.S)
    assert block, "README lost its curl tour"
    return block.group(1)


def outputs(stdout: str) -> list[Any]:
    """What the tour printed, in order: each curl's JSON answer, each radclient's text."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    at = 0
    while at < len(stdout):
        if stdout[at].isspace():
            at += 1
        elif stdout[at] == "{":
            value, at = decoder.raw_decode(stdout, at)
            found.append(value)
        else:  # radclient's lines run up to the next answer that starts a line
            end = stdout.find("\n{", at)
            end = len(stdout) if end < 0 else end + 1
            found.append(stdout[at:end])
            at = end
    return found


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_tour(tmp_path: Path) -> None:
    running, thread = start_daemon(make_settings(tmp_path / "var", None))
    try:
        script = tour_script().replace("http://127.0.0.1:8080", running.base_url)
        script = script.replace("127.0.0.1:1812", f"127.0.0.1:{running.daemon.auth_port}")
        (tmp_path / "tour.sh").write_text(
            "set -e\n" + script.replace("curl -s", "curl -sS --fail-with-body")
        )
        result = subprocess.run(
            ["bash", str(tmp_path / "tour.sh")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        printed = outputs(result.stdout)
        (mikrotiks, layouts, bng, pool, contract, found, preview, local, login,
         suspended, transitions, suspended_preview, suspended_login) = printed  # fmt: skip
        [mikrotik] = mikrotiks["items"]
        assert (mikrotik["id"], mikrotik["name"], mikrotik["vendor_id"]) == (1, "MikroTik", 14988)
        [layout] = layouts["items"]
        assert layout["name"] == "mikrotik-active" and layout["manufacturer_id"] == 1
        assert layout["attributes"][0]["attribute"] == "Mikrotik-Rate-Limit"
        assert bng["name"] == "bng-1" and bng["manufacturer_id"] == 1
        assert pool["name"] == "cgnat-1"
        assert contract["number"] == "C-1001" and contract["created_via"] == "billing"
        assert found["total"] == 1
        assert (preview["decision"], preview["layout"]) == ("accept", "mikrotik-active")
        sent = {a["attribute"]: a["value"] for a in preview["attributes"]}
        assert sent["Mikrotik-Rate-Limit"].startswith("10M/50M")
        assert local["name"] == "local"
        # The newcomer's first login is accepted, with the active layout ...
        assert "Received Access-Accept" in login, login
        assert 'Mikrotik-Rate-Limit = "10M/50M' in login and "suspended" not in login, login
        # ... and once suspended, the same login gets the suspended layout.
        assert suspended["status"] == "suspended"
        assert transitions["allowed"] == {
            "activate": "active",
            "deactivate": "inactive",
            "cancel": "cancelled",
        }
        assert suspended_preview["layout"] == "mikrotik-suspended"
        sent = {a["attribute"]: a["value"] for a in suspended_preview["attributes"]}
        assert sent["Mikrotik-Address-List"] == "suspended" and sent["Framed-Pool"] == "cgnat-1"
        assert "Received Access-Accept" in suspended_login, suspended_login
        assert 'Mikrotik-Address-List = "suspended"' in suspended_login, suspended_login
    finally:
        stop_daemon(running, thread)
