"""RadSec (RFC 6614) PAP throughput and server CPU: radius-contracts against FreeRADIUS `tls`.

Both servers get the same load the same way: the anchor's load.sh (radclient streams over UDP)
into radsecproxy, which forwards over one persistent TLS connection with the NAS certificate
of the anchor's radsec-pki.sh. Through the proxy, the proxy is the ceiling of req/s on this
machine: compare server CPU per request (µs/req), which the proxy does not spend.

    .venv/bin/python bench/radsec.py                       # both servers, 3 x 20,000 PAP each
    .venv/bin/python bench/radsec.py --no-freeradius --repeats 1 --requests 5000

Needs radsecproxy, freeradius, freeradius-utils (radclient), openssl and sqlite3 from apt, and
the anchor scripts in ../shared/bench-anchor (radsec-pki.sh, radsecproxy.sh,
setup-freeradius.sh, load.sh, gen_data.py). The servers are pinned to --server-cpu, radclient
and radsecproxy to --client-cpu. Wall-clock figures on a shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from auth import (  # bench/auth.py: the shared daemon, data and load plumbing
    ANCHOR_USERS,
    DEFAULT_ANCHOR,
    Loaded,
    Options,
    Run,
    Server,
    User,
    _free_port,
    make_data,
    our_daemon,
    prepare_state,
    radclient_runs,
)

PKI = Path("/tmp/radsec-pki")  # where the anchor scripts look for it (RADSEC_PKI)
FR_TLS_RUN = Path("/tmp/fr-run-tls")
FR_TLS_PORT = 32083  # setup-freeradius.sh's RADSEC_PORT default
FR_PROXY_PORT = 31912


def _anchor_env(opts: Options, cpu: int | None = None) -> dict[str, str]:
    env = {**os.environ, "RADSEC_PKI": str(PKI), "SECRET": opts.secret.decode()}
    if cpu is not None:
        env["SRV_CPU"] = str(cpu)
    return env


def make_pki(anchor: Path) -> None:
    if not (PKI / "server.pem").exists():
        subprocess.run(["bash", str(anchor / "radsec-pki.sh"), str(PKI)], check=True, timeout=120)


@contextmanager
def radsecproxy(opts: Options, udp_port: int, tls_port: int) -> Iterator[int]:
    """radsecproxy UDP ``udp_port`` → TLS ``tls_port`` (the anchor script), on the client
    core; always stopped."""
    script = str(opts.anchor / "radsecproxy.sh")
    env = _anchor_env(opts)
    command = ["taskset", "-c", str(opts.client_cpu), "bash", script, "start", str(udp_port),
               str(tls_port)]  # fmt: skip
    subprocess.run(command, check=True, timeout=60, env=env)
    try:
        yield udp_port
    finally:
        subprocess.run(["bash", script, "stop", str(udp_port)], timeout=60, env=env, check=False)


def radsec_config(port: int) -> list[str]:
    return [
        "[radsec]",
        "enabled = true",
        'bind = "127.0.0.1"',
        f"port = {port}",
        f'certificate = "{PKI / "server.pem"}"',
        f'private_key = "{PKI / "server.key"}"',
        f'ca_file = "{PKI / "ca.pem"}"',
    ]


def ours(opts: Options, users: Sequence[User], server_cpu: int) -> list[Run]:
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="rc-bench-radsec-") as tmp:
        state = Path(tmp)
        prepare_state(state, users, ANCHOR_USERS, opts.secret.decode())
        tls_port = _free_port(socket.SOCK_STREAM)
        loaded = Loaded(ANCHOR_USERS, 0.0, 0.0, 0.0)
        with (
            our_daemon(state, ANCHOR_USERS, server_cpu, loaded, radsec_config(tls_port)) as daemon,
            radsecproxy(opts, _free_port(socket.SOCK_DGRAM), tls_port) as udp,
        ):
            target = Server("radius-contracts-radsec", ANCHOR_USERS, daemon.pid, udp, udp)
            runs += radclient_runs(target, ("pap",), opts)
    return runs


def freeradius_tls(opts: Options, server_cpu: int) -> list[Run]:
    script = str(opts.anchor / "setup-freeradius.sh")
    env = {**_anchor_env(opts, server_cpu), "NUSERS": str(ANCHOR_USERS)}
    subprocess.run(["bash", script, "config", "tls"], check=True, timeout=300, env=env)
    try:
        subprocess.run(["bash", script, "start", "tls"], check=True, timeout=120, env=env)
        pid = int((FR_TLS_RUN / "server.pid").read_text())
        with radsecproxy(opts, FR_PROXY_PORT, FR_TLS_PORT) as udp:
            target = Server("freeradius-tls", ANCHOR_USERS, pid, udp, udp)
            return radclient_runs(target, ("pap",), opts)
    finally:
        subprocess.run(["bash", script, "stop", "tls"], timeout=60, env=env, check=False)


def print_table(runs: Sequence[Run]) -> None:
    print(f"\n{'server':<26} {'runs':>4} {'req/s':>9} {'µs CPU/req':>11} {'lost':>6} {'other%':>7}")
    for label in dict.fromkeys(run.server for run in runs):
        mine = [run for run in runs if run.server == label]
        print(
            f"{label:<26} {len(mine):>4} {statistics.median(r.rps for r in mine):>9,.0f} "
            f"{statistics.median(r.us_per_request for r in mine):>11.1f} "
            f"{sum(r.lost for r in mine):>6} "
            f"{statistics.median(r.extra['other_pct'] for r in mine):>7.0f}"
        )
    print("(medians; server CPU includes work deferred past the run; other% = other processes)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n", 1)[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--freeradius", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run (N)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per server (median)")
    parser.add_argument("--procs", type=int, default=2, help="radclient streams (load.sh PROCS)")
    parser.add_argument("--quiet-wait", type=float, default=20)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--secret", default="perfsecret123", help="the anchor's SECRET")
    parser.add_argument("--anchor", type=Path, default=DEFAULT_ANCHOR)
    parser.add_argument("--out", type=Path, default=Path("/tmp/rc-bench-radsec"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "data"
    opts = Options(
        anchor=args.anchor,
        data=data,
        out=args.out,
        secret=args.secret.encode(),
        requests=args.requests,
        repeats=args.repeats,
        procs=args.procs,
        sockets=1,
        window=1,
        rates=[],
        latency_seconds=0,
        latency_sockets=1,
        client_cpu=args.client_cpu,
        quiet_wait=args.quiet_wait,
        tests=("pap",),
    )
    make_pki(args.anchor)
    users = make_data(args.anchor, data, args.requests)
    runs: list[Run] = []
    if args.freeradius:
        print("FreeRADIUS tls site through radsecproxy")
        runs += freeradius_tls(opts, args.server_cpu)
    print("radius-contracts [radsec] through radsecproxy")
    runs += ours(opts, users, args.server_cpu)
    print_table(runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
