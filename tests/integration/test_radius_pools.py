"""Managed pools over the wire: addresses leased at Access-Accept, confirmed by Accounting-Start,
released at Stop; sticky, never another's, exhausted with a clear Reject."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import LO_SECRET as SECRET
from conftest import Factory, RunningDaemon
from radclient import radclient
from radius_client import RadiusClient, Reply, attr


@pytest.fixture
def nas_client(daemon: RunningDaemon, lo_nas: dict[str, Any]) -> Iterator[RadiusClient]:
    assert daemon.daemon.auth_port is not None
    with RadiusClient(daemon.daemon.auth_port, SECRET) as radius:
        yield radius


def small_pool(make: Factory, size: int = 30, **fields: Any) -> dict[str, Any]:
    """A managed IPv4 pool of ``size`` usable addresses (a /27 has 30)."""
    prefix = {2: 30, 6: 29, 14: 28, 30: 27}[size]
    base = f"100.{64 + secrets.randbelow(64)}.{secrets.randbelow(256)}.{secrets.randbelow(8) * 32}"
    ranges = [f"{base}/{prefix}"]
    return make.pool(mode="managed", ranges=ranges, **fields)


def login(client: RadiusClient, user: str, station: str = "02-00-00-00-00-01") -> Reply:
    reply = client.exchange(client.access_request(user, "pw", attr("Calling-Station-Id", station)))
    assert reply is not None
    return reply


def framed_ip(reply: Reply) -> str | None:
    values = reply.values().get("Framed-IP-Address")
    return str(ipaddress.IPv4Address(values[0])) if values else None


def accounting(daemon: RunningDaemon, status: str, sid: str, user: str, *extra: str) -> None:
    assert daemon.daemon.acct_port is not None
    lines = [f"Acct-Status-Type = {status}", f'Acct-Session-Id = "{sid}"', f'User-Name = "{user}"']
    request = "\n".join([*lines, *extra]) + "\n"
    result = radclient(daemon.daemon.acct_port, SECRET, request, command="acct")
    assert result.code == "Accounting-Response", result.output


def usage(api: httpx.Client, pool: dict[str, Any]) -> dict[str, Any]:
    response = api.get(f"/api/v1/radius/pools/{pool['id']}/usage")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_lease_is_sticky_confirmed_and_released(
    nas_client: RadiusClient, daemon: RunningDaemon, make: Factory, api: httpx.Client
) -> None:
    pool = small_pool(make)
    user = make.contract(config={"password": "pw", "pool_name_ipv4": pool["name"]})["config"][
        "username"
    ]
    reply = login(nas_client, user)
    assert reply.accepted
    address = framed_ip(reply)
    assert address is not None and ipaddress.ip_address(address) in ipaddress.ip_network(
        pool["ranges"][0]
    )
    assert reply.text("Framed-Pool") is None  # a managed pool's name never goes to the NAS
    assert usage(api, pool)["offered"] == 1
    # A re-authentication gets the same address back.
    assert framed_ip(login(nas_client, user)) == address
    accounting(daemon, "Start", "P1-" + user, user, f"Framed-IP-Address = {address}")
    counts = usage(api, pool)
    assert (counts["bound"], counts["offered"], counts["held"]) == (1, 0, 1)
    accounting(daemon, "Stop", "P1-" + user, user, f"Framed-IP-Address = {address}")
    assert usage(api, pool)["held"] == 0
    # Released, it is still this contract's address next time.
    assert framed_ip(login(nas_client, user)) == address


def test_a_held_address_goes_to_no_other_contract(nas_client: RadiusClient, make: Factory) -> None:
    pool = small_pool(make)
    users = [
        make.contract(config={"password": "pw", "pool_name_ipv4": pool["name"]})["config"][
            "username"
        ]
        for _ in range(5)
    ]
    addresses = [framed_ip(login(nas_client, user)) for user in users]
    assert None not in addresses and len(set(addresses)) == 5


def test_an_exhausted_pool_rejects_and_is_counted(
    nas_client: RadiusClient, daemon: RunningDaemon, make: Factory
) -> None:
    pool = small_pool(make, size=2)
    users = [
        make.contract(config={"password": "pw", "pool_name_ipv4": pool["name"]})["config"][
            "username"
        ]
        for _ in range(3)
    ]
    assert login(nas_client, users[0]).accepted and login(nas_client, users[1]).accepted
    refused = login(nas_client, users[2])
    assert not refused.accepted
    assert refused.text("Reply-Message") == f"pool {pool['name']} is exhausted"
    metrics = daemon.client().get("/metrics").text
    assert f'radius_contracts_pool_exhausted_total{{pool="{pool["name"]}"}} 1.0' in metrics


def test_an_address_fixed_on_another_contract_is_skipped(
    nas_client: RadiusClient, make: Factory
) -> None:
    pool = small_pool(make, size=2)
    network = ipaddress.ip_network(pool["ranges"][0])
    first_host = str(next(network.hosts()))
    make.contract(config={"password": "pw", "ipv4": first_host})
    user = make.contract(config={"password": "pw", "pool_name_ipv4": pool["name"]})["config"][
        "username"
    ]
    address = framed_ip(login(nas_client, user))
    assert address is not None and address != first_host


def test_ipv6_prefix_and_delegated_prefix(nas_client: RadiusClient, make: Factory) -> None:
    wan = make.pool(mode="managed", family="ipv6")  # /64 per subscriber
    pd = make.pool(mode="managed", family="ipv6-pd", prefix_length=56)
    for pool, attribute, length in ((wan, "Framed-IPv6-Prefix", 64),
                                    (pd, "Delegated-IPv6-Prefix", 56)):  # fmt: skip
        user = make.contract(config={"password": "pw", "pool_name_ipv6": pool["name"]})["config"][
            "username"
        ]
        reply = login(nas_client, user)
        assert reply.accepted
        [value] = reply.values()[attribute]
        assert value[1] == length  # RFC 3162 §2.3: reserved, prefix length, prefix
        prefix = ipaddress.IPv6Network((value[2:].ljust(16, b"\0"), length))
        assert prefix.subnet_of(ipaddress.IPv6Network(pool["ranges"][0]))
