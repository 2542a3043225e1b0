"""CHAP challenges over real UDP: too short (RFC 2865 §5.40) or used before by the same NAS is an
Access-Reject with its reason in the auth log and its label in the metrics; fresh challenges,
and a NAS's own retransmits, get through. MAC authentication by CHAP is held to the same rules.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    LO_SECRET,
    Factory,
    RunningDaemon,
    add_nas,
    make_settings,
    start_daemon,
    stop_daemon,
)
from radclient import radclient
from radius_client import RadiusClient
from radius_contracts.radius import codec

SHORT = "CHAP-Challenge shorter than 5 octets"
REUSED = "CHAP challenge reused"
TRACKED = "radius_contracts_chap_challenges_tracked"


@pytest.fixture
def client(daemon: RunningDaemon, lo_nas: dict[str, Any]) -> Iterator[RadiusClient]:
    assert daemon.daemon.auth_port is not None
    with RadiusClient(daemon.daemon.auth_port, LO_SECRET) as radius:
        yield radius


def chap_request(
    client: RadiusClient,
    user: str,
    password: str,
    challenge: bytes | None,
    *,
    identifier: int | None = None,
    authenticator: bytes | None = None,
) -> bytes:
    """An Access-Request with a right CHAP-Password for ``challenge`` (None: the Request
    Authenticator is the challenge, RFC 2865 §2.2)."""
    authenticator = authenticator or codec.new_authenticator()
    ident = os.urandom(1)
    used = authenticator if challenge is None else challenge
    body = codec.attribute(codec.USER_NAME, user.encode()) + codec.attribute(
        codec.CHAP_PASSWORD, ident + hashlib.md5(ident + password.encode() + used).digest()
    )
    if challenge is not None:
        body += codec.attribute(codec.CHAP_CHALLENGE, challenge)
    return codec.encode_request(
        codec.Code.ACCESS_REQUEST,
        client.next_id() if identifier is None else identifier,
        body,
        client.secret,
        authenticator=authenticator,
    )


def _auth_log(api: httpx.Client, contract_id: int, count: int) -> list[dict[str, Any]]:
    """The contract's auth log entries, newest first, once there are ``count`` of them."""
    deadline = time.monotonic() + 5
    while True:
        items: list[dict[str, Any]] = api.get(
            f"/api/v1/contracts/{contract_id}/auth-log", params={"limit": 100}
        ).json()["items"]
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.1)


def _rejects(daemon: RunningDaemon, reason: str) -> float:
    name = f'radius_contracts_access_rejects_total{{reason="{reason}"}}'
    for line in httpx.get(f"{daemon.base_url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def _contract(make: Factory, password: str, **config: Any) -> tuple[dict[str, Any], str]:
    # No simultaneous-use limit: these tests log the same contract in many times.
    contract = make.contract(config={"password": password, "simultaneous_use": None, **config})
    return contract, contract["config"]["username"]


@pytest.mark.parametrize("size", [0, 1, 4])
def test_a_chap_challenge_shorter_than_5_octets_is_rejected(
    daemon: RunningDaemon, client: RadiusClient, make: Factory, api: httpx.Client, size: int
) -> None:
    contract, user = _contract(make, "short-pw")
    before = _rejects(daemon, "chap_challenge_short")

    reply = client.exchange(chap_request(client, user, "short-pw", os.urandom(size)))

    # The response is right for the challenge; the challenge is what is refused.
    assert reply is not None and reply.code == codec.Code.ACCESS_REJECT
    assert reply.text("Reply-Message") == SHORT
    [entry] = _auth_log(api, contract["id"], 1)
    assert (entry["result"], entry["reason"], entry["method"]) == ("reject", SHORT, "chap")
    assert _rejects(daemon, "chap_challenge_short") == before + 1


def test_a_five_octet_challenge_is_enough(client: RadiusClient, make: Factory) -> None:
    _, user = _contract(make, "five-pw")
    reply = client.exchange(chap_request(client, user, "five-pw", os.urandom(5)))
    assert reply is not None and reply.accepted


def test_radclient_with_a_one_octet_challenge_is_rejected(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    _, user = _contract(make, "rad-pw")
    assert daemon.daemon.auth_port is not None
    request = (
        f'User-Name = "{user}"\nCHAP-Password = "rad-pw"\nCHAP-Challenge = 0x01\n'
        "Message-Authenticator = 0x00\n"
    )
    result = radclient(daemon.daemon.auth_port, LO_SECRET, request)
    assert result.code == "Access-Reject", result.output
    assert result.first("Reply-Message") == SHORT


def test_a_reused_chap_challenge_is_rejected_and_counted(
    daemon: RunningDaemon, client: RadiusClient, make: Factory, api: httpx.Client
) -> None:
    contract, user = _contract(make, "reuse-pw")
    challenge = os.urandom(16)
    before = _rejects(daemon, "chap_challenge_reused")

    first = client.exchange(chap_request(client, user, "reuse-pw", challenge))
    # A new request (new Identifier and authenticator) with the captured challenge.
    again = client.exchange(chap_request(client, user, "reuse-pw", challenge))

    assert first is not None and first.accepted
    assert again is not None and again.code == codec.Code.ACCESS_REJECT
    assert again.text("Reply-Message") == REUSED
    newest, oldest = _auth_log(api, contract["id"], 2)[:2]
    assert (oldest["result"], newest["result"], newest["reason"]) == ("accept", "reject", REUSED)
    assert _rejects(daemon, "chap_challenge_reused") == before + 1


def test_a_reused_request_authenticator_is_a_reused_challenge(
    client: RadiusClient, make: Factory
) -> None:
    _, user = _contract(make, "auth-pw")
    authenticator = codec.new_authenticator()
    first = chap_request(client, user, "auth-pw", None, authenticator=authenticator)
    # Same authenticator, so the same challenge; a new Identifier escapes the reply cache.
    second = chap_request(client, user, "auth-pw", None, authenticator=authenticator)

    accepted, refused = client.exchange(first), client.exchange(second)

    assert first[1] != second[1]
    assert accepted is not None and accepted.accepted
    assert refused is not None and refused.text("Reply-Message") == REUSED


def test_the_same_challenge_from_another_nas_is_no_reuse(
    daemon: RunningDaemon, client: RadiusClient, make: Factory
) -> None:
    _, user = _contract(make, "two-nas-pw")
    challenge = os.urandom(16)
    make.nas(address="127.0.0.56", secret="chap-nas-56")
    assert daemon.daemon.auth_port is not None
    with RadiusClient(daemon.daemon.auth_port, "chap-nas-56", source="127.0.0.56") as other:
        elsewhere = other.exchange(chap_request(other, user, "two-nas-pw", challenge))
    here = client.exchange(chap_request(client, user, "two-nas-pw", challenge))

    assert elsewhere is not None and elsewhere.accepted
    assert here is not None and here.accepted


def test_fresh_challenges_keep_being_accepted(
    daemon: RunningDaemon, client: RadiusClient, make: Factory
) -> None:
    _, user = _contract(make, "fresh-pw")
    for challenge in [os.urandom(16) for _ in range(5)] + [None] * 5:
        reply = client.exchange(chap_request(client, user, "fresh-pw", challenge))
        assert reply is not None and reply.accepted
    assert daemon.daemon.auth_port is not None
    request = f'User-Name = "{user}"\nCHAP-Password = "fresh-pw"\nMessage-Authenticator = 0x00\n'
    for _ in range(3):  # radclient: the Request Authenticator, a new one each time
        assert radclient(daemon.daemon.auth_port, LO_SECRET, request).code == "Access-Accept"
    metrics = httpx.get(f"{daemon.base_url}/metrics").text
    [tracked] = [line for line in metrics.splitlines() if line.startswith(TRACKED + " ")]
    assert float(tracked.split()[-1]) >= 1


def test_mac_authentication_by_chap_has_the_same_challenge_checks(
    client: RadiusClient, make: Factory, api: httpx.Client
) -> None:
    mac = "02:00:5e:10:21:" + os.urandom(1).hex()
    contract, _ = _contract(make, "unused", mac=mac)
    user = mac.replace(":", "").upper()  # the NAS sends the MAC as User-Name and password
    challenge = os.urandom(16)

    short = client.exchange(chap_request(client, user, user, b"\x01\x02"))
    fresh = client.exchange(chap_request(client, user, user, challenge))
    reused = client.exchange(chap_request(client, user, user, challenge))

    assert short is not None and short.text("Reply-Message") == SHORT
    assert fresh is not None and fresh.accepted
    assert reused is not None and reused.text("Reply-Message") == REUSED
    reasons = [entry["reason"] for entry in _auth_log(api, contract["id"], 3)[:3]]
    assert reasons == [REUSED, "accepted", SHORT]
    assert {entry["method"] for entry in _auth_log(api, contract["id"], 3)[:3]} == {"mac"}


def test_a_late_retransmit_is_the_same_request_not_a_reuse(tmp_path: Path) -> None:
    # A reply cache of 0.2 s: a retransmit after it has to go through AAA again, and is still
    # the NAS repeating itself (same Identifier and authenticator), not a reused challenge.
    settings = make_settings(tmp_path, None)
    radius = settings.radius.model_copy(update={"duplicate_window": 0.2})
    running, thread = start_daemon(settings.model_copy(update={"radius": radius}))
    try:
        api = running.client(running.admin_token)
        add_nas(api, LO_SECRET)
        _, user = _contract(Factory(api), "late-pw")
        assert running.daemon.auth_port is not None
        with RadiusClient(running.daemon.auth_port, LO_SECRET) as nas:
            for challenge in (os.urandom(16), None):
                packet = chap_request(nas, user, "late-pw", challenge)
                duplicates = running.daemon.stats["duplicates"]
                first = nas.exchange(packet)
                time.sleep(0.5)  # past both generations of the reply cache
                late = nas.exchange(packet)
                assert first is not None and first.accepted
                assert late is not None and late.accepted
                assert running.daemon.stats["duplicates"] == duplicates  # AAA ran again
                # Any other request with that challenge is a reuse.
                other = nas.exchange(
                    chap_request(nas, user, "late-pw", challenge, authenticator=packet[4:20])
                )
                assert other is not None and other.text("Reply-Message") == REUSED
    finally:
        stop_daemon(running, thread)
