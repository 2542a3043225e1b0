"""Access-Requests against the running daemon: radclient for PAP/CHAP/Status-Server, our client
for MS-CHAPv2, retransmits and other NAS addresses. Contracts are set up through the real API."""

from __future__ import annotations

import hashlib
import secrets
import socket
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families

from conftest import LO_SECRET as SECRET
from conftest import Factory, RunningDaemon, manufacturer_named, start_daemon, stop_daemon
from radclient import radclient
from radius_client import RadiusClient, attr
from radius_contracts.aaa import mschap
from radius_contracts.radius import codec, hiding
from radius_contracts.settings import load_settings


@pytest.fixture
def client(daemon: RunningDaemon, lo_nas: dict[str, Any]) -> Iterator[RadiusClient]:
    assert daemon.daemon.auth_port is not None
    with RadiusClient(daemon.daemon.auth_port, SECRET) as radius:
        yield radius


def _port(daemon: RunningDaemon) -> int:
    assert daemon.daemon.auth_port is not None
    return daemon.daemon.auth_port


def pap(user: str, password: str, *extra: str) -> str:
    lines = [f'User-Name = "{user}"', f'User-Password = "{password}"', *extra]
    return "\n".join([*lines, "Message-Authenticator = 0x00"]) + "\n"


def _auth_log(api: httpx.Client, contract_id: int, count: int = 1) -> list[dict[str, Any]]:
    """The contract's newest auth log entries, waiting for the writer's next flush."""
    deadline = time.monotonic() + 5
    while True:
        response = api.get(f"/api/v1/contracts/{contract_id}/auth-log")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.1)


# -- PAP, CHAP, Status-Server with radclient ---------------------------------------------------


def test_pap_accept_carries_the_mikrotik_layout(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "pa55-word", "min_upload": "2M"})
    user = contract["config"]["username"]
    result = radclient(_port(daemon), SECRET, pap(user, "pa55-word"))
    assert result.code == "Access-Accept", result.output
    # rx/tx from the router's view: upload/download, then limit-at after the burst fields.
    rate = result.first("Mikrotik-Rate-Limit")
    assert rate is not None and rate.startswith("10M/50M"), result.output
    assert rate.endswith("2M/0"), result.output
    assert "Message-Authenticator" in result.attributes  # always first in our replies


def test_pap_wrong_password_rejects_and_the_auth_log_says_why(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "right-one"})
    user = contract["config"]["username"]
    result = radclient(_port(daemon), SECRET, pap(user, "wrong-one"))
    assert result.code == "Access-Reject", result.output
    assert result.first("Reply-Message") == "authentication failed"
    [entry] = _auth_log(api, contract["id"])
    assert entry["result"] == "reject" and entry["reason"] == "wrong password"
    assert entry["method"] == "pap" and entry["nas_id"] == lo_nas["id"]


def test_unknown_user_rejects_like_a_wrong_password(
    daemon: RunningDaemon, lo_nas: dict[str, Any]
) -> None:
    result = radclient(_port(daemon), SECRET, pap("nobody-here", "whatever"))
    assert result.code == "Access-Reject", result.output
    assert result.first("Reply-Message") == "authentication failed"


def test_chap_accepts_with_the_request_authenticator_as_challenge(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "chap-pw"})
    user = contract["config"]["username"]
    request = f'User-Name = "{user}"\nCHAP-Password = "chap-pw"\nMessage-Authenticator = 0x00\n'
    assert radclient(_port(daemon), SECRET, request).code == "Access-Accept"
    wrong = request.replace('"chap-pw"', '"chap-nope"')
    assert radclient(_port(daemon), SECRET, wrong).code == "Access-Reject"


def test_chap_with_a_chap_challenge_attribute(client: RadiusClient, make: Factory) -> None:
    contract = make.contract(config={"password": "chap-pw2"})
    challenge = b"0123456789abcdef"
    ident = b"\x07"
    response = hashlib.md5(ident + b"chap-pw2" + challenge).digest()
    packet = client.access_request(
        contract["config"]["username"],
        None,
        codec.attribute(codec.CHAP_PASSWORD, ident + response),
        codec.attribute(codec.CHAP_CHALLENGE, challenge),
    )
    reply = client.exchange(packet)
    assert reply is not None and reply.accepted


def test_status_server_is_answered_on_both_ports(
    daemon: RunningDaemon, lo_nas: dict[str, Any]
) -> None:
    request = "Message-Authenticator = 0x00\n"
    unexpected = daemon.daemon.stats["drop_unexpected_code"]
    auth = radclient(_port(daemon), SECRET, request, command="status")
    assert auth.code == "Access-Accept", auth.output
    assert daemon.daemon.acct_port is not None
    acct = radclient(daemon.daemon.acct_port, SECRET, request, command="status")
    assert acct.code == "Accounting-Response", acct.output
    assert daemon.daemon.stats["drop_unexpected_code"] == unexpected  # answered, nothing else


def test_request_without_message_authenticator_is_dropped(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "pw-ma"})
    before = daemon.daemon.stats["drop_missing_message_authenticator"]
    request = f'User-Name = "{contract["config"]["username"]}"\nUser-Password = "pw-ma"\n'
    result = radclient(_port(daemon), SECRET, request, timeout=0.5)
    assert result.code is None, result.output
    assert daemon.daemon.stats["drop_missing_message_authenticator"] > before


def test_a_code_no_server_takes_is_dropped_and_counted_not_an_error(
    daemon: RunningDaemon, client: RadiusClient
) -> None:
    """An Access-Accept or CoA-Request sent to either port, or an Access-Request to the
    accounting port: no answer, counted as an unexpected code, and the listener's error path
    (drop_internal_error) is not taken."""
    stats = daemon.daemon.stats
    unexpected, internal = stats["drop_unexpected_code"], stats["drop_internal_error"]
    assert daemon.daemon.acct_port is not None
    with RadiusClient(daemon.daemon.acct_port, SECRET) as accounting:
        for radius, codes in (
            (client, (codec.Code.ACCESS_ACCEPT, codec.Code.COA_REQUEST)),
            (accounting, (codec.Code.ACCESS_ACCEPT, codec.Code.ACCESS_REQUEST)),
        ):
            for code in codes:
                radius.send_raw(bytes([code, 7, 0, 20]) + secrets.token_bytes(16))
                assert radius.receive(0.5) is None
    assert stats["drop_unexpected_code"] == unexpected + 4
    assert stats["drop_internal_error"] == internal


def test_status_server_with_a_wrong_or_no_message_authenticator_is_not_answered(
    daemon: RunningDaemon, client: RadiusClient
) -> None:
    """RFC 5997 §3: a Status-Server without a valid Message-Authenticator is discarded."""
    stats = daemon.daemon.stats
    bad = stats["drop_bad_message_authenticator"]
    with RadiusClient(_port(daemon), "not-the-secret") as stranger:
        stranger.send_raw(stranger.status_server())  # signed with another secret
        assert stranger.receive(0.5) is None
    bare = bytes([codec.Code.STATUS_SERVER, 3, 0, 20]) + secrets.token_bytes(16)
    client.send_raw(bare)  # no Message-Authenticator at all
    assert client.receive(0.5) is None
    assert stats["drop_bad_message_authenticator"] == bad + 2
    assert client.exchange(client.status_server()) is not None  # the right one still is


def test_a_wrong_message_authenticator_is_a_silent_discard(
    daemon: RunningDaemon, client: RadiusClient, make: Factory
) -> None:
    """RFC 3579 §3.2: right password, Message-Authenticator not matching: no answer."""
    contract = make.contract(config={"password": "ma-pw"})
    packet = bytearray(client.access_request(contract["config"]["username"], "ma-pw"))
    at = bytes(packet).find(bytes([codec.MESSAGE_AUTHENTICATOR, 18]))
    assert at >= 20
    packet[at + 2] ^= 0xFF  # one octet of the HMAC flipped
    bad = daemon.daemon.stats["drop_bad_message_authenticator"]
    client.send_raw(bytes(packet))
    assert client.receive(0.5) is None
    assert daemon.daemon.stats["drop_bad_message_authenticator"] == bad + 1


def test_a_retransmit_gets_the_first_answer_again_and_nothing_more(
    daemon: RunningDaemon, client: RadiusClient, make: Factory
) -> None:
    """A NAS retransmits with the same Identifier and Request Authenticator (RFC 5080 §2.2.2):
    the reply cache answers it; the request is not decided a second time."""
    contract = make.contract(config={"password": "dup-pw"})
    packet = client.access_request(contract["config"]["username"], "dup-pw")
    duplicates = daemon.daemon.stats["duplicates"]
    unexpected = daemon.daemon.stats["drop_unexpected_code"]
    first = client.exchange(packet)
    assert first is not None and first.accepted
    client.send_raw(packet)
    again = client.receive(1.0)
    assert again is not None and again == first.packet.data
    assert client.receive(0.3) is None  # one answer per datagram, no second decision
    assert daemon.daemon.stats["duplicates"] == duplicates + 1
    # An answered request ends there: it is not also dropped as a code nobody takes.
    assert daemon.daemon.acct_port is not None
    with RadiusClient(daemon.daemon.acct_port, SECRET) as accounting:
        start = accounting.accounting_request(
            attr("Acct-Status-Type", "Start"),
            attr("Acct-Session-Id", "dup-" + secrets.token_hex(4)),
            attr("User-Name", contract["config"]["username"]),
        )
        assert accounting.exchange(start) is not None
        assert accounting.receive(0.3) is None  # and answered once
    assert daemon.daemon.stats["drop_unexpected_code"] == unexpected
    # Nor, once the C wire code took it, handed to the Python path as well (which would
    # see its own request in flight and count a duplicate).
    assert daemon.daemon.stats["duplicates"] == duplicates + 1


def test_a_user_password_that_cannot_be_decoded_is_dropped_and_counted(
    daemon: RunningDaemon, client: RadiusClient
) -> None:
    """RFC 2865 §5.2: User-Password is 16 to 128 octets in steps of 16; 17 octets is malformed."""
    stats = daemon.daemon.stats
    malformed, internal = stats["malformed_user_password"], stats["drop_internal_error"]
    packet = codec.encode_request(
        codec.Code.ACCESS_REQUEST,
        11,
        codec.attribute(codec.USER_NAME, b"someone")
        + codec.attribute(codec.USER_PASSWORD, secrets.token_bytes(17)),
        SECRET.encode(),
    )
    client.send_raw(packet)
    assert client.receive(0.5) is None
    assert stats["malformed_user_password"] == malformed + 1
    assert stats["drop_internal_error"] == internal


def test_malformed_and_forged_packets_are_dropped_and_counted_not_errors(
    daemon: RunningDaemon, client: RadiusClient
) -> None:
    """A datagram shorter than its Length field, and an Accounting-Request signed with the
    wrong secret: no answer, each counted for what it is, never through the error path."""
    stats = daemon.daemon.stats
    malformed, forged = stats["drop_malformed"], stats["drop_bad_authenticator"]
    internal = stats["drop_internal_error"]
    client.send_raw(bytes([codec.Code.ACCESS_REQUEST, 9, 0, 60]) + secrets.token_bytes(16))
    assert client.receive(0.5) is None
    assert daemon.daemon.acct_port is not None
    with RadiusClient(daemon.daemon.acct_port, "not-the-secret") as stranger:
        stranger.send_raw(
            stranger.accounting_request(
                attr("Acct-Status-Type", "Start"), attr("Acct-Session-Id", "forged"),
                attr("User-Name", "nobody"),
            )
        )  # fmt: skip
        assert stranger.receive(0.5) is None
    assert stats["drop_malformed"] == malformed + 1
    assert stats["drop_bad_authenticator"] == forged + 1
    assert stats["drop_internal_error"] == internal


@pytest.mark.parametrize("required", [False, True])
def test_message_authenticator_is_required_only_from_nas_that_require_it(
    daemon: RunningDaemon, make: Factory, required: bool
) -> None:
    # The FreeRADIUS importer creates NAS with require_message_authenticator = false: those
    # that never sent one must keep being answered.
    address = "127.0.0.58" if required else "127.0.0.57"
    secret = f"ma-{required}-secret"
    make.nas(address=address, secret=secret, require_message_authenticator=required)
    contract = make.contract(config={"password": "pw-no-ma", "simultaneous_use": None})
    user = contract["config"]["username"]
    missing = daemon.daemon.stats["drop_missing_message_authenticator"]
    with RadiusClient(_port(daemon), secret, source=address, timeout=0.5) as nas:
        without = nas.exchange(nas.access_request(user, "pw-no-ma", message_authenticator=False))
        with_one = nas.exchange(nas.access_request(user, "pw-no-ma"))
    assert with_one is not None and with_one.accepted
    if required:
        assert without is None
        assert daemon.daemon.stats["drop_missing_message_authenticator"] == missing + 1
    else:
        assert without is not None and without.accepted
        assert daemon.daemon.stats["drop_missing_message_authenticator"] == missing


def test_wrong_secret_fails_message_authenticator_and_is_dropped(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract(config={"password": "pw-secret"})
    before = daemon.daemon.stats["drop_bad_message_authenticator"]
    result = radclient(
        _port(daemon), "not-the-secret", pap(contract["config"]["username"], "pw-secret"),
        timeout=0.5,
    )  # fmt: skip
    assert result.code is None
    assert daemon.daemon.stats["drop_bad_message_authenticator"] > before


# -- MS-CHAPv2 ----------------------------------------------------------------------------------


def test_mschapv2_accept_proves_the_server_and_hands_out_mppe_keys(
    client: RadiusClient, make: Factory
) -> None:
    contract = make.contract(config={"password": "clientPass"})
    user = contract["config"]["username"]
    packet, auth_challenge, peer_challenge, nt_response = client.mschapv2_request(
        user, "clientPass"
    )
    reply = client.exchange(packet)
    assert reply is not None and reply.accepted
    values = reply.values()
    [success] = values["MS-CHAP2-Success"]
    expected = mschap.generate_authenticator_response(
        "clientPass", nt_response, peer_challenge, auth_challenge, user.encode()
    )
    assert success[0] == packet_ident(packet) and success[1:].decode() == expected
    send_key, recv_key = mschap.mppe_keys_128(mschap.nt_password_hash("clientPass"), nt_response)
    [send], [recv] = values["MS-MPPE-Send-Key"], values["MS-MPPE-Recv-Key"]
    assert hiding.salt_decrypt(send, client.secret, reply.request_authenticator) == send_key
    assert hiding.salt_decrypt(recv, client.secret, reply.request_authenticator) == recv_key
    assert send[0] & 0x80 and send[:2] != recv[:2]  # RFC 2548: salt high bit, unique salts


def packet_ident(packet: bytes) -> int:
    """The MS-CHAP Ident our test client put in MS-CHAP2-Response."""
    decoded = codec.decode(packet)
    response = decoded.vendor(codec.VENDOR_MICROSOFT, codec.MS_CHAP2_RESPONSE)
    assert response is not None
    return response[0]


def test_mschapv2_wrong_password_rejects_with_ms_chap_error(
    client: RadiusClient, make: Factory
) -> None:
    contract = make.contract(config={"password": "clientPass"})
    packet, *_ = client.mschapv2_request(contract["config"]["username"], "not-it")
    reply = client.exchange(packet)
    assert reply is not None and reply.code == codec.Code.ACCESS_REJECT
    [error] = reply.values()["MS-CHAP-Error"]
    assert b"E=691" in error


# -- authorization ------------------------------------------------------------------------------


def _accept(client: RadiusClient, user: str, password: str, *extra: bytes) -> dict[str, Any]:
    reply = client.exchange(client.access_request(user, password, *extra))
    assert reply is not None
    return {"accepted": reply.accepted, "reply": reply}


def test_suspended_contract_gets_the_suspended_layout(
    client: RadiusClient, make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "pw-s"})
    assert api.post(f"/api/v1/contracts/{contract['id']}/suspend").status_code == 200
    result = _accept(client, contract["config"]["username"], "pw-s")
    assert result["accepted"]
    assert result["reply"].text("Mikrotik-Address-List") == "suspended"


@pytest.mark.parametrize(
    ("action", "reason"), [("deactivate", "inactive"), ("cancel", "cancelled")]
)
def test_inactive_and_cancelled_contracts_are_rejected(
    client: RadiusClient, make: Factory, api: httpx.Client, action: str, reason: str
) -> None:
    contract = make.contract(config={"password": "pw-x"})
    assert api.post(f"/api/v1/contracts/{contract['id']}/{action}").status_code == 200
    reply = client.exchange(client.access_request(contract["config"]["username"], "pw-x"))
    assert reply is not None and not reply.accepted
    assert reply.text("Reply-Message") == f"contract is {reason}"


def test_contract_dates_are_enforced_unless_auto_extend(
    client: RadiusClient, make: Factory
) -> None:
    today = date.today()
    future = make.contract(start_date=str(today + timedelta(days=3)), config={"password": "d"})
    ended = make.contract(
        start_date=str(today - timedelta(days=30)),
        end_date=str(today - timedelta(days=1)),
        config={"password": "d"},
    )
    extended = make.contract(
        start_date=str(today - timedelta(days=30)),
        end_date=str(today - timedelta(days=1)),
        auto_extend=True,
        config={"password": "d"},
    )
    for contract, accepted in ((future, False), (ended, False), (extended, True)):
        assert _accept(client, contract["config"]["username"], "d")["accepted"] is accepted


def test_mac_binding_checks_calling_station_id_in_any_notation(
    client: RadiusClient, make: Factory
) -> None:
    contract = make.contract(config={"password": "m", "mac": "00:11:22:aa:bb:cc"})
    user = contract["config"]["username"]
    good = attr("Calling-Station-Id", "00-11-22-AA-BB-CC")
    bad = attr("Calling-Station-Id", "00-11-22-AA-BB-CD")
    assert _accept(client, user, "m", good)["accepted"]
    refused = _accept(client, user, "m", bad)
    assert not refused["accepted"]
    assert "not the one bound" in (refused["reply"].text("Reply-Message") or "")
    assert not _accept(client, user, "m")["accepted"]


def test_mac_authentication_by_user_name(client: RadiusClient, make: Factory) -> None:
    make.contract(config={"password": "unused", "mac": "02:00:5e:10:20:30"})
    reply = _accept(client, "02005E102030", "02005E102030")
    assert reply["accepted"]
    assert _accept(client, "02:00:5e:10:20:30", "")["accepted"]
    assert not _accept(client, "02:00:5e:10:20:30", "guess")["accepted"]


def test_fixed_addresses_become_framed_attributes(client: RadiusClient, make: Factory) -> None:
    v4 = make.address()
    contract = make.contract(
        config={
            "password": "a",
            "ipv4": v4,
            "ipv6": "2001:db8:77::/64",
            "delegated_ipv6_prefix": "2001:db8:7700::/56",
        }
    )
    reply = _accept(client, contract["config"]["username"], "a")["reply"]
    values = reply.values()
    assert values["Framed-IP-Address"] == [bytes(int(o) for o in v4.split("."))]
    assert values["Framed-IPv6-Prefix"][0][:2] == b"\x00\x40"
    assert values["Delegated-IPv6-Prefix"][0][:2] == b"\x00\x38"


def test_pool_name_is_sent_only_while_the_pool_is_active(
    client: RadiusClient, make: Factory, api: httpx.Client
) -> None:
    pool = make.pool(mode="nas")
    contract = make.contract(config={"password": "p", "pool_name_ipv4": pool["name"]})
    user = contract["config"]["username"]
    assert _accept(client, user, "p")["reply"].text("Framed-Pool") == pool["name"]
    assert api.post(f"/api/v1/radius/pools/{pool['id']}/deactivate").status_code == 200
    assert _accept(client, user, "p")["reply"].text("Framed-Pool") is None


def test_api_change_is_used_by_the_next_request(
    client: RadiusClient, make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "c1"})
    user = contract["config"]["username"]
    assert _accept(client, user, "c1")["reply"].text("Mikrotik-Rate-Limit").startswith("10M/50M")
    response = api.patch(
        f"/api/v1/contracts/{contract['id']}",
        json={"config": {"max_download": "100M", "password": "c2"}},
    )
    assert response.status_code == 200, response.text
    reply = _accept(client, user, "c2")["reply"]
    assert reply.text("Mikrotik-Rate-Limit").startswith("10M/100M")
    assert not _accept(client, user, "c1")["accepted"]
    assert api.delete(f"/api/v1/contracts/{contract['id']}").status_code == 204
    assert not _accept(client, user, "c2")["accepted"]


def test_layout_edit_and_deactivation_apply_at_once(
    client: RadiusClient, make: Factory, api: httpx.Client, lo_nas: dict[str, Any]
) -> None:
    manufacturer = make.manufacturer(dictionary_vendor="Mikrotik")
    layout = make.layout(
        manufacturer_id=manufacturer["id"],
        attributes=[{"attribute": "Mikrotik-Group", "template": "plan-{max_download}"}],
    )
    contract = make.contract(config={"password": "l"})
    user = contract["config"]["username"]
    patch = api.patch(f"/api/v1/nas/{lo_nas['id']}", json={"manufacturer_id": manufacturer["id"]})
    assert patch.status_code == 200, patch.text
    try:
        reply = _accept(client, user, "l")["reply"]
        assert reply.text("Mikrotik-Group") == "plan-50M"
        assert reply.text("Mikrotik-Rate-Limit") is None
        api.post(f"/api/v1/radius/layouts/{layout['id']}/deactivate")
        reply = _accept(client, user, "l")
        assert reply["accepted"] and reply["reply"].text("Mikrotik-Group") is None
    finally:
        api.patch(
            f"/api/v1/nas/{lo_nas['id']}", json={"manufacturer_id": lo_nas["manufacturer_id"]}
        )


def test_tagged_layout_rows_go_out_with_their_tags(
    client: RadiusClient, make: Factory, api: httpx.Client, lo_nas: dict[str, Any]
) -> None:
    manufacturer = make.manufacturer()
    rows = [
        {"attribute": "Tunnel-Type:1", "template": "VLAN"},
        {"attribute": "Tunnel-Medium-Type:1", "template": "IEEE-802"},
        {"attribute": "Tunnel-Private-Group-Id:1", "template": "{custom.vlan}"},
        {"attribute": "Tunnel-Password:2", "template": "tunnel-secret"},
        {"attribute": "Tunnel-Private-Group-Id", "template": "untagged"},
    ]
    layout = make.layout(manufacturer_id=manufacturer["id"], attributes=rows)
    # They read back as they were written.
    assert [r["attribute"] for r in layout["attributes"]] == [r["attribute"] for r in rows]
    contract = make.contract(config={"password": "t"}, custom_fields={"vlan": 310})
    patch = api.patch(f"/api/v1/nas/{lo_nas['id']}", json={"manufacturer_id": manufacturer["id"]})
    assert patch.status_code == 200, patch.text
    try:
        result = _accept(client, contract["config"]["username"], "t")
    finally:
        api.patch(
            f"/api/v1/nas/{lo_nas['id']}", json={"manufacturer_id": lo_nas["manufacturer_id"]}
        )
    assert result["accepted"]
    reply = result["reply"]
    values = reply.values()
    # RFC 2868 §3.1: the tag is the first octet of an integer; §3.6: it precedes a string.
    assert values["Tunnel-Type"] == [b"\x01\x00\x00\x0d"]
    assert values["Tunnel-Medium-Type"] == [b"\x01\x00\x00\x06"]
    assert values["Tunnel-Private-Group-Id"] == [b"\x01310", b"untagged"]
    # RFC 2868 §3.5: Tag, Salt (high bit set), then the salted encryption.
    [password] = values["Tunnel-Password"]
    assert password[0] == 2 and password[1] & 0x80
    plain = hiding.salt_decrypt(password[1:], SECRET.encode(), reply.request_authenticator)
    assert plain == b"tunnel-secret"


@pytest.mark.parametrize(
    ("attribute", "words"),
    [
        ("Framed-Pool:1", "takes no tag"),
        ("Tunnel-Type:0", "1..31"),
        ("Tunnel-Type:32", "1..31"),
        ("No-Such-Attribute:1", "unknown attribute"),
    ],
)
def test_layout_row_tags_are_linted(
    make: Factory, api: httpx.Client, attribute: str, words: str
) -> None:
    body = {
        "name": make.name("layout"),
        "attributes": [
            {"attribute": "Session-Timeout", "template": "60"},
            {"attribute": attribute, "template": "VLAN"},
        ],
    }
    response = api.post("/api/v1/radius/layouts", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert words in problem["detail"]
    assert problem["field"] == "attributes[1].attribute", problem


# -- the wire -----------------------------------------------------------------------------------


def test_retransmit_gets_the_same_reply_without_running_aaa_again(
    client: RadiusClient, make: Factory, daemon: RunningDaemon
) -> None:
    contract = make.contract(config={"password": "r"})
    packet = client.access_request(contract["config"]["username"], "r")
    before = daemon.daemon.stats["duplicates"]
    client.send_raw(packet)
    first = client.receive()
    client.send_raw(packet)
    second = client.receive()
    assert first is not None and first == second
    assert daemon.daemon.stats["duplicates"] == before + 1


def test_proxy_state_is_echoed_in_order(client: RadiusClient, make: Factory) -> None:
    contract = make.contract(config={"password": "ps"})
    states = [codec.attribute(codec.PROXY_STATE, s) for s in (b"one", b"\x00two")]
    reply = client.exchange(client.access_request(contract["config"]["username"], "ps", *states))
    assert reply is not None
    assert reply.packet.get_all(codec.PROXY_STATE) == [b"one", b"\x00two"]
    assert reply.packet.attributes[0][0] == codec.MESSAGE_AUTHENTICATOR


def test_reject_is_delayed_without_holding_back_accepts(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    good = make.contract(config={"password": "g"})
    bad = make.contract(config={"password": "b"})
    port = _port(daemon)
    with RadiusClient(port, SECRET) as slow, RadiusClient(port, SECRET) as fast:
        started = time.monotonic()
        slow.send_raw(slow.access_request(bad["config"]["username"], "wrong"))
        accepted = fast.exchange(fast.access_request(good["config"]["username"], "g"))
        fast_time = time.monotonic() - started
        rejected = slow.receive()
        slow_time = time.monotonic() - started
    assert accepted is not None and accepted.accepted
    assert rejected is not None and rejected[0] == codec.Code.ACCESS_REJECT
    delay = daemon.settings.radius.reject_delay
    assert fast_time < delay <= slow_time


def test_unknown_nas_and_inactive_nas_are_ignored(
    daemon: RunningDaemon, make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "u"})
    user = contract["config"]["username"]
    before = daemon.daemon.stats["drop_unknown_nas"]
    internal = daemon.daemon.stats["drop_internal_error"]
    with RadiusClient(_port(daemon), SECRET, source="127.0.0.9", timeout=0.5) as stranger:
        assert stranger.exchange(stranger.access_request(user, "u")) is None
    assert daemon.daemon.stats["drop_unknown_nas"] == before + 1
    assert daemon.daemon.stats["drop_internal_error"] == internal  # turned away, not an error
    nas = make.nas(address="127.0.0.10", secret="nas-10-secret")
    with RadiusClient(_port(daemon), "nas-10-secret", source="127.0.0.10", timeout=1) as known:
        assert known.exchange(known.access_request(user, "u")) is not None
        assert api.post(f"/api/v1/nas/{nas['id']}/deactivate").status_code == 200
        assert known.exchange(known.access_request(user, "u"), timeout=0.5) is None


def test_malformed_packets_are_dropped_and_counted(
    client: RadiusClient, daemon: RunningDaemon
) -> None:
    before = daemon.daemon.stats["drop_malformed"]
    good = client.access_request("someone", "pw")
    client.send_raw(good[:19])  # shorter than a header
    client.send_raw(good[:2] + (len(good) + 10).to_bytes(2, "big") + good[4:])  # Length too big
    client.send_raw(good[:20] + b"\x01\x01" + good[22:])  # attribute length 1
    assert client.receive(timeout=0.3) is None
    assert daemon.daemon.stats["drop_malformed"] == before + 3
    status = client.exchange(client.status_server())
    assert status is not None and status.code == codec.Code.ACCESS_ACCEPT


# -- preview ------------------------------------------------------------------------------------


def test_preview_shows_exactly_what_the_nas_gets(
    client: RadiusClient, make: Factory, api: httpx.Client, lo_nas: dict[str, Any]
) -> None:
    contract = make.contract(config={"password": "pv", "ipv4": make.address()})
    response = api.get(
        f"/api/v1/contracts/{contract['id']}/preview", params={"nas_id": lo_nas["id"]}
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["decision"] == "accept" and preview["layout"]
    reply = _accept(client, contract["config"]["username"], "pv")["reply"]
    wire = [
        (name, values) for name, values in reply.values().items() if name != "Message-Authenticator"
    ]
    assert [a["attribute"] for a in preview["attributes"]] == [name for name, _ in wire]
    rate = next(a for a in preview["attributes"] if a["attribute"] == "Mikrotik-Rate-Limit")
    assert reply.text("Mikrotik-Rate-Limit") == rate["value"]
    assert api.post(f"/api/v1/contracts/{contract['id']}/deactivate").status_code == 200
    refused = api.get(
        f"/api/v1/contracts/{contract['id']}/preview", params={"nas_id": lo_nas["id"]}
    )
    assert refused.json()["decision"] == "reject"
    assert refused.json()["reason"] == "contract is inactive"


def test_preview_problems_name_the_field(api: httpx.Client, make: Factory) -> None:
    contract = make.contract()
    missing = api.get(f"/api/v1/contracts/{contract['id']}/preview", params={"nas_id": 999999})
    assert missing.status_code == 422 and missing.json()["field"] == "nas_id"
    unknown = api.get("/api/v1/contracts/999999/preview", params={"nas_id": 1})
    assert unknown.status_code == 404


def test_metrics_count_packets_by_outcome_without_a_token(
    daemon: RunningDaemon, client: RadiusClient
) -> None:
    assert client.exchange(client.status_server()) is not None
    response = httpx.get(f"{daemon.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_PLAIN_0_0_4
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    counts = {
        sample.labels["outcome"]: sample.value
        for sample in families["radius_contracts_radius_packets"].samples
        if sample.labels["port"] == "auth"
    }
    assert counts["status_server"] >= 1
    assert counts["received"] >= counts["status_server"]
    assert "radius_contracts_index_contracts" in families
    assert SECRET not in response.text


def test_mac_authentication_needs_a_password_attribute(client: RadiusClient, make: Factory) -> None:
    make.contract(config={"password": "unused", "mac": "02:00:5e:10:20:31"})
    bare = client.exchange(client.access_request("02:00:5e:10:20:31", None))
    assert bare is not None and not bare.accepted


def test_nas_by_cidr_is_a_client(daemon: RunningDaemon, make: Factory) -> None:
    make.nas(address="127.0.77.0/24", secret="cidr-secret")
    contract = make.contract(config={"password": "cidr-pw"})
    with RadiusClient(_port(daemon), "cidr-secret", source="127.0.77.5") as nas:
        reply = nas.exchange(nas.access_request(contract["config"]["username"], "cidr-pw"))
    assert reply is not None and reply.accepted


def test_listens_on_ipv4_and_ipv6_side_by_side(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    settings = load_settings(
        None,
        state_dir=tmp_path,
        api={"host": "127.0.0.1", "port": 0},
        radius={"bind": ["127.0.0.1", "::1"], "auth_port": 0, "acct_port": 0},
    )
    running, thread = start_daemon(settings)
    try:
        api = running.client(running.admin_token)
        mikrotik = manufacturer_named(api, "MikroTik")
        for name, address in (("v4", "127.0.0.1"), ("v6", "::1")):
            body = {"name": name, "address": address, "secret": "dual-stack",
                    "manufacturer_id": mikrotik["id"]}  # fmt: skip
            assert api.post("/api/v1/nas", json=body).status_code == 201
        ports = {
            address: port for kind, address, port in running.daemon.radius_sockets if kind == "auth"
        }
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(3)
                request = codec.encode_request(codec.Code.STATUS_SERVER, 1, b"", b"dual-stack")
                sock.sendto(request, (host, ports[host]))
                reply = codec.decode(sock.recv(4096))
                assert reply.code == codec.Code.ACCESS_ACCEPT
                assert codec.verify_response_authenticator(reply, b"dual-stack", request[4:20])
    finally:
        stop_daemon(running, thread)
