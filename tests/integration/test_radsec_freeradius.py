"""Reverse CoA over RadSec with a real RadSec client: FreeRADIUS 3.2 as the NAS-side proxy.

The chain is radclient (the NAS, UDP) -> FreeRADIUS (UDP listener, proxying to a RadSec home
server) -> our daemon over TLS (RFC 6614). FreeRADIUS 3.2 can take CoA and Disconnect-Requests
from a home server back down its own outgoing TLS connection ("reverse CoA",
draft-ietf-radext-reverse-coa): a ``home_server`` of type ``auth+acct+coa`` with a
``recv_coa { virtual_server = ... }`` section hands them to that virtual server's ``recv-coa``
section, which proxies them on by UDP to the NAS's Dynamic Authorization server (here a
:class:`coa_server.CoaServer`). The test proves that a Disconnect the API asks for goes down
the RadSec connection the session came in on, reaches the NAS behind the proxy, and that its
ACK comes back to the API.
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coa_server import CoaServer
from conftest import Factory, RunningDaemon, add_nas, make_settings, start_daemon, stop_daemon
from pki import make_pki
from radclient import radclient
from radius_contracts.radius import codec
from radius_contracts.settings import RadsecSettings
from radsec_client import disconnect_asked
from served import free_port

FREERADIUS = shutil.which("freeradius") or shutil.which("radiusd")

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl"),
    pytest.mark.skipif(
        FREERADIUS is None, reason="FreeRADIUS (Debian package freeradius) is not installed"
    ),
]

PROXY_SECRET = "proxy-udp-secret"  # radclient -> FreeRADIUS
NAS_COA_SECRET = "nas-coa-secret-42"  # FreeRADIUS -> the NAS's Dynamic Authorization server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("radsec-fr-pki"))


@pytest.fixture(scope="module")
def daemon(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    settings = make_settings(tmp_path_factory.mktemp("radsec-fr-state"), None)
    radsec = RadsecSettings(
        enabled=True,
        bind=("127.0.0.1",),
        port=0,
        certificate=pki / "server.pem",
        private_key=pki / "server.key",
        ca_file=pki / "ca.pem",
        handshake_timeout=5.0,
        idle_timeout=60.0,
    )
    running, thread = start_daemon(settings.model_copy(update={"radsec": radsec}))
    yield running
    stop_daemon(running, thread)


@pytest.fixture(scope="module")
def api(daemon: RunningDaemon) -> httpx.Client:
    return daemon.client(daemon.admin_token)


@pytest.fixture(scope="module")
def nas(api: httpx.Client) -> dict[str, Any]:
    """FreeRADIUS's TLS connections come from 127.0.0.1: the NAS record is there."""
    return add_nas(api, "udp-secret-" + secrets.token_hex(4))


@pytest.fixture
def make(api: httpx.Client) -> Factory:
    return Factory(api)


@pytest.fixture(scope="module")
def nas_coa() -> Iterator[CoaServer]:
    """The NAS's Dynamic Authorization server behind FreeRADIUS: it ACKs every request."""
    with CoaServer(NAS_COA_SECRET.encode()) as server:
        yield server


def _config(run: Path, pki: Path, radsec_port: int, coa_port: int, auth: int, acct: int) -> str:
    """A self-contained radiusd.conf: no modules, no files from /etc."""
    return f"""
prefix = /usr
exec_prefix = /usr
sysconfdir = {run}
localstatedir = {run}
sbindir = /usr/sbin
logdir = {run}
raddbdir = {run}
radacctdir = {run}
confdir = {run}
modconfdir = {run}
run_dir = {run}
db_dir = {run}
libdir = /usr/lib/freeradius
pidfile = {run}/radiusd.pid
max_request_time = 10
cleanup_delay = 1
max_requests = 1024
hostname_lookups = no
proxy_requests = yes
log {{
    destination = stdout
}}
security {{
    allow_core_dumps = no
    reject_delay = 0
    status_server = no
}}
modules {{
}}

client nas {{
    ipaddr = 127.0.0.1
    secret = {PROXY_SECRET}
}}

# Our daemon: RadSec, and it may send CoA/Disconnect back down the same TLS connection.
home_server daemon {{
    type = auth+acct+coa
    ipaddr = 127.0.0.1
    port = {radsec_port}
    proto = tcp
    secret = radsec
    response_window = 10
    tls {{
        ca_file = {pki / "ca.pem"}
        certificate_file = {pki / "nas.pem"}
        private_key_file = {pki / "nas.key"}
    }}
    recv_coa {{
        virtual_server = from-daemon
    }}
}}
home_server_pool daemon {{
    type = fail-over
    home_server = daemon
}}
realm daemon {{
    auth_pool = daemon
    acct_pool = daemon
}}

# The NAS's Dynamic Authorization server (RFC 5176), over UDP.
home_server nas-coa {{
    type = coa
    ipaddr = 127.0.0.1
    port = {coa_port}
    secret = {NAS_COA_SECRET}
    coa {{
        irt = 2
        mrt = 4
        mrc = 2
        mrd = 8
    }}
}}
home_server_pool nas-coa {{
    type = fail-over
    home_server = nas-coa
}}

server from-nas {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {auth}
    }}
    listen {{
        type = acct
        ipaddr = 127.0.0.1
        port = {acct}
    }}
    authorize {{
        update control {{
            &Proxy-To-Realm := "daemon"
        }}
    }}
    authenticate {{
    }}
    preacct {{
        update control {{
            &Proxy-To-Realm := "daemon"
        }}
    }}
    accounting {{
    }}
}}

# What the daemon sends down the TLS connection: on to the NAS by UDP.
server from-daemon {{
    recv-coa {{
        update control {{
            &Home-Server-Pool := "nas-coa"
        }}
    }}
    # FreeRADIUS before 3.2.5 computes the Message-Authenticator of CoA/Disconnect ACKs and
    # NAKs over a zeroed Authenticator instead of the request's (RFC 5176 section 3.5; fixed
    # upstream by "reply packets use request authenticator for Message-Authenticator"), so
    # our daemon rightly refuses the one it relays from the NAS. The Response Authenticator
    # is right: the reply goes back without that optional attribute.
    send-coa {{
        update reply {{
            &Message-Authenticator !* ANY
        }}
    }}
}}
"""


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class FreeRadius:
    """``freeradius -f -X`` on a config of its own; its debug log in ``run/freeradius.log``."""

    def __init__(self, run: Path, config: str, auth: int, acct: int, home_port: int) -> None:
        assert FREERADIUS is not None
        self.auth, self.acct, self.home_port = auth, acct, home_port
        self.log_path = run / "freeradius.log"
        (run / "radiusd.conf").write_text(config)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [FREERADIUS, "-f", "-X", "-d", str(run), "-n", "radiusd"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while "Ready to process requests" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"FreeRADIUS did not start:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        assert _udp_port_taken(acct)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@pytest.fixture(scope="module")
def freeradius(
    daemon: RunningDaemon,
    pki: Path,
    nas: dict[str, Any],
    nas_coa: CoaServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FreeRadius]:
    assert daemon.daemon.radsec_port is not None
    run = tmp_path_factory.mktemp("freeradius")
    auth, acct = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    config = _config(run, pki, daemon.daemon.radsec_port, nas_coa.port, auth, acct)
    server = FreeRadius(run, config, auth, acct, daemon.daemon.radsec_port)
    try:
        yield server
    finally:
        server.stop()


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_disconnect_goes_down_freeradius_radsec_connection_to_the_nas_behind_it(
    freeradius: FreeRadius, nas_coa: CoaServer, make: Factory, api: httpx.Client
) -> None:
    user = make.contract(config={"password": "fr-pw"})["config"]["username"]
    # The subscriber logs in and its session starts, both through FreeRADIUS over RadSec.
    pap = f'User-Name = "{user}"\nUser-Password = "fr-pw"\nMessage-Authenticator = 0x00\n'
    login = radclient(freeradius.auth, PROXY_SECRET, pap, timeout=5.0)
    assert login.code == "Access-Accept", login.output + freeradius.log()[-4000:]
    session_id = "fr-" + secrets.token_hex(4)
    start = radclient(
        freeradius.acct, PROXY_SECRET,
        f'Acct-Status-Type = Start\nAcct-Session-Id = "{session_id}"\nUser-Name = "{user}"\n'
        "NAS-IP-Address = 127.0.0.1\n",
        command="acct", timeout=5.0,
    )  # fmt: skip
    assert start.code == "Accounting-Response", start.output + freeradius.log()[-4000:]

    before = len(nas_coa.received)
    with disconnect_asked(api, user) as outcome:
        arrived = _wait_for(lambda: len(nas_coa.received) > before, timeout=10)
        assert arrived, "no Disconnect-Request reached the NAS:\n" + freeradius.log()[-6000:]
        assert _wait_for(lambda: bool(outcome), timeout=10)
    assert outcome, "the API did not answer"
    answer = outcome[0]
    assert answer.status_code == 200, answer.text + freeradius.log()[-6000:]
    assert (answer.json()["kind"], answer.json()["outcome"]) == ("disconnect", "ack"), (
        answer.text + freeradius.log()[-6000:]
    )

    [request] = nas_coa.packets()[before:]
    assert request.code == codec.Code.DISCONNECT_REQUEST
    # FreeRADIUS signed it anew with the NAS's own secret on its way to the NAS.
    assert codec.verify_request_authenticator(request, NAS_COA_SECRET.encode())
    assert request.get(codec.ACCT_SESSION_ID) == session_id.encode()
    # FreeRADIUS got it from our RadSec port: down its own TLS connection to the daemon.
    came = re.compile(
        rf"Received Disconnect-Request Id \d+ from 127\.0\.0\.1:{freeradius.home_port} "
    )
    assert came.search(freeradius.log()), freeradius.log()[-6000:]
