"""The README's curl tour works, exactly as written, against a fresh daemon."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import make_settings, start_daemon, stop_daemon

README = Path(__file__).parents[2] / "README.md"


def tour_script() -> str:
    text = README.read_text()
    block = re.search(r"```sh\n(API=http://127\.0\.0\.1:8080/api/v1\n.*?)```", text, re.S)
    assert block, "README lost its curl tour"
    radclient = re.search(r"```sh\n(curl [^`]*?\| radclient .*?)```", text, re.S)
    assert radclient, "README lost its radclient example"
    return block.group(1) + radclient.group(1)


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
        tour, _, radclient = result.stdout.partition("Sent Access-Request")
        answers = [json.loads(line) for line in tour.replace("}{", "}\n{").splitlines()]
        [mikrotik] = answers[0]["items"]
        assert (mikrotik["id"], mikrotik["name"], mikrotik["vendor_id"]) == (1, "MikroTik", 14988)
        [layout] = answers[1]["items"]
        assert layout["name"] == "mikrotik-active" and layout["manufacturer_id"] == 1
        assert layout["attributes"][0]["attribute"] == "Mikrotik-Rate-Limit"
        assert answers[2]["name"] == "bng-1" and answers[2]["manufacturer_id"] == 1
        assert answers[4]["number"] == "C-1001" and answers[4]["created_via"] == "billing"
        assert answers[5]["total"] == 1
        assert answers[6]["status"] == "suspended"
        assert answers[7]["allowed"] == {
            "activate": "active",
            "deactivate": "inactive",
            "cancel": "cancelled",
        }
        preview = answers[8]
        assert (preview["decision"], preview["layout"]) == ("accept", "mikrotik-suspended")
        sent = {a["attribute"]: a["value"] for a in preview["attributes"]}
        assert sent["Mikrotik-Address-List"] == "suspended" and sent["Framed-Pool"] == "cgnat-1"
        assert answers[9]["name"] == "local"
        # The suspended contract still connects, to the suspended layout.
        assert "Received Access-Accept" in radclient, radclient
        assert 'Mikrotik-Address-List = "suspended"' in radclient, radclient
    finally:
        stop_daemon(running, thread)
