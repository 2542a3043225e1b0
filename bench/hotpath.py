"""The listener's own cost per Access-Request, in process: no sockets, no client, no noise.

Run by hand::

    .venv/bin/python bench/hotpath.py                     # µs per request, PAP and CHAP
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python bench/hotpath.py --callgrind     # instructions per request

A daemon is started in this process on a fresh SQLite state directory with ``--contracts``
contracts (every one with simultaneous use 1, a MikroTik NAS at 127.0.0.1); then pre-encoded
Access-Requests (distinct Identifier and authenticator each, a Calling-Station-Id, a
Message-Authenticator) are handed straight to the auth listener's ``datagram_received``, whose
transport is replaced by one that keeps the replies. What is timed is everything the daemon
does for a datagram before the kernel's ``sendto``: decode, checks, the handler, the auth log
record, encode. Every reply is checked to be an Access-Accept.

With ``--callgrind`` the measured loop runs twice, with 0 and with ``--requests`` requests,
between ``CALLGRIND_TOGGLE_COLLECT`` markers (via ``callgrind_control``), so the difference of
the two instruction counts divided by the requests is the cost of one; the machine's load does
not change it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from radius_contracts import testauth
from radius_contracts.daemon import Daemon
from radius_contracts.radius import codec
from radius_contracts.radius.protocol import RadiusProtocol
from radius_contracts.settings import load_settings

SECRET = b"hotpath-secret-123"


class _Transport:
    """Keeps what the listener sends instead of sending it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: object = None) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1812) if name == "sockname" else default


def populate(path: Path, contracts: int) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    connection = sqlite3.connect(path)
    with connection:
        maker = connection.execute(
            "SELECT id FROM manufacturers WHERE name = 'MikroTik'"
        ).fetchone()
        connection.execute(
            "INSERT INTO nas (name, address, secret, manufacturer_id, coa_port,"
            " require_message_authenticator, active, created_at, updated_at)"
            " VALUES ('hot', '127.0.0.1', ?, ?, 3799, 1, 1, ?, ?)",
            (SECRET.decode(), maker[0], now, now),
        )
        connection.executemany(
            "INSERT INTO contracts (number, status, auto_extend, customer_custom_fields,"
            " custom_fields, username, username_key, password, max_upload, max_download,"
            " simultaneous_use, created_at, updated_at)"
            " VALUES (?, 'active', 0, '{}', '{}', ?, ?, ?, '50M', '500M', 1, ?, ?)",
            (
                (f"H{i:07d}", f"hot{i:07d}", f"hot{i:07d}", f"pw-{i:07d}", now, now)
                for i in range(contracts)
            ),
        )
    connection.close()


def packets(count: int, contracts: int, method: testauth.Method) -> list[bytes]:
    made = []
    for n in range(count):
        i = n % contracts
        mac = f"02:00:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}:01"
        station = codec.attribute(codec.CALLING_STATION_ID, mac.encode())
        request = testauth.access_request(
            n % 256, SECRET, f"hot{i:07d}", f"pw-{i:07d}", station, method=method
        )
        made.append(request.data)
    return made


def _toggle() -> None:
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _untoggle() -> None:
    subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="hotpath-") as tmp:
        state = Path(tmp)
        overrides = {
            "state_dir": state,
            "api": {"host": "127.0.0.1", "port": 0},
            "radius": {"bind": "127.0.0.1", "auth_port": 0, "acct_port": 0},
            "logging": {"level": "WARNING"},
        }
        migrate = Daemon(load_settings(None, **overrides))
        await migrate.start()
        await migrate.shutdown()
        populate(state / "radius-contracts.db", args.contracts)
        daemon = Daemon(load_settings(None, **overrides))
        await daemon.start()
        try:
            listener = next(p for _t, p in daemon._listeners if p.port == "auth")
            assert isinstance(listener, RadiusProtocol)
            transport = _Transport()
            listener.transport = transport  # type: ignore[assignment]
            addr = ("127.0.0.1", 40000)
            for method in args.methods.split(","):
                batch = packets(args.requests, args.contracts, method)  # type: ignore[arg-type]
                # Every contract once first: its reply is rendered and cached, as in a running
                # daemon; the measured requests are warm ones.
                warm = packets(args.contracts, args.contracts, method)  # type: ignore[arg-type]
                for data in warm:
                    listener.datagram_received(data, ("127.0.0.1", 40001))
                transport.sent.clear()
                if args.callgrind:
                    for requests in (batch[:0], batch):
                        _toggle()
                        for data in requests:
                            listener.datagram_received(data, addr)
                        _untoggle()
                        print(f"{method}: ran {len(requests)} requests", flush=True)
                        await asyncio.sleep(0.2)
                    continue
                started = time.process_time()
                for data in batch:
                    listener.datagram_received(data, addr)
                spent = time.process_time() - started
                accept = codec.Code.ACCESS_ACCEPT
                accepted = sum(1 for reply in transport.sent if reply[0] == accept)
                assert accepted == len(batch), f"{accepted} of {len(batch)} accepted"
                transport.sent.clear()
                print(
                    f"{method}: {spent / len(batch) * 1e6:.1f} µs CPU per request "
                    f"({len(batch):,} requests, {args.contracts:,} contracts)",
                    flush=True,
                )
                await asyncio.sleep(1.5)  # the auth log writes; the next batch starts calm
        finally:
            await daemon.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--methods", default="pap,chap")
    parser.add_argument("--callgrind", action="store_true")
    options = parser.parse_args()
    os.sched_setaffinity(0, {0})
    sys.exit(asyncio.run(main(options)))
