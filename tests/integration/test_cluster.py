"""Three daemons on one PostgreSQL database: a change made through any node is used by all.

Each node's authorization index answers Access-Requests from memory; the change feed
(LISTEN/NOTIFY) must bring every other node's index up to date within 2 s of the API's answer.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from coa_server import CoaServer
from conftest import RunningDaemon, admin_sql, pg_cluster
from radius_client import RadiusClient, attr
from radius_contracts.radius import codec

pytestmark = pytest.mark.postgres

SECRET = "cluster-nas-secret-1"
LIMIT = 2.0  # seconds within which every node must use a change


@pytest.fixture(scope="module")
def nodes(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[RunningDaemon]]:
    with pg_cluster(postgres_url, tmp_path_factory.mktemp("cluster"), 3) as started:
        yield started


@pytest.fixture(scope="module")
def nas(nodes: list[RunningDaemon]) -> dict[str, object]:
    """The NAS at 127.0.0.41, created through node-1 (the catalogue travels too)."""
    api = nodes[0].client(nodes[0].admin_token)
    mikrotik = next(
        m
        for m in api.get("/api/v1/manufacturers", params={"q": "MikroTik"}).json()["items"]
        if m["name"] == "MikroTik"
    )
    body = {"name": f"bras-{secrets.token_hex(3)}", "address": "127.0.0.41", "secret": SECRET,
            "manufacturer_id": mikrotik["id"]}  # fmt: skip
    response = api.post("/api/v1/nas", json=body)
    assert response.status_code == 201
    created: dict[str, object] = response.json()
    return created


def _new_contract(api: httpx.Client, password: str) -> tuple[int, str]:
    """A contract created through ``api``: (id, username)."""
    user = f"cl-{secrets.token_hex(4)}"
    body = {"number": f"CL-{secrets.token_hex(4)}",
            "config": {"username": user, "password": password}}  # fmt: skip
    created = api.post("/api/v1/contracts", json=body)
    assert created.status_code == 201
    contract_id: int = created.json()["id"]
    return contract_id, user


def _accepts(node: RunningDaemon, user: str, password: str) -> bool:
    assert node.daemon.auth_port is not None
    with RadiusClient(node.daemon.auth_port, SECRET, source="127.0.0.41", timeout=1.0) as radius:
        packet = radius.access_request(user, password)
        reply = radius.exchange(packet)
    assert reply is not None
    return reply.accepted


def _seconds_until(check: Callable[[], bool], limit: float = 10.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            raise AssertionError(f"not true within {limit} s")
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_change_through_any_node_reaches_every_node(
    nodes: list[RunningDaemon], nas: dict[str, object]
) -> None:
    apis = [node.client(node.admin_token) for node in nodes]
    contract_id, user = _new_contract(apis[1], "first-pw-1")
    delays: list[float] = []
    for node in nodes:
        delays.append(_seconds_until(lambda node=node: _accepts(node, user, "first-pw-1")))
    # Password changes, each through another node; every node follows.
    for round_, api in enumerate(apis * 2):
        password = f"pw-{round_}-{secrets.token_hex(3)}"
        response = api.patch(
            f"/api/v1/contracts/{contract_id}", json={"config": {"password": password}}
        )
        assert response.status_code == 200
        for node in nodes:
            delays.append(_seconds_until(lambda node=node, pw=password: _accepts(node, user, pw)))
    print(f"propagation: median {statistics.median(delays) * 1000:.0f} ms, "
          f"max {max(delays) * 1000:.0f} ms over {len(delays)}")  # fmt: skip
    assert max(delays) < LIMIT


def test_suspension_through_one_node_is_refused_by_the_others(
    nodes: list[RunningDaemon], nas: dict[str, object]
) -> None:
    apis = [node.client(node.admin_token) for node in nodes]
    contract_id, user = _new_contract(apis[2], "susp-pw-1")
    for node in nodes:
        _seconds_until(lambda node=node: _accepts(node, user, "susp-pw-1"))
    # The shipped MikroTik suspended layout lets suspended contracts in (at 256k); cancel
    # refuses them everywhere.
    assert apis[0].post(f"/api/v1/contracts/{contract_id}/cancel").status_code == 200
    for node in nodes:
        assert _seconds_until(lambda node=node: not _accepts(node, user, "susp-pw-1")) < LIMIT
    assert httpx.get(f"{nodes[1].base_url}/readyz").status_code == 200


def test_a_node_that_lost_its_feed_reloads_and_follows_again(
    nodes: list[RunningDaemon], nas: dict[str, object], postgres_url: str
) -> None:
    apis = [node.client(node.admin_token) for node in nodes]
    contract_id, user = _new_contract(apis[0], "before-pw-1")
    _seconds_until(lambda: _accepts(nodes[1], user, "before-pw-1"))
    feed = nodes[1].daemon.change_feed
    assert feed is not None
    reloads = feed.reloads
    # Cut node-2's listening connection from the server side (a PostgreSQL restart, a
    # firewall dropping it), and change the contract while it is gone.
    asyncio.run(
        admin_sql(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'radius-contracts feed node-2'",
        )
    )
    change = {"config": {"password": "after-pw-2"}}
    assert apis[0].patch(f"/api/v1/contracts/{contract_id}", json=change).status_code == 200
    _seconds_until(lambda: _accepts(nodes[1], user, "after-pw-2"))
    _seconds_until(lambda: feed.reloads > reloads)
    # And it listens again: the next change arrives by notification.
    change = {"config": {"password": "later-pw-3"}}
    assert apis[2].patch(f"/api/v1/contracts/{contract_id}", json=change).status_code == 200
    assert _seconds_until(lambda: _accepts(nodes[1], user, "later-pw-3")) < LIMIT


def test_a_change_sends_one_coa_from_the_node_that_made_it(
    nodes: list[RunningDaemon], nas: dict[str, object]
) -> None:
    """The session is recorded through node-1 and the speed changed through node-3: node-3
    alone sends the CoA-Request; the others only refresh their index."""
    apis = [node.client(node.admin_token) for node in nodes]
    with CoaServer(SECRET.encode(), host="127.0.0.41") as bras:
        patched = apis[0].patch(f"/api/v1/nas/{nas['id']}", json={"coa_port": bras.port})
        assert patched.status_code == 200, patched.text
        contract_id, user = _new_contract(apis[0], "coa-pw-1")
        for node in nodes:  # the NAS's new CoA port and the contract are everywhere
            _seconds_until(lambda node=node: _accepts(node, user, "coa-pw-1"))
        acct_port = nodes[0].daemon.acct_port
        assert acct_port is not None
        acct_id = f"CL-{secrets.token_hex(4)}"
        with RadiusClient(acct_port, SECRET, source="127.0.0.41") as radius:
            start = radius.accounting_request(
                attr("Acct-Status-Type", "Start"),
                attr("Acct-Session-Id", acct_id),
                attr("User-Name", user),
            )
            assert radius.exchange(start) is not None
        sent = [node.daemon.live.dispatcher.outcomes.total() for node in nodes]  # type: ignore[union-attr]
        change = {"config": {"max_upload": "7M", "max_download": "70M"}}  # a rate limit now
        assert apis[2].patch(f"/api/v1/contracts/{contract_id}", json=change).status_code == 200
        _seconds_until(lambda: any(d[0] == codec.Code.COA_REQUEST for d in bras.received))
        time.sleep(LIMIT)  # long enough for any other node to have sent one too
        requests = {d for d in bras.received if d[0] == codec.Code.COA_REQUEST}
        assert len(requests) == 1, "one CoA-Request (retransmits are the same bytes)"
        assert acct_id.encode() in next(iter(requests))
        after = [node.daemon.live.dispatcher.outcomes.total() for node in nodes]  # type: ignore[union-attr]
        assert [b - a for a, b in zip(sent, after, strict=True)] == [0, 0, 1]


def test_shared_jobs_run_once_for_the_cluster(nodes: list[RunningDaemon]) -> None:
    """contract-dates was due when node-1 started: it ran it, and nodes 2 and 3 found it done."""
    seen = []
    for node in nodes:
        api = node.client(node.readonly_token)
        job = api.get("/api/v1/jobs/contract-dates").json()
        seen.append((job["runs"], job["last_node"], job["next_run_at"]))
    assert seen == [(1, "node-1", seen[0][2])] * 3
