"""The shipped systemd unit passes systemd-analyze verify (when systemd is on the machine)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parents[2] / "systemd" / "radius-contracts.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_unit_verifies(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this environment's entry point.
    installed = "/opt/radius-contracts/venv/bin/radius-contracts"
    here = str(Path(sys.executable).with_name("radius-contracts"))
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(installed, here))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "radius-contracts.service" not in result.stderr, result.stderr
    text = UNIT.read_text()
    for setting in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "ProtectSystem=strict",
                    "NoNewPrivileges=yes", "StateDirectory=radius-contracts"):  # fmt: skip
        assert setting in text
