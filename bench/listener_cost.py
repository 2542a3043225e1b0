"""CPU instructions per warm Access-Request in the auth listener, counted by callgrind.

Wall-clock timings on a shared 2-core machine wander by ±30 %; instruction counts do not, so
this is the way to see what a change to the packet path costs (a few hundred instructions
are noise). A daemon runs in process on a temporary SQLite state; the auth listener's
transport is swapped for one that drops replies, and ``RadiusProtocol.datagram_received`` is
fed prebuilt packets, each with a fresh Request Authenticator: decode, checks, AAA from the
index, the auth log record, encode. Callgrind counts only inside each loop
(``callgrind_control -i on|off``); two runs of different lengths are subtracted, so start-up
and the instrumentation switches cancel out.

    .venv/bin/python bench/listener_cost.py                  # this checkout
    .venv/bin/python bench/listener_cost.py --src /tmp/old/src   # e.g. git archive main src

Needs valgrind. About 5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

KINDS = (
    "pap", "pap-proxy-state", "chap-authenticator", "chap-challenge", "mschapv2",
    "mschapv2-first",
)  # fmt: skip
# mschapv2-first is the first MS-CHAPv2 login of a user after a restart: whatever the server
# derives from a password and keeps (aaa.mschap's caches) is dropped before every request.
SECRET = b"listener-cost-secret"
PASSWORD = "listener-cost-pw"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, help="run this source tree (PYTHONPATH) instead")
    parser.add_argument("--short", type=int, default=2000, help="requests per kind, short run")
    parser.add_argument("--long", type=int, default=6000, help="requests per kind, long run")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    if args.worker:
        worker(args.worker, kinds)
        return
    runs = {n: callgrind_run(n, args.src, kinds) for n in (args.short, args.long)}
    span = args.long - args.short
    print(f"{'request':20} {'instructions':>12}")
    for kind in kinds:
        per_request = (runs[args.long][kind] - runs[args.short][kind]) / span
        print(f"{kind:20} {per_request:12,.0f}")


def callgrind_run(requests: int, src: Path | None, kinds: list[str]) -> dict[str, int]:
    """Instructions counted per kind in one run of ``requests`` requests of each kind."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    with tempfile.TemporaryDirectory() as out:
        argv = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={out}/out.%p",
            sys.executable, __file__, "--worker", str(requests), "--kinds", ",".join(kinds),
        ]  # fmt: skip
        run = subprocess.run(argv, env=env, check=False, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"the worker failed ({run.returncode}):\n{run.stderr[-3000:]}")
        totals: dict[str, int] = {}
        for dump in Path(out).glob("out.*.*"):
            text = dump.read_text()
            kind = next(line for line in text.splitlines() if line.startswith("desc: Trigger"))
            total = next(line for line in text.splitlines() if line.startswith("totals:"))
            totals[kind.rsplit(" ", 1)[-1]] = int(total.split()[1])
    return totals


# -- the worker, under callgrind ---------------------------------------------------------------


class _Sink:
    """A transport that drops replies: no sendto syscall in the count."""

    last_code = 0

    def sendto(self, data: bytes, addr: object) -> None:
        self.last_code = data[0]

    def is_closing(self) -> bool:
        return False


def worker(requests: int, kinds: list[str]) -> None:
    from radius_contracts.daemon import Daemon
    from radius_contracts.settings import load_settings
    from radius_contracts.startup import BOOTSTRAP_TOKEN_FILE

    state = Path(tempfile.mkdtemp(prefix="listener-cost-"))
    settings = load_settings(
        None,
        state_dir=state,
        api={"host": "127.0.0.1", "port": 0},
        radius={"bind": "127.0.0.1", "auth_port": 0, "acct_port": 0},
    )
    loop = asyncio.new_event_loop()
    daemon = Daemon(settings)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def run() -> None:
            await daemon.start()
            started.set()
            await daemon.wait()

        loop.run_until_complete(run())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not started.wait(600):
        raise RuntimeError("the daemon did not start")
    try:
        token = (state / BOOTSTRAP_TOKEN_FILE).read_text().strip()
        user = _set_up(f"http://127.0.0.1:{daemon.api_port}", token)
        protocol = next(p for _t, p in daemon._listeners if p.port == "auth")
        sink = protocol.transport = _Sink()  # type: ignore[assignment]
        builders = _builders(user)
        for kind in kinds:
            build = builders[kind]
            warm = [build(i) for i in range(200)]
            packets = [build(i) for i in range(requests)]
            forget = _forget_passwords if kind == "mschapv2-first" else None
            _feed(loop, protocol.datagram_received, warm, None)
            if sink.last_code != 2:  # every kind is a request the daemon accepts
                raise RuntimeError(f"{kind}: reply code {sink.last_code}, not Access-Accept")
            time.sleep(1.5)  # the auth log writer flushes outside the count
            _feed(loop, protocol.datagram_received, packets, kind, forget)
    finally:
        loop.call_soon_threadsafe(daemon.stop)
        thread.join(60)


def _set_up(base_url: str, token: str) -> str:
    import httpx

    # A generous timeout: under callgrind on a busy machine one API call can take many seconds.
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=300) as api:
        nas = {"name": "bench", "address": "127.0.0.1", "secret": SECRET.decode(),
               "manufacturer_id": 1}  # fmt: skip
        api.post("/api/v1/nas", json=nas).raise_for_status()
        config = {"username": "bench-user", "password": PASSWORD, "max_upload": "10M",
                  "max_download": "50M", "simultaneous_use": None}  # fmt: skip
        api.post("/api/v1/contracts", json={"number": "B-1", "config": config}).raise_for_status()
    return "bench-user"


def _builders(user: str) -> dict[str, Callable[[int], bytes]]:
    from radius_contracts.aaa import mschap
    from radius_contracts.radius import codec, hiding

    name = codec.attribute(codec.USER_NAME, user.encode())
    proxy_state = codec.attribute(codec.PROXY_STATE, b"proxy-state-1")

    def pap(i: int, *extra: bytes) -> bytes:
        authenticator = os.urandom(16)
        hidden = hiding.hide_user_password(PASSWORD.encode(), SECRET, authenticator)
        body = name + codec.attribute(codec.USER_PASSWORD, hidden) + b"".join(extra)
        return codec.encode_request(1, i % 256, body, SECRET, authenticator=authenticator)

    def chap(i: int, with_challenge: bool) -> bytes:
        authenticator = os.urandom(16)
        challenge = os.urandom(16) if with_challenge else authenticator
        ident = bytes((i % 256,))
        response = hashlib.md5(ident + PASSWORD.encode() + challenge).digest()
        body = name + codec.attribute(codec.CHAP_PASSWORD, ident + response)
        if with_challenge:
            body += codec.attribute(codec.CHAP_CHALLENGE, challenge)
        return codec.encode_request(1, i % 256, body, SECRET, authenticator=authenticator)

    def mschapv2(i: int) -> bytes:
        authenticator_challenge, peer_challenge = os.urandom(16), os.urandom(16)
        nt_response = mschap.generate_nt_response(
            authenticator_challenge, peer_challenge, user.encode(), PASSWORD
        )
        response = bytes((i % 256, 0)) + peer_challenge + bytes(8) + nt_response
        ms = codec.VENDOR_MICROSOFT
        body = (
            name
            + codec.vendor_attribute(ms, codec.MS_CHAP_CHALLENGE, authenticator_challenge)
            + codec.vendor_attribute(ms, codec.MS_CHAP2_RESPONSE, response)
        )
        return codec.encode_request(1, i % 256, body, SECRET)

    return {
        "pap": pap,
        "mschapv2": mschapv2,
        "mschapv2-first": mschapv2,
        "pap-proxy-state": lambda i: pap(i, proxy_state),
        "chap-authenticator": lambda i: chap(i, False),
        "chap-challenge": lambda i: chap(i, True),
    }


def _feed(
    loop: asyncio.AbstractEventLoop,
    received: Callable[[bytes, Any], None],
    packets: list[bytes],
    dump: str | None,
    before_each: Callable[[], None] | None = None,
) -> None:
    """Hand ``packets`` to the listener on its own loop; count them when ``dump`` names them.

    ``before_each`` runs before every packet, inside the count.
    """
    pid = str(os.getpid())

    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, pid], check=True, capture_output=True)

    async def run() -> None:
        address = ("127.0.0.1", 40000)
        if dump:
            control("-i", "on")
        for packet in packets:
            if before_each is not None:
                before_each()
            received(packet, address)
        if dump:
            control("-i", "off")
            control("-d", dump)

    asyncio.run_coroutine_threadsafe(run(), loop).result()


def _forget_passwords() -> None:
    """Drop what aaa.mschap keeps per password, as a restart does (a few hundred instructions)."""
    from radius_contracts.aaa import mschap

    prepare = getattr(mschap, "prepare_password", None)
    if prepare is not None:
        prepare.cache_clear()


if __name__ == "__main__":
    main()
