"""`radius-contracts serve` as a child process, for tests that kill, signal or run several
daemons side by side; and free loopback ports for their configs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """`radius-contracts serve` as a child process."""

    def __init__(self, config: Path, api_port: int, log: Path | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RADIUS_CONTRACTS_")}
        self.log = log
        with log.open("a") if log else open(os.devnull, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "radius_contracts", "serve", "--config", str(config)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.base_url = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start")
            time.sleep(0.1)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
