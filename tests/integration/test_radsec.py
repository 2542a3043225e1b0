"""RadSec (RADIUS over TLS, RFC 6614) against a running daemon: our own TLS client as the NAS.

A PKI is made for the module with the openssl command line (tests/pki.py). The daemon listens
for RadSec on an ephemeral loopback port beside its UDP ports; NAS are told apart by their
loopback source address (127.0.0.x) as over UDP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import random
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Factory, RunningDaemon, add_nas, make_settings, start_daemon, stop_daemon
from pki import make_pki
from radclient import radclient
from radius_client import RadiusClient, attr
from radius_contracts.radius import codec
from radius_contracts.radius.radsec_tls import certificate_fingerprint
from radius_contracts.settings import RadsecSettings
from radsec_client import RadsecClient, client_context, disconnect_asked
from served import free_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("radsec-pki"))


def _loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "asyncio":
        return asyncio.new_event_loop()
    uvloop = pytest.importorskip("uvloop")
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def served(
    request: pytest.FixtureRequest, pki: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningDaemon, threading.Thread]]:
    """The daemon on asyncio, and on uvloop as `serve` runs it: their TLS transports differ."""
    # Its own copy of the server files, which the reload test breaks and renews.
    tls = tmp_path_factory.mktemp("radsec-tls")
    for name in ("server.pem", "server.key", "ca.pem"):
        shutil.copy(pki / name, tls / name)
    settings = make_settings(tmp_path_factory.mktemp("radsec-state"), None)
    radsec = RadsecSettings(
        enabled=True,
        bind=("127.0.0.1",),
        port=0,
        certificate=tls / "server.pem",
        private_key=tls / "server.key",
        ca_file=tls / "ca.pem",
        handshake_timeout=2.0,
        idle_timeout=30.0,
        max_in_flight=4,
    )
    running, thread = start_daemon(
        settings.model_copy(update={"radsec": radsec}), loop=_loop(request.param)
    )
    yield running, thread
    stop_daemon(running, thread)


@pytest.fixture(scope="module")
def daemon(served: tuple[RunningDaemon, threading.Thread]) -> RunningDaemon:
    return served[0]


@pytest.fixture(scope="module")
def tls(daemon: RunningDaemon) -> Path:
    """Where the daemon's TLS files are."""
    assert daemon.settings.radsec.certificate is not None
    return daemon.settings.radsec.certificate.parent


@pytest.fixture(scope="module")
def api(daemon: RunningDaemon) -> httpx.Client:
    return daemon.client(daemon.admin_token)


@pytest.fixture(scope="module")
def nas(api: httpx.Client) -> dict[str, Any]:
    """The NAS at 127.0.0.1; over RadSec its secret is "radsec" (RFC 6614 §2.3)."""
    return add_nas(api, "udp-secret-" + secrets.token_hex(4))


@pytest.fixture
def make(api: httpx.Client) -> Factory:
    return Factory(api)


def _port(daemon: RunningDaemon) -> int:
    assert daemon.daemon.radsec_port is not None
    return daemon.daemon.radsec_port


def _counts(daemon: RunningDaemon) -> dict[str, int]:
    assert daemon.daemon.radsec is not None
    return dict(daemon.daemon.radsec.counts)


def _wait_count(daemon: RunningDaemon, name: str, at_least: int) -> int:
    deadline = time.monotonic() + 5
    while True:
        count = _counts(daemon).get(name, 0)
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _connect(daemon: RunningDaemon, pki: Path, cert: str = "nas", **kwargs: Any) -> RadsecClient:
    return RadsecClient(_port(daemon), client_context(pki, cert), **kwargs)


def _pap(client: RadsecClient, user: str, password: str) -> bool:
    reply = client.exchange(client.access_request(user, password))
    assert reply is not None
    return reply.accepted


# -- what a NAS does over RadSec -----------------------------------------------------------------


def test_pap_accept_and_reject_over_one_connection(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "tls-pw"})
    user = contract["config"]["username"]
    with _connect(daemon, pki) as client:
        assert _pap(client, user, "tls-pw")
        assert not _pap(client, user, "wrong")
        # Many packets in flight on one stream (RFC 6614 §2.5): sent together, all answered.
        requests = [client.access_request(user, "tls-pw") for _ in range(3)]
        client.send_raw(b"".join(requests))
        identifiers = set()
        for _ in requests:
            data = client.receive()
            assert data is not None
            assert data[0] == codec.Code.ACCESS_ACCEPT
            identifiers.add(data[1])
        assert identifiers == {request[1] for request in requests}


def test_the_udp_secret_is_not_the_radsec_one(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "tls-pw"})
    user = contract["config"]["username"]
    with _connect(daemon, pki, secret=b"udp-secret-wrong") as client:
        # The Message-Authenticator does not verify with "radsec": dropped, and since a
        # stream discards what UDP would, unanswered.
        assert client.exchange(client.access_request(user, "tls-pw"), timeout=1.0) is None


def test_status_server_is_answered(daemon: RunningDaemon, pki: Path, nas: dict[str, Any]) -> None:
    with _connect(daemon, pki) as client:
        reply = client.exchange(client.status_server())
        assert reply is not None and reply.code == codec.Code.ACCESS_ACCEPT


def test_accounting_is_stored_once_and_duplicates_are_answered_from_the_cache(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "acct-pw"})
    user = contract["config"]["username"]
    session_id = "radsec-" + secrets.token_hex(4)
    common = (
        attr("Acct-Session-Id", session_id),
        attr("User-Name", user),
        attr("NAS-IP-Address", "127.0.0.1"),
    )
    with _connect(daemon, pki) as client:
        start = client.accounting_request(attr("Acct-Status-Type", "Start"), *common)
        # Answered once the group commit is durable: give a loaded machine time.
        first = client.exchange(start, timeout=15)
        assert first is not None and first.code == codec.Code.ACCOUNTING_RESPONSE
        again = client.exchange(start, timeout=15)
        assert again is not None and again.packet.data == first.packet.data
        stop = client.accounting_request(
            attr("Acct-Status-Type", "Stop"), *common, attr("Acct-Output-Octets", "5000")
        )
        reply = client.exchange(stop, timeout=15)
        assert reply is not None and reply.code == codec.Code.ACCOUNTING_RESPONSE
    found = api.get("/api/v1/sessions", params={"username": user}).json()["items"]
    assert len(found) == 1, found
    assert found[0]["acct_session_id"] == session_id
    assert found[0]["stopped_at"] is not None and found[0]["output_octets"] == 5000
    stats = daemon.daemon.port_stats["radsec"]
    assert stats.counts.get("duplicates", 0) >= 1


def test_requests_past_the_in_flight_limit_are_dropped_and_counted(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "pw"})
    user = contract["config"]["username"]
    stats = daemon.daemon.port_stats["radsec"]
    before = stats.counts.get("drop_in_flight_limit", 0)
    with _connect(daemon, pki) as client:
        # Wrong passwords: each reject waits out the reject delay, holding its slot.
        requests = [client.access_request(user, "wrong") for _ in range(6)]
        client.send_raw(b"".join(requests))
        answered = 0
        while client.receive(timeout=2.0) is not None:
            answered += 1
    assert answered == 4  # max_in_flight
    assert stats.counts.get("drop_in_flight_limit", 0) - before == 2


# -- who is kept out ---------------------------------------------------------------------------


def _refused(daemon: RunningDaemon, pki: Path, cert: str, source: str = "127.0.0.1") -> bool:
    """Whether a client presenting ``cert`` from ``source`` is refused (during the handshake,
    or right after it: with TLS 1.3 the client finishes before the server checks it)."""
    try:
        client = _connect(daemon, pki, cert, source=source)
    except (ssl.SSLError, OSError):
        return True
    with client:
        try:
            client.send_raw(client.status_server())
        except (ssl.SSLError, OSError):
            return True
        return client.closed_by_server()


def _still_answers(daemon: RunningDaemon, client: RadsecClient) -> None:
    reply = client.exchange(client.status_server())
    assert reply is not None and reply.code == codec.Code.ACCESS_ACCEPT


def test_untrusted_and_expired_certificates_are_refused_and_counted(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any]
) -> None:
    with _connect(daemon, pki) as good:
        _still_answers(daemon, good)
        before = _counts(daemon)
        assert _refused(daemon, pki, "rogue")
        name = "refused_certificate_untrusted"
        assert _wait_count(daemon, name, before.get(name, 0) + 1) == before.get(name, 0) + 1
        assert _refused(daemon, pki, "expired")
        name = "refused_certificate_expired"
        assert _wait_count(daemon, name, before.get(name, 0) + 1) == before.get(name, 0) + 1
        _still_answers(daemon, good)


def test_plain_tcp_and_silent_clients_are_refused_and_counted(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any]
) -> None:
    with _connect(daemon, pki) as good:
        before = _counts(daemon)
        with socket.create_connection(("127.0.0.1", _port(daemon)), 5) as plain:
            # A RADIUS packet where a TLS ClientHello belongs.
            plain.sendall(codec.encode_request(codec.Code.STATUS_SERVER, 1, b"", b"radsec"))
            plain.settimeout(5)
            with pytest.raises(ConnectionError):
                while plain.recv(4096):
                    pass
                raise ConnectionResetError
        assert _wait_count(daemon, "refused_not_tls", before.get("refused_not_tls", 0) + 1) > (
            before.get("refused_not_tls", 0)
        )
        with socket.create_connection(("127.0.0.1", _port(daemon)), 5) as silent:
            silent.settimeout(5)  # the handshake timeout is 2 s
            with pytest.raises(ConnectionError):
                while silent.recv(4096):
                    pass
                raise ConnectionResetError
        name = "refused_handshake_timeout"
        assert _wait_count(daemon, name, before.get(name, 0) + 1) > before.get(name, 0)
        _still_answers(daemon, good)


def test_garbage_frames_close_the_connection_and_are_counted(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any]
) -> None:
    stats = daemon.daemon.port_stats["radsec"]
    with _connect(daemon, pki) as good:
        for garbage in (
            b"\x01\x02\x00\x05xxxxxxxxxxxxxxxxxxxxxxx",  # Length 5: below the 20 of a header
            b"\x01\x02\xff\xff" + bytes(40),  # Length 65535: past 4096
            # A whole packet whose attribute runs past its Length: decodes as malformed.
            b"\x01\x02\x00\x17" + bytes(16) + b"\x01\x09\x00",
        ):
            before = _counts(daemon).get("closed_malformed", 0)
            malformed = stats.counts.get("drop_malformed", 0)
            with _connect(daemon, pki) as bad:
                _still_answers(daemon, bad)
                bad.send_raw(garbage)
                assert bad.closed_by_server()
            assert _wait_count(daemon, "closed_malformed", before + 1) == before + 1
            assert stats.counts.get("drop_malformed", 0) == malformed + 1
            _still_answers(daemon, good)


def test_a_packet_no_server_takes_closes_the_connection(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any]
) -> None:
    stats = daemon.daemon.port_stats["radsec"]
    before = _counts(daemon).get("closed_unexpected_code", 0)
    dropped = stats.counts.get("drop_unexpected_code", 0)
    with _connect(daemon, pki) as good, _connect(daemon, pki) as bad:
        accept = codec.encode_reply(codec.Code.ACCESS_ACCEPT, 1, bytes(16), b"", b"radsec")
        bad.send_raw(accept)
        assert bad.closed_by_server()
        _still_answers(daemon, good)
    assert _wait_count(daemon, "closed_unexpected_code", before + 1) == before + 1
    assert stats.counts.get("drop_unexpected_code", 0) == dropped + 1


def test_fuzzed_streams_never_break_the_listener(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any]
) -> None:
    """Random, truncated and oversized frames and a trickling peer, bounded in count and time:
    no internal error, every bad connection closed, and a good client answered throughout."""
    rng = random.Random(6614)
    server = daemon.daemon.radsec
    assert server is not None
    open_before = len(server.connections)
    stats = daemon.daemon.port_stats["radsec"]
    errors = stats.counts.get("drop_internal_error", 0)
    deadline = time.monotonic() + 60
    with _connect(daemon, pki) as good:
        for round_ in range(40):
            if time.monotonic() > deadline:
                break
            with _connect(daemon, pki) as fuzz:
                for _ in range(rng.randint(1, 8)):
                    kind = rng.random()
                    code = rng.choice([1, 4, 12, 2, 40, 43, 255, 0])
                    if kind < 0.3:  # a well-framed packet of random attribute bytes
                        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 60)))
                        frame = bytes((code, rng.getrandbits(8))) + (20 + len(body)).to_bytes(
                            2, "big"
                        )
                        frame += bytes(16) + body
                    elif kind < 0.6:  # a Length field from anywhere in 0..65535
                        frame = bytes((code, 1)) + rng.getrandbits(16).to_bytes(2, "big")
                        frame += bytes(rng.randint(0, 40))
                    else:  # random bytes
                        frame = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 80)))
                    try:
                        fuzz.send_raw(frame)
                    except OSError:
                        break
            if round_ % 10 == 0:
                _still_answers(daemon, good)
        # A peer that trickles a packet's header one octet at a time is served when it ends.
        with _connect(daemon, pki) as slow:
            packet = slow.status_server()
            for octet in packet[:4]:
                slow.send_raw(bytes((octet,)))
                time.sleep(0.05)
            slow.send_raw(packet[4:])
            data = slow.receive()
            assert data is not None and data[0] == codec.Code.ACCESS_ACCEPT
        _still_answers(daemon, good)
    assert stats.counts.get("drop_internal_error", 0) == errors
    deadline = time.monotonic() + 5  # every fuzzing connection is gone, none left half open
    while len(server.connections) > open_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.connections) <= open_before


def test_an_idle_connection_is_closed_and_counted(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any]
) -> None:
    server = daemon.daemon.radsec
    assert server is not None
    running = server.options

    def set_idle(seconds: float) -> None:
        options = dataclasses.replace(running, idle_timeout=seconds)
        daemon.loop.call_soon_threadsafe(setattr, server, "options", options)

    set_idle(1.0)
    try:
        time.sleep(0.1)
        before = _counts(daemon).get("closed_idle", 0)
        # Connections an earlier test of this module left open go idle too, and are counted.
        others = len(server.connections)
        with _connect(daemon, pki) as client:
            _still_answers(daemon, client)
            assert client.closed_by_server(timeout=10)
        closed = _wait_count(daemon, "closed_idle", before + 1)
        assert before + 1 <= closed <= before + 1 + others
    finally:
        set_idle(running.idle_timeout)


def test_a_stranger_address_is_refused_before_tls(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any]
) -> None:
    before = _counts(daemon).get("refused_unknown_nas", 0)
    assert _refused(daemon, pki, "nas", source="127.0.0.77")
    assert _wait_count(daemon, "refused_unknown_nas", before + 1) == before + 1


def test_a_pinned_nas_must_present_its_certificate(
    daemon: RunningDaemon, pki: Path, api: httpx.Client
) -> None:
    pinned = add_nas(api, "udp-secret-" + secrets.token_hex(4), "127.0.0.2", radsec_pin="nas-2")
    assert pinned["radsec_pin"] == "nas-2"
    before = _counts(daemon).get("refused_pin_mismatch", 0)
    assert _refused(daemon, pki, "nas", source="127.0.0.2")  # CN=nas-1
    assert _wait_count(daemon, "refused_pin_mismatch", before + 1) == before + 1
    with _connect(daemon, pki, "other", source="127.0.0.2") as client:  # CN=nas-2
        _still_answers(daemon, client)
    # A fingerprint pin names one certificate, whatever its subject.
    der = ssl.PEM_cert_to_DER_cert((pki / "nas.pem").read_text())
    fingerprint = certificate_fingerprint(der).upper().replace("SHA256", "sha256")
    response = api.patch(f"/api/v1/nas/{pinned['id']}", json={"radsec_pin": fingerprint})
    assert response.status_code == 200, response.text
    with _connect(daemon, pki, "nas", source="127.0.0.2") as client:
        _still_answers(daemon, client)
    assert _refused(daemon, pki, "other", source="127.0.0.2")


def test_a_nas_may_set_its_own_radsec_secret(
    daemon: RunningDaemon, pki: Path, api: httpx.Client, make: Factory
) -> None:
    own = "own-radsec-" + secrets.token_hex(4)
    created = add_nas(api, "udp-secret-" + secrets.token_hex(4), "127.0.0.3", radsec_secret=own)
    assert created["radsec_secret_set"] is True and "radsec_secret" not in created
    contract = make.contract(config={"password": "pw3"})
    user = contract["config"]["username"]
    with _connect(daemon, pki, source="127.0.0.3", secret=own.encode()) as client:
        assert _pap(client, user, "pw3")
    with _connect(daemon, pki, source="127.0.0.3") as client:  # "radsec" is not it any more
        assert client.exchange(client.access_request(user, "pw3"), timeout=1.0) is None


# -- CoA over the NAS's connection ---------------------------------------------------------------


def _disconnect_over_radsec(
    client: RadsecClient, api: httpx.Client, user: str, *identity: bytes
) -> httpx.Response:
    """Start a session over ``client``, ask the API to disconnect it, and ACK the
    Disconnect-Request that must arrive on the same connection; the API's answer."""
    session_id = "coa-" + secrets.token_hex(4)
    start = client.accounting_request(
        attr("Acct-Status-Type", "Start"),
        attr("Acct-Session-Id", session_id),
        attr("User-Name", user),
        *identity,
    )
    reply = client.exchange(start, timeout=15)
    assert reply is not None and reply.code == codec.Code.ACCOUNTING_RESPONSE
    with disconnect_asked(api, user) as outcome:
        data = client.receive(timeout=10)
        assert data is not None, "no Disconnect-Request on the RadSec connection"
        request = codec.decode(data)
        assert request.code == codec.Code.DISCONNECT_REQUEST
        # Signed with the RadSec secret (RFC 6614 §2.3), as every packet on the stream.
        assert codec.verify_request_authenticator(request, b"radsec")
        assert request.get(codec.ACCT_SESSION_ID) == session_id.encode()
        ack = codec.encode_reply(
            codec.Code.DISCONNECT_ACK, request.identifier, request.authenticator, b"", b"radsec"
        )
        client.send_raw(ack)
    assert outcome, "the API did not answer"
    return outcome[0]


def test_disconnect_goes_over_the_nas_radsec_connection(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory, api: httpx.Client
) -> None:
    user = make.contract(config={"password": "coa-pw"})["config"]["username"]
    with _connect(daemon, pki) as client:
        answer = _disconnect_over_radsec(client, api, user, attr("NAS-IP-Address", "127.0.0.1"))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["kind"], answer.json()["outcome"]) == ("disconnect", "ack")


def test_a_nas_known_by_a_network_is_reached_over_radsec_without_a_udp_address(
    daemon: RunningDaemon, pki: Path, make: Factory, api: httpx.Client
) -> None:
    # Over UDP such a session cannot be reached: no coa_address and no NAS-IP-Address inside
    # the network. Its RadSec connection needs no address.
    add_nas(api, "udp-secret-" + secrets.token_hex(4), "127.0.0.16/29")
    user = make.contract(config={"password": "coa-pw"})["config"]["username"]
    with _connect(daemon, pki, source="127.0.0.17") as client:
        answer = _disconnect_over_radsec(client, api, user, attr("NAS-Identifier", "pop-7"))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["kind"], answer.json()["outcome"]) == ("disconnect", "ack")


# -- SIGHUP --------------------------------------------------------------------------------------


def _reload(daemon: RunningDaemon) -> None:
    """SIGHUP's work, waited for."""
    done = daemon.daemon.reloads_ok + daemon.daemon.reloads_failed
    daemon.loop.call_soon_threadsafe(daemon.daemon.reload)
    deadline = time.monotonic() + 30  # it parses every dictionary again: slow on a busy box
    while daemon.daemon.reloads_ok + daemon.daemon.reloads_failed == done:
        assert time.monotonic() < deadline, "the reload did not finish"
        time.sleep(0.05)


def _server_certificate(client: RadsecClient) -> bytes:
    der = client.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
    assert der is not None
    return der


def test_reload_keeps_connections_and_a_bad_file_keeps_the_old_certificates(
    daemon: RunningDaemon, pki: Path, tls: Path, nas: dict[str, Any]
) -> None:
    original = ssl.PEM_cert_to_DER_cert((pki / "server.pem").read_text())
    renewed = ssl.PEM_cert_to_DER_cert((pki / "renewed.pem").read_text())
    with _connect(daemon, pki) as established:
        assert _server_certificate(established) == original
        failed = _counts(daemon).get("tls_reload_failed", 0)
        # A broken key: the reload keeps the running certificate and says why.
        (tls / "server.key").write_text("not a key\n")
        _reload(daemon)
        assert _counts(daemon).get("tls_reload_failed", 0) == failed + 1
        _still_answers(daemon, established)
        with _connect(daemon, pki) as fresh:
            assert _server_certificate(fresh) == original
            _still_answers(daemon, fresh)
        # An expired certificate is refused the same way.
        shutil.copy(pki / "expired.pem", tls / "server.pem")
        shutil.copy(pki / "expired.key", tls / "server.key")
        _reload(daemon)
        assert _counts(daemon).get("tls_reload_failed", 0) == failed + 2
        with _connect(daemon, pki) as fresh:
            assert _server_certificate(fresh) == original
        # A renewed certificate: new handshakes get it, the established connection goes on.
        shutil.copy(pki / "renewed.pem", tls / "server.pem")
        shutil.copy(pki / "renewed.key", tls / "server.key")
        _reload(daemon)
        assert _counts(daemon).get("tls_reload_failed", 0) == failed + 2
        with _connect(daemon, pki) as fresh:
            assert _server_certificate(fresh) == renewed
            _still_answers(daemon, fresh)
        _still_answers(daemon, established)


def test_metrics_show_radsec_connections_and_packets(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], api: httpx.Client
) -> None:
    with _connect(daemon, pki) as client:
        _still_answers(daemon, client)
        text = api.get("/metrics").text
    assert 'radius_contracts_radsec_connections_total{outcome="accepted"}' in text
    assert "radius_contracts_radsec_open_connections" in text
    assert 'port="radsec"' in text


# -- interop: radsecproxy as the RadSec client, radclient as the NAS behind it -------------------

PROXY_SECRET = "proxy-udp-secret"


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _radsecproxy(
    daemon: RunningDaemon, pki: Path, run: Path, *, status_server: str = "off"
) -> Iterator[int]:
    """radsecproxy 1.9 (Debian package) forwarding UDP on the yielded port to our RadSec port,
    with the NAS certificate; skipped where it is not installed. ``status_server`` is its
    ``StatusServer`` option: ``on`` makes it probe our daemon with Status-Server over TLS."""
    binary = shutil.which("radsecproxy")
    if binary is None:
        pytest.skip("radsecproxy is not installed")
    udp_port = free_port(socket.SOCK_DGRAM)
    config = run / "radsecproxy.conf"
    config.write_text(
        f"ListenUDP 127.0.0.1:{udp_port}\nLogLevel 3\n"
        f"tls nas {{\n CACertificateFile {pki / 'ca.pem'}\n"
        f" CertificateFile {pki / 'nas.pem'}\n CertificateKeyFile {pki / 'nas.key'}\n}}\n"
        f"client localhost {{\n host 127.0.0.1\n type udp\n secret {PROXY_SECRET}\n}}\n"
        f"server target {{\n host localhost\n port {_port(daemon)}\n type tls\n tls nas\n"
        f" secret radsec\n StatusServer {status_server}\n}}\n"
        "realm * {\n server target\n accountingServer target\n}\n"
    )
    log = (run / "stderr").open("w")
    proc = subprocess.Popen([binary, "-f", "-c", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while not _udp_port_taken(udp_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"radsecproxy did not start: {(run / 'stderr').read_text()}")
            time.sleep(0.1)
        yield udp_port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.fixture(scope="module")
def radsecproxy(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    yield from _radsecproxy(daemon, pki, tmp_path_factory.mktemp("radsecproxy"))


def test_interop_pap_chap_and_mschapv2_through_radsecproxy(radsecproxy: int, make: Factory) -> None:
    contract = make.contract(config={"password": "interop-pw"})
    user = contract["config"]["username"]
    pap = f'User-Name = "{user}"\nUser-Password = "interop-pw"\nMessage-Authenticator = 0x00\n'
    result = radclient(radsecproxy, PROXY_SECRET, pap, timeout=5.0)
    assert result.code == "Access-Accept", result.output
    wrong = pap.replace("interop-pw", "nope")
    assert radclient(radsecproxy, PROXY_SECRET, wrong, timeout=5.0).code == "Access-Reject"
    # RFC 2865 §5.3: no CHAP-Challenge, so the Request Authenticator is the challenge; the
    # proxy must keep it as a CHAP-Challenge when it makes its own authenticator.
    chap = f'User-Name = "{user}"\nCHAP-Password = "interop-pw"\nMessage-Authenticator = 0x00\n'
    result = radclient(radsecproxy, PROXY_SECRET, chap, timeout=5.0)
    assert result.code == "Access-Accept", result.output
    with RadiusClient(radsecproxy, PROXY_SECRET, timeout=5.0) as client:
        packet, *_challenges = client.mschapv2_request(user, "interop-pw")
        reply = client.exchange(packet)
        assert reply is not None and reply.accepted
        assert reply.values().get("MS-CHAP2-Success")


def test_interop_accounting_through_radsecproxy_is_stored_once(
    radsecproxy: int, make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "interop-pw"})
    user = contract["config"]["username"]
    session_id = "interop-" + secrets.token_hex(4)
    common = f'Acct-Session-Id = "{session_id}"\nUser-Name = "{user}"\nNAS-IP-Address = 127.0.0.1\n'
    start = radclient(radsecproxy, PROXY_SECRET, "Acct-Status-Type = Start\n" + common,
                      command="acct", timeout=10.0)  # fmt: skip
    assert start.code == "Accounting-Response", start.output
    stop = radclient(
        radsecproxy, PROXY_SECRET,
        "Acct-Status-Type = Stop\nAcct-Input-Octets = 1234\n" + common,
        command="acct", timeout=10.0,
    )  # fmt: skip
    assert stop.code == "Accounting-Response", stop.output
    found = api.get("/api/v1/sessions", params={"username": user}).json()["items"]
    assert len(found) == 1, found
    assert found[0]["stopped_at"] is not None and found[0]["input_octets"] == 1234


def _status_server_count(api: httpx.Client) -> int:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("radius_contracts_radius_packets_total{") and all(
            label in line for label in ('port="radsec"', 'outcome="status_server"')
        ):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def test_interop_radsecproxy_status_server_probes_are_answered(
    daemon: RunningDaemon, pki: Path, nas: dict[str, Any], make: Factory, api: httpx.Client,
    tmp_path: Path, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    """RFC 5997 over TLS with a real client: radsecproxy with ``StatusServer on`` tracks our
    daemon only by Status-Server; it forwards requests only while those probes are answered.
    Its first probe comes about 25 s after it connects (a fixed period in radsecproxy 1.9), so
    this runs on one event loop only."""
    if request.node.callspec.params.get("served") != "asyncio":
        pytest.skip("the 25-second wait for radsecproxy's first probe is paid on asyncio only")
    before = _status_server_count(api)
    contract = make.contract(config={"password": "interop-pw"})
    pap = (
        f'User-Name = "{contract["config"]["username"]}"\nUser-Password = "interop-pw"\n'
        "Message-Authenticator = 0x00\n"
    )
    for port in _radsecproxy(daemon, pki, tmp_path, status_server="on"):
        deadline = time.monotonic() + 60
        while _status_server_count(api) <= before:
            assert time.monotonic() < deadline, (tmp_path / "stderr").read_text()
            time.sleep(0.2)
        result = radclient(port, PROXY_SECRET, pap, timeout=5.0)
        assert result.code == "Access-Accept", result.output
    assert "got status server response from target" in (tmp_path / "stderr").read_text()
