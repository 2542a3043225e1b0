"""100,000+ random and mutated datagrams at the auth and accounting ports of a fresh daemon.

The daemon must neither crash nor grow, count what it dropped, and still answer a valid request
right after. Packets come from the known NAS (127.0.0.1, so they reach the decoder and, when
signed, the handler) and from an unknown source (127.0.0.77).
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import RunningDaemon, start_daemon, stop_daemon
from radius_client import RadiusClient
from radius_contracts.radius import codec
from radius_contracts.settings import load_settings

SECRET = b"fuzz-secret"
TOTAL = 100_000
BATCH = 250


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    settings = load_settings(
        None,
        state_dir=tmp_path_factory.mktemp("fuzz"),
        api={"host": "127.0.0.1", "port": 0},
        # No reject delay: every signed request runs the whole handler path at full speed.
        radius={
            "bind": "127.0.0.1",
            "auth_port": 0,
            "acct_port": 0,
            "reject_delay": 0,
            "duplicate_window": 1.0,
        },
    )
    running, thread = start_daemon(settings)
    yield running
    stop_daemon(running, thread)


def _signed(rng: random.Random, code: int) -> bytes:
    """A correctly signed packet whose attributes are random (the handler sees them)."""
    attributes = bytearray()
    for _ in range(rng.randrange(0, 12)):
        kind = rng.choice((1, 2, 3, 4, 5, 26, 31, 33, 60, 79, rng.randrange(1, 256)))
        if kind == 26 and rng.random() < 0.5:
            value = codec.vendor_attribute(
                codec.VENDOR_MICROSOFT,
                rng.choice((codec.MS_CHAP_CHALLENGE, codec.MS_CHAP2_RESPONSE, 1)),
                rng.randbytes(rng.randrange(1, 60)),
            )[2:]
        else:
            value = rng.randbytes(rng.randrange(1, 80))
        attributes += codec.attribute(kind, value)
    buildable = code in (1, 4, 12, 40, 43)
    packet = codec.encode_request(
        code if buildable else 1, rng.randrange(256), bytes(attributes), SECRET
    )
    return packet if buildable else bytes([code]) + packet[1:]


def _mutated(rng: random.Random, packet: bytes) -> bytes:
    data = bytearray(packet)
    choice = rng.randrange(9)
    if choice == 0:  # flipped bytes anywhere, the Message-Authenticator included
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif choice == 1:  # truncated
        del data[rng.randrange(len(data)) :]
    elif choice == 2:  # trailing junk
        data += rng.randbytes(rng.randrange(1, 200))
    elif choice == 3:  # a Length field that lies
        data[2:4] = rng.randrange(65536).to_bytes(2, "big")
    elif choice == 4:  # any code
        data[0] = rng.randrange(256)
    elif choice == 5 and len(data) > 22:  # an attribute length of 0 or 1, or far too long
        data[21] = rng.choice((0, 1, 255))
    elif choice == 6:  # oversized datagram
        data += rng.randbytes(4100 - len(data))
    elif choice == 7:  # a second Message-Authenticator
        data += codec.attribute(codec.MESSAGE_AUTHENTICATOR, bytes(16))
        data[2:4] = len(data).to_bytes(2, "big")
    else:  # a Message-Authenticator of the wrong length
        data += codec.attribute(codec.MESSAGE_AUTHENTICATOR, bytes(rng.randrange(0, 20)))
        data[2:4] = len(data).to_bytes(2, "big")
    return bytes(data[:65000])


def _packets(seed: int, count: int) -> list[tuple[bool, bytes]]:
    """(from the known NAS?, datagram) pairs, generated before sending so they do not count
    towards the memory measured."""
    rng = random.Random(seed)
    codes = (1, 1, 1, 4, 12, 2, 40, 43, 255)
    out: list[tuple[bool, bytes]] = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.15:
            packet = rng.randbytes(rng.randrange(0, 5000))
        elif kind < 0.45:
            packet = _signed(rng, rng.choice(codes[:5]))
        else:
            packet = _mutated(rng, _signed(rng, rng.choice(codes)))
        out.append((rng.random() < 0.85, packet))
    return out


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _blast(daemon: RunningDaemon, packets: list[tuple[bool, bytes]]) -> None:
    """Send in small batches and wait for the daemon to read each batch (no kernel drops)."""
    assert daemon.daemon.auth_port and daemon.daemon.acct_port
    ports = (daemon.daemon.auth_port, daemon.daemon.acct_port)
    known = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    known.bind(("127.0.0.1", 0))
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.77", 0))
    known.setblocking(False)
    stats = daemon.daemon.stats
    try:
        for start in range(0, len(packets), BATCH):
            target = stats["received"]
            for index, (from_nas, packet) in enumerate(packets[start : start + BATCH]):
                sock = known if from_nas else stranger
                if len(packet) > 65000:
                    continue
                sock.sendto(packet, ("127.0.0.1", ports[index % 2]))
                target += 1
            deadline = time.monotonic() + 5
            while stats["received"] < target and time.monotonic() < deadline:
                time.sleep(0.001)
            while True:  # replies to the known socket are not read by anyone: discard them
                try:
                    known.recv(4096)
                except BlockingIOError:
                    break
    finally:
        known.close()
        stranger.close()


def test_fuzzed_packets_never_crash_or_grow_the_daemon(fuzz_daemon: RunningDaemon) -> None:
    api = fuzz_daemon.client(fuzz_daemon.admin_token)
    mikrotik = next(
        m for m in api.get("/api/v1/manufacturers").json()["items"] if m["name"] == "MikroTik"
    )
    nas = {"name": "fuzz-nas", "address": "127.0.0.1", "secret": SECRET.decode(),
           "manufacturer_id": mikrotik["id"]}  # fmt: skip
    assert api.post("/api/v1/nas", json=nas).status_code == 201
    contract = {"number": "F-1", "config": {"username": "fuzz-user", "password": "fuzz-pw"}}
    assert api.post("/api/v1/contracts", json=contract).status_code == 201

    stats = fuzz_daemon.daemon.stats
    warm_up, measured = _packets(1, 20_000), _packets(2, TOTAL)
    _blast(fuzz_daemon, warm_up)
    time.sleep(fuzz_daemon.settings.radius.duplicate_window * 2.5)  # reply caches rotate out
    before = _rss()
    received_before = stats["received"]
    _blast(fuzz_daemon, measured)
    time.sleep(fuzz_daemon.settings.radius.duplicate_window * 2.5)
    grown = _rss() - before

    assert stats["received"] - received_before >= TOTAL * 0.99  # the daemon read them all
    assert stats["drop_internal_error"] == 0
    assert stats["drop_malformed"] > 10_000
    assert stats["drop_unknown_nas"] > 10_000
    assert stats["drop_bad_message_authenticator"] > 1_000
    assert stats["drop_unexpected_code"] > 1_000
    assert stats["rejects"] > 1_000  # signed requests with random attributes ran the handler
    assert grown < 16 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"

    with RadiusClient(fuzz_daemon.daemon.auth_port or 0, SECRET) as client:
        reply = client.exchange(client.access_request("fuzz-user", "fuzz-pw"))
    assert reply is not None and reply.accepted
