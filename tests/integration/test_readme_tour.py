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
    return block.group(1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_tour(tmp_path: Path) -> None:
    running, thread = start_daemon(make_settings(tmp_path / "var", None))
    try:
        script = tour_script().replace("http://127.0.0.1:8080", running.base_url)
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
        answers = [json.loads(line) for line in result.stdout.replace("}{", "}\n{").splitlines()]
        assert answers[0]["vendor_id"] == 14988
        assert answers[4]["number"] == "C-1001" and answers[4]["created_via"] == "billing"
        assert answers[5]["total"] == 1
        assert answers[6]["status"] == "suspended"
        assert answers[7]["allowed"] == {
            "activate": "active",
            "deactivate": "inactive",
            "cancel": "cancelled",
        }
    finally:
        stop_daemon(running, thread)
