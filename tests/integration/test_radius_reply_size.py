"""Replies that would pass the 4096 octets of a RADIUS packet (RFC 2865 §3): the NAS always gets
an answer (an Access-Reject that says why), the auth log and metrics say so, and the preview
and the layout lint tell beforehand.

A layout of 17 Filter-Id rows filled from a custom field stands in for what a billing system
can do: the layout is fine for the short sample, a long custom field makes it too big.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import LO_SECRET, Factory, RunningDaemon
from radius_client import RadiusClient
from radius_contracts.radius import codec

ROWS = 17
BIG_NAS = "127.0.0.51"  # the NAS whose manufacturer's layout has the Filter-Id rows
BIG_SECRET = "big-reply-secret"
PLAIN_NAS = "127.0.0.52"  # require_message_authenticator = false
PLAIN_SECRET = "plain-nas-secret"


@pytest.fixture(scope="module")
def big(daemon: RunningDaemon) -> dict[str, Any]:
    """A manufacturer whose active layout is ROWS rows of Filter-Id = {custom.f}, and its NAS."""
    make = Factory(daemon.client(daemon.admin_token))
    manufacturer = make.manufacturer()
    rows = [{"attribute": "Filter-Id", "template": "{custom.f}"}] * ROWS
    make.layout(manufacturer_id=manufacturer["id"], attributes=rows)
    return make.nas(address=BIG_NAS, secret=BIG_SECRET, manufacturer_id=manufacturer["id"])


@pytest.fixture
def big_client(daemon: RunningDaemon, big: dict[str, Any]) -> Iterator[RadiusClient]:
    assert daemon.daemon.auth_port is not None
    with RadiusClient(daemon.daemon.auth_port, BIG_SECRET, source=BIG_NAS) as radius:
        yield radius


@pytest.fixture
def lo_client(daemon: RunningDaemon, lo_nas: dict[str, Any]) -> Iterator[RadiusClient]:
    assert daemon.daemon.auth_port is not None
    with RadiusClient(daemon.daemon.auth_port, LO_SECRET) as radius:
        yield radius


def _reply_size(filled: int) -> int:
    """The Accept for a contract whose custom field has ``filled`` octets, on the big NAS."""
    # Header and Message-Authenticator, the rows, Acct-Interim-Interval (the default 300 s).
    return codec.REPLY_OVERHEAD + ROWS * (filled + 2) + 6


def _preview(api: httpx.Client, contract: dict[str, Any], nas: dict[str, Any]) -> dict[str, Any]:
    response = api.get(f"/api/v1/contracts/{contract['id']}/preview", params={"nas_id": nas["id"]})
    assert response.status_code == 200, response.text
    preview: dict[str, Any] = response.json()
    return preview


def _auth_log(api: httpx.Client, contract_id: int) -> dict[str, Any]:
    """The contract's newest auth log entry, waiting for the writer's next flush."""
    deadline = time.monotonic() + 5
    while True:
        items = api.get(f"/api/v1/contracts/{contract_id}/auth-log").json()["items"]
        if items or time.monotonic() > deadline:
            assert items, "nothing in the auth log"
            entry: dict[str, Any] = items[0]
            return entry
        time.sleep(0.1)


def _rejects(daemon: RunningDaemon, reason: str) -> float:
    name = f'radius_contracts_access_rejects_total{{reason="{reason}"}}'
    for line in httpx.get(f"{daemon.base_url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_a_reply_too_large_for_a_packet_is_answered_with_a_reject_that_says_why(
    daemon: RunningDaemon,
    big: dict[str, Any],
    big_client: RadiusClient,
    make: Factory,
    api: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    contract = make.contract(config={"password": "big-pw"}, custom_fields={"f": "x" * 250})
    size = _reply_size(250)
    reason = f"reply too large ({size} octets, at most 4096)"
    before = _rejects(daemon, "reply_too_large")
    internal_errors = daemon.daemon.stats["drop_internal_error"]

    with caplog.at_level(logging.WARNING, logger="radius_contracts.aaa"):
        reply = big_client.exchange(
            big_client.access_request(contract["config"]["username"], "big-pw")
        )

    assert reply is not None and reply.code == codec.Code.ACCESS_REJECT
    assert reply.text("Reply-Message") == reason
    entry = _auth_log(api, contract["id"])
    assert (entry["result"], entry["reason"]) == ("reject", reason)
    assert _rejects(daemon, "reply_too_large") == before + 1
    assert daemon.daemon.stats["drop_internal_error"] == internal_errors
    [warning] = [r.getMessage() for r in caplog.records if "octets" in r.getMessage()]
    assert contract["number"] in warning and big["name"] in warning and str(size) in warning
    assert BIG_SECRET not in warning and "big-pw" not in warning
    preview = _preview(api, contract, big)
    assert (preview["decision"], preview["reason"]) == ("reject", reason)
    assert preview["reply_size"] == size and len(preview["attributes"]) == ROWS + 1


def test_the_preview_size_is_the_size_of_the_accept_sent(
    big: dict[str, Any], big_client: RadiusClient, make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "fits-pw"}, custom_fields={"f": "short"})
    big_client.send_raw(big_client.access_request(contract["config"]["username"], "fits-pw"))
    data = big_client.receive()

    assert data is not None and data[0] == codec.Code.ACCESS_ACCEPT
    preview = _preview(api, contract, big)
    assert preview["decision"] == "accept" and preview["warnings"] == []
    assert preview["reply_size"] == len(data) == _reply_size(len("short"))


def test_mschapv2_logins_that_would_not_fit_are_rejected_and_the_preview_warns(
    big: dict[str, Any], big_client: RadiusClient, make: Factory, api: httpx.Client
) -> None:
    # 3988 octets: PAP fits, MS-CHAPv2 adds 159 (MS-CHAP2-Success, MPPE policy, types, keys).
    contract = make.contract(config={"password": "clientPass"}, custom_fields={"f": "m" * 230})
    user = contract["config"]["username"]

    preview = _preview(api, contract, big)
    assert preview["decision"] == "accept" and preview["reply_size"] == 3988
    [warning] = preview["warnings"]
    assert "MS-CHAPv2" in warning and "4147 octets" in warning
    pap = big_client.exchange(big_client.access_request(user, "clientPass"))
    assert pap is not None and pap.accepted
    packet, *_ = big_client.mschapv2_request(user, "clientPass")
    mschap = big_client.exchange(packet)
    assert mschap is not None and mschap.code == codec.Code.ACCESS_REJECT
    assert mschap.text("Reply-Message") == "reply too large (4147 octets, at most 4096)"


def _proxy_states(total: int) -> list[bytes]:
    """Proxy-State attributes of exactly ``total`` octets, headers included, each distinct."""
    states: list[bytes] = []
    n = 0
    while total:
        size = min(total, 255)
        if 0 < total - size < 3:  # leave at least one octet of value for the last one
            size -= 3
        value = bytes([n]) + b"p" * (size - 3)
        states.append(codec.attribute(codec.PROXY_STATE, value))
        total -= size
        n += 1
    return states


@pytest.mark.parametrize("fill", ["whole request", "one octet over"])
def test_proxy_state_that_pushes_a_reply_over_4096_octets_still_gets_an_answer(
    lo_client: RadiusClient,
    lo_nas: dict[str, Any],
    make: Factory,
    api: httpx.Client,
    fill: str,
) -> None:
    ipv6 = f"2001:db8:{secrets.randbelow(65536):x}:{secrets.randbelow(65536):x}::/64"
    fixed = {"ipv4": make.address(), "ipv6": ipv6}
    contract = make.contract(config={"password": "ps-pw", **fixed})
    user = contract["config"]["username"]
    accept = _preview(api, contract, lo_nas)["reply_size"]
    bare = len(lo_client.access_request(user, "ps-pw"))
    # The request can carry more Proxy-State than its reply has room for: its own attributes
    # are fewer octets than the reply's.
    assert accept > bare
    total = 4096 - bare if fill == "whole request" else 4096 - accept + 1
    states = _proxy_states(total)
    reason = f"reply too large ({accept + total} octets, at most 4096)"

    reply = lo_client.exchange(lo_client.access_request(user, "ps-pw", *states))

    assert reply is not None and reply.code == codec.Code.ACCESS_REJECT
    # RFC 2865 §5.33: every Proxy-State back, unchanged and in order.
    expected = [state[2:] for state in states]
    assert reply.packet.get_all(codec.PROXY_STATE) == expected
    # The Reject's Reply-Message goes when it fits beside the echo, and only then.
    fits = codec.REPLY_OVERHEAD + 2 + len(reason) + total <= 4096
    assert fits is (fill == "one octet over")
    assert reply.text("Reply-Message") == (reason if fits else None)
    assert _auth_log(api, contract["id"])["reason"] == reason


def test_a_request_with_no_room_for_any_reply_is_dropped_and_counted(
    daemon: RunningDaemon, make: Factory
) -> None:
    # Only a request without credentials (and, here, without Message-Authenticator) can hold
    # more Proxy-State than a bare Reject can echo.
    make.nas(address=PLAIN_NAS, secret=PLAIN_SECRET, require_message_authenticator=False)
    assert daemon.daemon.auth_port is not None
    before = daemon.daemon.stats["drop_reply_too_large"]
    internal_errors = daemon.daemon.stats["drop_internal_error"]
    with RadiusClient(daemon.daemon.auth_port, PLAIN_SECRET, source=PLAIN_NAS) as nas:
        name = codec.attribute(codec.USER_NAME, b"nobody")
        states = _proxy_states(4096 - 20 - len(name))
        request = codec.encode_request(
            codec.Code.ACCESS_REQUEST, nas.next_id(), name + b"".join(states), nas.secret,
            message_authenticator=False,
        )  # fmt: skip
        assert len(request) == 4096
        assert nas.exchange(request, timeout=0.5) is None
    assert daemon.daemon.stats["drop_reply_too_large"] == before + 1
    assert daemon.daemon.stats["drop_internal_error"] == internal_errors


def test_a_layout_whose_sample_reply_passes_4096_octets_is_refused(
    api: httpx.Client, make: Factory
) -> None:
    rows = [{"attribute": "Filter-Id", "template": "f" * 250}] * ROWS
    body = {"name": make.name("layout"), "manufacturer_id": make.manufacturer()["id"],
            "attributes": rows}  # fmt: skip

    response = api.post("/api/v1/radius/layouts", json=body)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == f"attributes[{ROWS - 1}].template"
    assert "4322 octets" in problem["detail"] and "4096" in problem["detail"]
    body["attributes"] = rows[:-1]
    assert api.post("/api/v1/radius/layouts", json=body).status_code == 201
