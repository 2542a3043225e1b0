"""RADIUS/1.1 (RFC 9765) over RadSec: negotiated by ALPN, no MD5 and no secret on the wire.

Our TLS client offers "radius/1.1" and speaks the RADIUS/1.1 packet format (a Token instead of
Identifier and Authenticator, attributes unhidden, no Message-Authenticator) against a daemon
in the default ``allow`` mode (asyncio and uvloop, whose TLS transports differ) and one that
``require``s it.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import shutil
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Factory, RunningDaemon, add_nas, make_settings, start_daemon, stop_daemon
from pki import make_pki
from radius_client import Reply, attr
from radius_contracts.aaa import mschap
from radius_contracts.radius import codec
from radius_contracts.radius.radius11 import PROTOCOL_ERROR, UNSUPPORTED_EXTENSION
from radius_contracts.settings import RadsecSettings
from radsec_client import (
    RadsecClient,
    as_radius11,
    client_context,
    disconnect_asked,
    radius11,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

V11 = ["radius/1.1"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("radius11-pki"))


def _serve(
    pki: Path, tmp: pytest.TempPathFactory, mode: str, loop: asyncio.AbstractEventLoop
) -> tuple[RunningDaemon, threading.Thread]:
    settings = make_settings(tmp.mktemp(f"radius11-{mode}"), None)
    radsec = RadsecSettings(
        enabled=True,
        bind=("127.0.0.1",),
        port=0,
        certificate=pki / "server.pem",
        private_key=pki / "server.key",
        ca_file=pki / "ca.pem",
        handshake_timeout=2.0,
        radius_1_1=mode,  # type: ignore[arg-type]
    )
    return start_daemon(settings.model_copy(update={"radsec": radsec}), loop=loop)


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def daemon(
    request: pytest.FixtureRequest, pki: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningDaemon]:
    """The daemon in the default mode, ``allow``."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    running, thread = _serve(pki, tmp_path_factory, "allow", loop)
    yield running
    stop_daemon(running, thread)


@pytest.fixture(scope="module")
def api(daemon: RunningDaemon) -> httpx.Client:
    return daemon.client(daemon.admin_token)


@pytest.fixture(scope="module")
def nas(api: httpx.Client) -> dict[str, Any]:
    return add_nas(api, "udp-secret-" + secrets.token_hex(4))


@pytest.fixture
def make(api: httpx.Client) -> Factory:
    return Factory(api)


def _connect(daemon: RunningDaemon, pki: Path, **kwargs: Any) -> RadsecClient:
    assert daemon.daemon.radsec_port is not None
    return RadsecClient(daemon.daemon.radsec_port, client_context(pki, **kwargs))


def _token() -> bytes:
    return secrets.token_bytes(4)


def _pap(user: str, password: bytes, *extra: bytes) -> bytes:
    # RFC 9765 §5.1.1: User-Password as a plain string, no padding, no hiding.
    attributes = codec.attribute(codec.USER_NAME, user.encode()) + codec.attribute(
        codec.USER_PASSWORD, password
    )
    return radius11(codec.Code.ACCESS_REQUEST, _token(), attributes + b"".join(extra))


def _assert_radius11_reply(reply: codec.Packet | None, request: bytes) -> codec.Packet:
    assert reply is not None, "no reply"
    data = reply.data
    # RFC 9765 §4.1: Reserved-1 zero, the request's Token, Reserved-2 zero; §5.3: no
    # Message-Authenticator.
    assert data[1] == 0 and data[4:8] == request[4:8] and data[8:20] == bytes(12)
    assert not reply.has_message_authenticator
    return reply


def test_alpn_picks_radius11_and_pap_travels_unhidden(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "v11-pw"})
    user = contract["config"]["username"]
    with _connect(daemon, pki, alpn=V11) as client:
        assert client.sock.selected_alpn_protocol() == "radius/1.1"  # type: ignore[union-attr]
        request = _pap(user, b"v11-pw")
        reply = _assert_radius11_reply(client.exchange11(request), request)
        assert reply.code == codec.Code.ACCESS_ACCEPT
        request = _pap(user, b"wrong")
        reply = _assert_radius11_reply(client.exchange11(request), request)
        assert reply.code == codec.Code.ACCESS_REJECT
        # A Message-Authenticator, even a wrong one, is ignored, not checked (§5.3).
        request = _pap(user, b"v11-pw", codec.attribute(codec.MESSAGE_AUTHENTICATOR, bytes(16)))
        assert _assert_radius11_reply(client.exchange11(request), request).code == 2
        # Many requests in flight, answered by Token whatever the order.
        requests = [_pap(user, b"v11-pw") for _ in range(20)]
        client.send_raw(b"".join(requests))
        tokens = set()
        for _ in requests:
            data = client.receive()
            assert data is not None and data[0] == codec.Code.ACCESS_ACCEPT
            tokens.add(data[4:8])
        assert tokens == {request[4:8] for request in requests}


def test_radius10_clients_are_unchanged_in_allow_mode(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "v10-pw"})
    user = contract["config"]["username"]
    for alpn in (None, ["radius/1.0"], ["h2"]):
        with _connect(daemon, pki, alpn=alpn) as client:
            assert client.sock.selected_alpn_protocol() in (None, "radius/1.0")  # type: ignore[union-attr]
            reply = client.exchange(client.access_request(user, "v10-pw"))
            assert reply is not None and reply.accepted


def test_chap_needs_its_challenge_attribute(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "chap-pw"})
    user = contract["config"]["username"]
    challenge, ident = secrets.token_bytes(16), b"\x07"
    response = hashlib.md5(ident + b"chap-pw" + challenge).digest()
    name = codec.attribute(codec.USER_NAME, user.encode())
    chap = codec.attribute(codec.CHAP_PASSWORD, ident + response)
    with _connect(daemon, pki, alpn=V11) as client:
        request = radius11(
            1, _token(), name + chap + codec.attribute(codec.CHAP_CHALLENGE, challenge)
        )
        assert _assert_radius11_reply(client.exchange11(request), request).code == 2
        # Without CHAP-Challenge there is no challenge at all (no Request Authenticator in
        # RADIUS/1.1, §5.1.2): dropped and counted, the connection stays.
        stats = daemon.daemon.port_stats["radsec"]
        before = stats.counts.get("malformed_chap_without_challenge", 0)
        assert client.exchange11(radius11(1, _token(), name + chap), timeout=1.0) is None
        assert stats.counts.get("malformed_chap_without_challenge", 0) == before + 1
        request = _pap(user, b"chap-pw")
        assert _assert_radius11_reply(client.exchange11(request), request).code == 2


def test_mschapv2_keys_come_unhidden(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "clientPass"})
    user = contract["config"]["username"]
    with _connect(daemon, pki, alpn=V11) as client:
        packet, _auth, _peer, nt_response = client.mschapv2_request(user, "clientPass")
        request = as_radius11(packet, _token())
        reply = _assert_radius11_reply(client.exchange11(request), request)
    assert reply.code == codec.Code.ACCESS_ACCEPT
    values = Reply(reply, b"").values()
    send_key, recv_key = mschap.mppe_keys_128(mschap.nt_password_hash("clientPass"), nt_response)
    # RFC 9765 §5.1.4: MS-MPPE keys as their plain value, no salt, no hiding.
    assert values["MS-MPPE-Send-Key"] == [send_key]
    assert values["MS-MPPE-Recv-Key"] == [recv_key]


def test_tunnel_password_keeps_its_tag_and_loses_the_salt(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory, api: httpx.Client
) -> None:
    manufacturer = make.manufacturer()
    rows = [
        {"attribute": "Tunnel-Type:2", "template": "VLAN"},
        {"attribute": "Tunnel-Password:2", "template": "tunnel-secret"},
    ]
    make.layout(manufacturer_id=manufacturer["id"], attributes=rows)
    contract = make.contract(config={"password": "tp"})
    patch = api.patch(f"/api/v1/nas/{nas['id']}", json={"manufacturer_id": manufacturer["id"]})
    assert patch.status_code == 200, patch.text
    try:
        with _connect(daemon, pki, alpn=V11) as client:
            request = _pap(contract["config"]["username"], b"tp")
            reply = _assert_radius11_reply(client.exchange11(request), request)
    finally:
        api.patch(f"/api/v1/nas/{nas['id']}", json={"manufacturer_id": nas["manufacturer_id"]})
    assert reply.code == codec.Code.ACCESS_ACCEPT
    # RFC 9765 §5.1.3: a tagged text attribute: Tag octet, then the password as is.
    assert Reply(reply, b"").values()["Tunnel-Password"] == [b"\x02tunnel-secret"]


def test_status_server_and_accounting(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "acct"})
    user = contract["config"]["username"]
    session_id = "v11-" + secrets.token_hex(4)
    with _connect(daemon, pki, alpn=V11) as client:
        # No Message-Authenticator needed for Status-Server any more (§5.3).
        request = radius11(codec.Code.STATUS_SERVER, _token(), b"")
        assert _assert_radius11_reply(client.exchange11(request), request).code == 2
        start = radius11(
            codec.Code.ACCOUNTING_REQUEST,
            _token(),
            attr("Acct-Status-Type", "Start")
            + attr("Acct-Session-Id", session_id)
            + attr("User-Name", user)
            + attr("NAS-IP-Address", "127.0.0.1"),
        )
        reply = _assert_radius11_reply(client.exchange11(start, timeout=15), start)
        assert reply.code == codec.Code.ACCOUNTING_RESPONSE
    items = api.get("/api/v1/sessions", params={"username": user}).json()["items"]
    assert [item["acct_session_id"] for item in items] == [session_id]


def test_disconnect_goes_out_as_radius11(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "coa"})
    user = contract["config"]["username"]
    session_id = "v11-coa-" + secrets.token_hex(4)
    with _connect(daemon, pki, alpn=V11) as client:
        start = radius11(
            codec.Code.ACCOUNTING_REQUEST,
            _token(),
            attr("Acct-Status-Type", "Start")
            + attr("Acct-Session-Id", session_id)
            + attr("User-Name", user)
            + attr("NAS-IP-Address", "127.0.0.1"),
        )
        assert client.exchange11(start, timeout=15) is not None
        with disconnect_asked(api, user) as outcome:
            data = client.receive(timeout=10)
            assert data is not None, "no Disconnect-Request on the RadSec connection"
            request = codec.decode(data)
            assert request.code == codec.Code.DISCONNECT_REQUEST
            assert data[1] == 0 and data[8:20] == bytes(12)
            assert not request.has_message_authenticator
            assert request.get(codec.ACCT_SESSION_ID) == session_id.encode()
            client.send_raw(radius11(codec.Code.DISCONNECT_ACK, data[4:8], b""))
    assert outcome and outcome[0].status_code == 200, outcome and outcome[0].text
    assert (outcome[0].json()["kind"], outcome[0].json()["outcome"]) == ("disconnect", "ack")


def test_radius11_over_tls12_is_refused(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any]
) -> None:
    before = dict(daemon.daemon.radsec.counts)  # type: ignore[union-attr]
    with _connect(daemon, pki, alpn=V11, maximum=ssl.TLSVersion.TLSv1_2) as client:
        assert client.closed_by_server()
    counts = daemon.daemon.radsec.counts  # type: ignore[union-attr]
    name = "refused_radius11_needs_tls13"
    assert counts.get(name, 0) == before.get(name, 0) + 1


# -- a daemon that requires RADIUS/1.1 ------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running, thread = _serve(pki, tmp_path_factory, "require", asyncio.new_event_loop())
    add_nas(running.client(running.admin_token), "udp-" + secrets.token_hex(4))
    yield running
    stop_daemon(running, thread)


def test_require_answers_radius10_with_protocol_error_and_closes(
    strict: RunningDaemon, pki: Path
) -> None:
    with _connect(strict, pki) as client:
        request = client.status_server()
        client.send_raw(request)
        data = client.receive(timeout=5)
        assert data is not None, "no Protocol-Error"
        reply = codec.decode(data)
        # RFC 7930 §4 / RFC 9765 §3.4: Protocol-Error, Error-Cause 406 (Unsupported
        # Extension), signed as RADIUS/1.0 since that is what the client speaks.
        assert reply.code == PROTOCOL_ERROR and reply.identifier == request[1]
        assert reply.get(codec.ERROR_CAUSE) == UNSUPPORTED_EXTENSION.to_bytes(4, "big")
        assert codec.verify_response_authenticator(reply, b"radsec", request[4:20])
        assert client.closed_by_server()
    deadline = time.monotonic() + 5
    counts = strict.daemon.radsec.counts  # type: ignore[union-attr]
    while counts.get("refused_radius11_required", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts.get("refused_radius11_required", 0) >= 1


def test_require_serves_radius11(strict: RunningDaemon, pki: Path) -> None:
    with _connect(strict, pki, alpn=V11) as client:
        assert client.sock.version() == "TLSv1.3"  # type: ignore[union-attr]
        request = radius11(codec.Code.STATUS_SERVER, _token(), b"")
        assert _assert_radius11_reply(client.exchange11(request), request).code == 2
