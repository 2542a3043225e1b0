"""Run FreeRADIUS's radclient (the reference NAS-side client) and parse what it printed."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest

_RECEIVED = re.compile(r"^Received (\S+) Id \d+ ")
_ATTRIBUTE = re.compile(r"^\s+(\S+) = (.*)$")


@dataclass
class RadclientResult:
    code: str | None  # "Access-Accept", "Access-Reject", ...; None when nothing came back
    attributes: dict[str, list[str]] = field(default_factory=dict)
    output: str = ""

    def first(self, name: str) -> str | None:
        values = self.attributes.get(name)
        return values[0] if values else None


def radclient(
    port: int,
    secret: str,
    request: str,
    *,
    command: str = "auth",
    timeout: float = 2.0,
) -> RadclientResult:
    """Send ``request`` (radclient syntax), retrying once like a NAS would; parse the reply."""
    binary = shutil.which("radclient")
    if binary is None:
        pytest.fail("radclient is missing: scripts/test.sh installs freeradius-utils")
    proc = subprocess.run(
        [binary, "-x", "-r", "2", "-t", str(timeout), f"127.0.0.1:{port}", command, secret],
        input=request,
        capture_output=True,
        text=True,
        timeout=timeout + 10,
        check=False,
    )
    result = RadclientResult(code=None, output=proc.stdout + proc.stderr)
    receiving = False
    for line in proc.stdout.splitlines():
        match = _RECEIVED.match(line)
        if match:
            result.code, receiving = match.group(1), True
            continue
        if receiving:
            attribute = _ATTRIBUTE.match(line)
            if attribute is None:
                receiving = False
                continue
            value = attribute.group(2)
            if value.startswith('"') and value.endswith('"'):
                value = value[1:-1]
            result.attributes.setdefault(attribute.group(1), []).append(value)
    return result
