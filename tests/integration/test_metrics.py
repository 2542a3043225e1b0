"""``/metrics`` after real RADIUS traffic, read with Prometheus's own parser.

Each backend gets a daemon of its own on a new database, so every count is exact: nothing
but this module's traffic reached it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families

from conftest import (
    LO_SECRET,
    Factory,
    RunningDaemon,
    make_settings,
    manufacturer_named,
    pg_cluster,
    start_daemon,
    stop_daemon,
)
from radclient import radclient
from radius_client import RadiusClient, attr
from radius_contracts.pool_use import PoolUse

Labels = frozenset[tuple[str, str]]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fresh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningDaemon]:
    """A daemon on a new database (with the shipped manufacturers and layouts)."""
    state = tmp_path_factory.mktemp(f"metrics-{request.param}")
    if request.param == "postgres":
        with pg_cluster(request.getfixturevalue("postgres_url"), state, 1) as nodes:
            yield nodes[0]
        return
    running, thread = start_daemon(make_settings(state, None))
    yield running
    stop_daemon(running, thread)


class Scrape:
    """One /metrics response, parsed: families by name and sample values by name and labels."""

    def __init__(self, response: httpx.Response) -> None:
        self.text = response.text
        self.families = {f.name: f for f in text_string_to_metric_families(response.text)}
        self.values: dict[tuple[str, Labels], float] = {}
        for family in self.families.values():
            for sample in family.samples:
                self.values[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def __call__(self, name: str, **labels: str) -> float:
        return self.values[(name, frozenset(labels.items()))]

    def buckets(self, name: str, **labels: str) -> list[tuple[float, float]]:
        """(le, cumulative count) of one histogram, in bound order."""
        found = [
            (float(sample.labels["le"]), sample.value)
            for sample in self.families[name].samples
            if sample.name == name + "_bucket"
            and {k: v for k, v in sample.labels.items() if k != "le"} == labels
        ]
        return sorted(found)


def _pap(user: str, password: str) -> str:
    return f'User-Name = "{user}"\nUser-Password = "{password}"\nMessage-Authenticator = 0x00\n'


def _acct(status: str, session_id: str, user: str) -> str:
    return (
        f'Acct-Status-Type = {status}\nAcct-Session-Id = "{session_id}"\nUser-Name = "{user}"\n'
        "NAS-IP-Address = 127.0.0.1\n"
    )


def _traffic(fresh: RunningDaemon, make: Factory) -> dict[str, Any]:
    """One of each: Accepts (one from memory, one with a pool lease), a wrong password,
    Status-Server, an unknown NAS, a malformed datagram, a bad Message-Authenticator and an
    accounting Start and Stop. Returns what was set up."""
    api = make.api
    mikrotik = manufacturer_named(api, "MikroTik")["id"]
    make.nas(address="127.0.0.1", secret=LO_SECRET, manufacturer_id=mikrotik)
    pool = make.pool(mode="managed", ranges=[f"100.{64 + secrets.randbelow(64)}.7.0/27"])
    plain = make.contract(config={"password": "pw-plain"})["config"]["username"]
    pooled = make.contract(config={"password": "pw-pool", "pool_name_ipv4": pool["name"]})
    auth, acct = fresh.daemon.auth_port, fresh.daemon.acct_port
    assert auth is not None and acct is not None

    assert radclient(auth, LO_SECRET, _pap(plain, "pw-plain")).code == "Access-Accept"
    status = radclient(auth, LO_SECRET, "Message-Authenticator = 0x00\n", command="status")
    assert status.code == "Access-Accept", status.output
    with RadiusClient(auth, LO_SECRET) as nas:
        rejected = nas.exchange(nas.access_request(plain, "not-it"))
        assert rejected is not None and not rejected.accepted
        leased = nas.exchange(
            nas.access_request(pooled["config"]["username"], "pw-pool", attr("NAS-Port", "1"))
        )
        assert leased is not None and leased.accepted
        assert leased.values().get("Framed-IP-Address")
        nas.send_raw(nas.access_request(plain, "pw-plain")[:19])  # shorter than a header
        assert nas.receive(timeout=0.3) is None
    with RadiusClient(auth, "not-the-secret", timeout=0.3) as wrong_secret:
        assert wrong_secret.exchange(wrong_secret.access_request(plain, "pw-plain")) is None
    with RadiusClient(auth, LO_SECRET, source="127.0.0.9", timeout=0.3) as stranger:
        assert stranger.exchange(stranger.access_request(plain, "pw-plain")) is None
    session = "M-" + secrets.token_hex(4)
    for status in ("Start", "Stop"):
        reply = radclient(acct, LO_SECRET, _acct(status, session, plain), command="acct")
        assert reply.code == "Accounting-Response", reply.output
    return {"pool": pool}


@pytest.fixture(scope="module")
def scraped(fresh: RunningDaemon) -> tuple[Scrape, dict[str, Any]]:
    make = Factory(fresh.client(fresh.admin_token))
    setup = _traffic(fresh, make)
    response = httpx.get(f"{fresh.base_url}/metrics")  # no token needed
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE_PLAIN_0_0_4
    return Scrape(response), setup


def test_requests_are_counted_by_port_code_and_result(
    scraped: tuple[Scrape, dict[str, Any]],
) -> None:
    scrape, _ = scraped
    requests = "radius_contracts_radius_requests_total"
    access = {"port": "auth", "code": "Access-Request"}
    assert scrape(requests, **access, result="accept") == 2
    assert scrape(requests, **access, result="reject") == 1
    assert scrape(requests, **access, result="dropped") == 1  # the bad Message-Authenticator
    assert scrape(requests, port="auth", code="Status-Server", result="response") == 1
    assert scrape(requests, port="acct", code="Accounting-Request", result="response") == 2
    answered = [
        (labels, value)
        for (name, labels), value in scrape.values.items()
        if name == requests and value
    ]
    assert len(answered) == 5  # nothing else was counted


def test_drops_are_counted_by_reason(scraped: tuple[Scrape, dict[str, Any]]) -> None:
    scrape, _ = scraped
    drops = "radius_contracts_radius_drops_total"
    assert scrape(drops, port="auth", reason="unknown_nas") == 1
    assert scrape(drops, port="auth", reason="malformed") == 1
    assert scrape(drops, port="auth", reason="bad_message_authenticator") == 1
    assert scrape("radius_contracts_radius_malformed_total", port="auth", reason="too_short") == 1
    assert not any(
        value for (name, labels), value in scrape.values.items()
        if name == drops and ("port", "acct") in labels
    )  # fmt: skip
    # The raw outcome counters, kept for existing scrapers, now by port.
    packets = "radius_contracts_radius_packets_total"
    assert scrape(packets, port="auth", outcome="received") == 7
    assert scrape(packets, port="acct", outcome="accounting_responses") == 2


def test_rejects_are_counted_by_reason(scraped: tuple[Scrape, dict[str, Any]]) -> None:
    scrape, _ = scraped
    family = scrape.families["radius_contracts_access_rejects"]
    assert {s.labels["reason"]: s.value for s in family.samples} == {"wrong_password": 1}


def test_latency_histograms_count_every_answered_request(
    scraped: tuple[Scrape, dict[str, Any]],
) -> None:
    scrape, _ = scraped
    name = "radius_contracts_radius_request_duration_seconds"
    for port, answered in (("auth", 3), ("acct", 2)):  # Status-Server is not timed
        assert scrape(name + "_count", port=port) == answered
        buckets = scrape.buckets(name, port=port)
        assert buckets[-1] == (float("inf"), answered)
        counts = [count for _le, count in buckets]
        assert counts == sorted(counts)  # cumulative
        assert 0 < scrape(name + "_sum", port=port) < 30
    # The pool lease and the group commits are database work; generous bounds only.
    assert scrape.buckets(name, port="auth")[0][0] == 0.0001


def test_accounting_batches_and_records(scraped: tuple[Scrape, dict[str, Any]]) -> None:
    scrape, _ = scraped
    assert scrape("radius_contracts_accounting_records_total", fate="recorded") == 2
    batches = scrape("radius_contracts_accounting_batch_size_count")
    assert batches == 2  # radclient waits for each answer: one record per commit
    assert scrape("radius_contracts_accounting_batch_size_sum") == 2
    assert scrape.buckets("radius_contracts_accounting_batch_size")[0] == (1.0, 2)
    assert scrape("radius_contracts_accounting_pending") == 0
    commits = "radius_contracts_accounting_commit_duration_seconds"
    assert scrape(commits + "_count") == 2  # one per batch
    assert scrape.buckets(commits)[-1] == (float("inf"), 2)
    assert (
        0 < scrape(commits + "_sum") <= scrape("radius_contracts_accounting_commit_seconds_total")
    )


def test_event_loop_lag_is_probed(scraped: tuple[Scrape, dict[str, Any]]) -> None:
    scrape, _ = scraped
    name = "radius_contracts_event_loop_lag_seconds"
    assert scrape(name + "_count") > 0  # the probe has run since the daemon started
    assert scrape.buckets(name)[0][0] == 0.001


def test_pool_use_and_index_size(scraped: tuple[Scrape, dict[str, Any]]) -> None:
    scrape, setup = scraped
    pool = setup["pool"]["name"]
    assert scrape("radius_contracts_pool_size", pool=pool, family="ipv4") == 30
    assert scrape("radius_contracts_pool_leased", pool=pool, family="ipv4") == 1
    assert 0 <= scrape("radius_contracts_pool_use_age_seconds") < 5
    assert scrape("radius_contracts_index_contracts") == 2
    assert scrape("radius_contracts_index_nas") == 1
    load_age = scrape("radius_contracts_index_load_age_seconds")
    change_age = scrape("radius_contracts_index_change_age_seconds")
    # The contracts were added after the load: a change applied since.
    assert 0 <= change_age < load_age < 600
    assert scrape("radius_contracts_coa_pending") == 0
    assert scrape("radius_contracts_auth_log_pending") >= 0


def test_metrics_reveal_no_secret(scraped: tuple[Scrape, dict[str, Any]]) -> None:
    scrape, _ = scraped
    assert LO_SECRET not in scrape.text
    assert "pw-plain" not in scrape.text and "pw-pool" not in scrape.text


def test_pool_use_reads_the_database_only_when_stale(
    fresh: RunningDaemon, scraped: tuple[Scrape, dict[str, Any]]
) -> None:
    _, setup = scraped
    services, index = fresh.daemon.services, fresh.daemon.index
    assert services is not None and index is not None
    reads: list[float] = []
    now = 1000.0

    async def held() -> Mapping[int, int]:
        reads.append(now)
        return await services.pools.held_by_pool()

    use = PoolUse(index, held, max_age=5.0, clock=lambda: now)
    fresh.run(use.refresh())
    fresh.run(use.refresh())
    assert reads == [1000.0]
    assert [(r.name, r.size, r.leased) for r in use.rows] == [(setup["pool"]["name"], 30, 1)]
    now += 5.0
    fresh.run(use.refresh())
    assert reads == [1000.0, 1005.0]


def test_pool_use_keeps_its_snapshot_when_the_database_fails(
    fresh: RunningDaemon, scraped: tuple[Scrape, dict[str, Any]]
) -> None:
    index = fresh.daemon.index
    assert index is not None
    answers: list[Mapping[int, int] | Exception] = [{}, OSError("database down")]

    async def held() -> Mapping[int, int]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    now = 0.0
    use = PoolUse(index, held, max_age=1.0, clock=lambda: now)
    fresh.run(use.refresh())
    before = use.rows
    assert [r.leased for r in before] == [0]
    now = 2.0
    fresh.run(use.refresh())  # fails: logged, not raised
    assert use.rows == before and use.refreshed_at == 0.0


def test_a_slow_pool_use_read_does_not_hold_the_scrape(
    fresh: RunningDaemon, scraped: tuple[Scrape, dict[str, Any]]
) -> None:
    index = fresh.daemon.index
    assert index is not None

    async def stuck() -> Mapping[int, int]:
        await asyncio.sleep(30)
        return {}

    use = PoolUse(index, stuck, timeout=0.1)
    started = time.monotonic()
    fresh.run(use.refresh())
    assert time.monotonic() - started < 10
    assert use.rows == () and use.age() is None
