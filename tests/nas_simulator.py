"""A simulated NAS for CoA tests: a record in the API, a Dynamic Authorization server really
listening on its own loopback address, and accounting sent from that address.

Shared by the tests that follow live sessions (CoA, plans, quotas); addresses are handed out
once per test session, so modules never collide.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from coa_server import CoaServer
from conftest import RunningDaemon
from radius_client import RadiusClient, attr
from radius_contracts.radius import codec
from radius_contracts.radius.dictionary import AttributeCatalog

SECRET = "coa-nas-secret-0123"
ACTIVE_ROWS = [{"attribute": "Mikrotik-Rate-Limit", "template": "{max_upload}/{max_download}"}]
SUSPENDED_ROWS = [
    {"attribute": "Mikrotik-Rate-Limit", "template": "256k/256k"},
    {"attribute": "Mikrotik-Address-List", "template": "suspended"},
]

_hosts = iter(range(60, 250))


@dataclass
class Nas:
    """A simulated NAS: its API record, its CoA server and its accounting client."""

    record: dict[str, Any]
    server: CoaServer
    address: str
    manufacturer: dict[str, Any]


class simulated_nas:
    def __init__(self, admin: httpx.Client, manufacturer: dict[str, Any]) -> None:
        self.address = f"127.0.0.{next(_hosts)}"
        self.server = CoaServer(SECRET.encode(), host=self.address)
        record = post_created(
            admin,
            "/api/v1/nas",
            {
                "name": f"coa-nas-{secrets.token_hex(3)}",
                "address": self.address,
                "secret": SECRET,
                "manufacturer_id": manufacturer["id"],
                "coa_port": self.server.port,
            },
        )
        self.nas = Nas(record, self.server, self.address, manufacturer)

    def __enter__(self) -> Nas:
        return self.nas

    def __exit__(self, *_exc: object) -> None:
        self.server.close()


def manufacturer_with(
    admin: httpx.Client,
    vendor: str,
    layouts: dict[str, list[dict[str, str]]],
    **coa: Any,
) -> dict[str, Any]:
    """A manufacturer with this CoA policy and these layouts (by purpose)."""
    name = f"{vendor.lower()}-{secrets.token_hex(3)}"
    manufacturer = post_created(
        admin, "/api/v1/manufacturers", {"name": name, "dictionary_vendor": vendor, **coa}
    )
    for purpose, rows in layouts.items():
        body = {"name": f"{name}-{purpose}", "manufacturer_id": manufacturer["id"],
                "purpose": purpose, "attributes": rows}  # fmt: skip
        post_created(admin, "/api/v1/radius/layouts", body)
    return manufacturer


def post_created(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


@dataclass
class Online:
    """A contract with one session online at a NAS."""

    contract: dict[str, Any]
    session_id: int
    acct_session_id: str
    username: str


def go_online(
    daemon: RunningDaemon,
    api: httpx.Client,
    nas: Nas,
    *,
    fields: dict[str, Any] | None = None,
    contract: dict[str, Any] | None = None,
    **config: Any,
) -> Online:
    """A session online at ``nas`` (an Accounting-Start from its address) for a new contract
    with this config (and top-level ``fields``), or for ``contract`` when given."""
    if contract is None:
        body = {
            "number": f"C-{secrets.token_hex(4)}",
            "config": {
                "username": f"coa-{secrets.token_hex(4)}",
                "password": "pw-" + secrets.token_hex(4),
                "max_upload": "10M",
                "max_download": "50M",
                **config,
            },
            **(fields or {}),
        }
        contract = post_created(api, "/api/v1/contracts", body)
    username = contract["config"]["username"]
    acct_id = secrets.token_hex(6)
    send_accounting(daemon, nas, username, acct_id, 1)
    sessions = api.get(
        "/api/v1/sessions", params={"contract_id": contract["id"], "online": True}
    ).json()["items"]
    mine = [s for s in sessions if s["acct_session_id"] == acct_id]
    assert len(mine) == 1
    return Online(contract, mine[0]["id"], acct_id, username)


def send_accounting(
    daemon: RunningDaemon,
    nas: Nas,
    username: str,
    acct_id: str,
    status_type: int,
    *,
    input_octets: int | None = None,
    output_octets: int | None = None,
    session_time: int | None = None,
) -> None:
    """One Accounting-Request from the NAS's address, answered (so committed)."""
    attributes = [
        attr("Acct-Status-Type", status_type.to_bytes(4, "big")),
        attr("Acct-Session-Id", acct_id),
        attr("User-Name", username),
        attr("NAS-IP-Address", ipaddress.ip_address(nas.address).packed),
        attr("Framed-IP-Address", bytes([100, 64, 1, secrets.randbelow(250) + 1])),
    ]
    for name, value in (
        ("Acct-Input-Octets", input_octets),
        ("Acct-Output-Octets", output_octets),
        ("Acct-Session-Time", session_time),
    ):
        if value is not None:
            attributes.append(attr(name, (value % 2**32).to_bytes(4, "big")))
    for name, value in (
        ("Acct-Input-Gigawords", input_octets),
        ("Acct-Output-Gigawords", output_octets),
    ):
        if value is not None and value >= 2**32:
            attributes.append(attr(name, (value >> 32).to_bytes(4, "big")))
    assert daemon.daemon.acct_port is not None
    with RadiusClient(daemon.daemon.acct_port, SECRET, source=nas.address) as radius:
        assert radius.exchange(radius.accounting_request(*attributes)) is not None


def decoded(catalog: AttributeCatalog, data: bytes) -> list[tuple[str, str]]:
    """The request's attributes as (name, text), in wire order, without Message-Authenticator."""
    pairs: list[tuple[str, str]] = []
    for kind, value in codec.decode(data).attributes:
        if kind == codec.MESSAGE_AUTHENTICATOR:
            continue
        if kind == 26:
            split = codec.split_vendor_specific(value)
            assert split is not None
            vendor, subs = split
            pairs += [_text(catalog, sub, inner, vendor) for sub, inner in subs]
        else:
            pairs.append(_text(catalog, kind, value, None))
    return pairs


def _text(
    catalog: AttributeCatalog, code: int, value: bytes, vendor: int | None
) -> tuple[str, str]:
    spec = catalog.by_code(code, vendor)
    assert spec is not None, (code, vendor)
    if spec.type == "integer":
        return spec.name, str(int.from_bytes(value, "big"))
    if spec.type == "ipaddr":
        return spec.name, str(ipaddress.ip_address(value))
    if spec.has_tag and value and value[0] < 0x20:
        value = value[1:]
    return spec.name, value.decode()


def requests_for(
    daemon: RunningDaemon, nas: Nas, online: Online, count: int, timeout: float = 10.0
) -> list[tuple[int, list[tuple[str, str]]]]:
    """The first ``count`` distinct requests the NAS got for the session: (code, attributes)."""
    catalog = daemon.daemon.services.context.catalog  # type: ignore[union-attr]
    deadline = time.monotonic() + timeout
    while True:
        found: list[tuple[int, list[tuple[str, str]]]] = []
        seen: set[bytes] = set()
        for data in list(nas.server.received):
            if data in seen:
                continue  # a retransmission
            seen.add(data)
            pairs = decoded(catalog, data)
            if ("Acct-Session-Id", online.acct_session_id) in pairs:
                found.append((data[0], pairs))
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def coa_log(api: httpx.Client, online: Online, count: int, timeout: float = 10.0) -> list[Any]:
    """The session's coa-log, oldest first, once it has ``count`` entries."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/api/v1/sessions/{online.session_id}/coa-log")
        assert response.status_code == 200, response.text
        items: list[Any] = response.json()["items"]
        if len(items) >= count or time.monotonic() > deadline:
            return list(reversed(items))
        time.sleep(0.05)


def identification(nas: Nas, online: Online) -> list[tuple[str, str]]:
    return [
        ("User-Name", online.username),
        ("Acct-Session-Id", online.acct_session_id),
        ("NAS-IP-Address", nas.address),
    ]


COA, DISCONNECT = codec.Code.COA_REQUEST, codec.Code.DISCONNECT_REQUEST
