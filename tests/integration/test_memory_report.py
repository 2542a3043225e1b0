"""SIGUSR2 makes a running `serve` write a memory report to its state directory."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from served import Served
from support import base_config, radius_section


def test_sigusr2_writes_a_memory_report_and_the_daemon_keeps_serving(tmp_path: Path) -> None:
    base, ports = base_config(tmp_path, None)
    config = tmp_path / "rc.toml"
    config.write_text(base + radius_section(ports))
    served = Served(config, ports["api"], tmp_path / "serve.log")
    try:
        for _ in range(2):
            served.process.send_signal(signal.SIGUSR2)
            time.sleep(1.1)  # reports are named by the second
        deadline = time.monotonic() + 20
        reports: list[Path] = []
        while len(reports) < 2 and time.monotonic() < deadline:
            reports = sorted((tmp_path / "state").glob("memory-*.txt"))
            time.sleep(0.1)
        assert len(reports) == 2, (tmp_path / "serve.log").read_text()[-2000:]
        text = reports[-1].read_text()
        assert text.startswith("RSS ") and "object types that grew most" in text
        assert served.process.poll() is None
    finally:
        served.stop()
