"""Managed pool leasing on real databases: who gets which address, and nobody gets one twice.

Each backend gets a database of its own for this module (the leases of one test must not be
another's pool history): an SQLite file, and a fresh PostgreSQL database when one is reachable.
Pools are made per test. Times come from a clock the test moves, except where noted.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import Factory, RunningDaemon, migrated_database
from radius_contracts.aaa import pools
from radius_contracts.aaa.handler import Leases
from radius_contracts.aaa.pools import Leaser, PoolExhausted, bind, release
from radius_contracts.db.engine import create_engine, session_factory
from radius_contracts.db.models import Contract, Lease, Pool
from radius_contracts.domain import PoolSnapshot
from radius_contracts.index import FixedAddresses
from radius_contracts.services.contract_fields import flatten, new_contract
from radius_contracts.store import authz
from radius_contracts.store.leases import LEASES

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from migrated_database(request, tmp_path_factory, "leases")


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


class Clock:
    """A UTC clock that moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def leaser(sessions: Sessions, clock: Clock, fixed: set[str] | None = None) -> Leaser:
    is_fixed = (fixed if fixed is not None else set()).__contains__
    return Leaser(sessions, offer_timeout=60, is_fixed=is_fixed, clock=clock)


async def new_pool(
    sessions: Sessions,
    ranges: list[str],
    *,
    family: str = "ipv4",
    prefix_length: int | None = None,
    mode: str = "managed",
) -> PoolSnapshot:
    name = f"pool-{secrets.token_hex(4)}"
    async with sessions() as session, session.begin():
        session.add(
            Pool(
                name=name,
                family=family,
                ranges=ranges,
                prefix_length=prefix_length,
                mode=mode,
                lease_time=3600,
            )
        )
    async with sessions() as session:
        # Through the index loader, as the daemon sees pools.
        return next(pool for pool in await authz.pools(session) if pool.name == name)


async def new_contracts(sessions: Sessions, count: int) -> list[int]:
    tag = secrets.token_hex(4)
    bodies = [
        {"number": f"C-{tag}-{n}", "config": {"username": f"u-{tag}-{n}"}} for n in range(count)
    ]
    rows = [Contract(**flatten(new_contract(body))) for body in bodies]
    async with sessions() as session, session.begin():
        session.add_all(rows)
    return [row.id for row in rows]


async def leases_of(sessions: Sessions, pool_id: int) -> dict[str, Lease]:
    async with sessions() as session:
        rows = await session.scalars(select(Lease).where(Lease.pool_id == pool_id))
        return {row.address: row for row in rows}


async def confirm(sessions: Sessions, now: datetime, contract_id: int, address: str) -> None:
    async with sessions() as session, session.begin():
        await bind(session, now, [(contract_id, address, 3600)])


async def stop(sessions: Sessions, now: datetime, contract_id: int, address: str) -> None:
    async with sessions() as session, session.begin():
        await release(session, now, [(contract_id, address)])


# -- who gets which address -------------------------------------------------------------------


async def test_a_contract_gets_its_address_back(sessions: Sessions) -> None:
    pool = await new_pool(sessions, ["100.64.0.0/24"])
    alice, bob = await new_contracts(sessions, 2)
    clock = Clock()
    leases = leaser(sessions, clock)

    first = await leases.lease(pool, alice)
    assert first == "100.64.0.1"
    assert await leases.lease(pool, alice) == first  # authenticating again: the same one
    other = await leases.lease(pool, bob)
    assert other == "100.64.0.2"  # held by alice: bob gets another

    await confirm(sessions, clock.advance(5), alice, first)
    await stop(sessions, clock.advance(100), alice, first)
    assert (await leases_of(sessions, pool.id))[first].state == "released"
    clock.advance(3600)
    assert await leases.lease(pool, alice) == first  # sticky after the stop
    assert await leases.lease(pool, bob) == other

    # A second simultaneous session of alice's needs another address.
    second = await leases.lease(pool, alice, share=False)
    assert second not in (first, other)
    rows = await leases_of(sessions, pool.id)
    assert {address: row.contract_id for address, row in rows.items()} == {
        first: alice,
        other: bob,
        second: alice,
    }
    assert all(row.state == "offered" for row in rows.values())


async def test_addresses_fixed_on_contracts_are_never_leased(sessions: Sessions) -> None:
    pool = await new_pool(sessions, ["100.65.0.0/24"])
    contracts = await new_contracts(sessions, 3)
    leases = leaser(sessions, Clock(), fixed={"100.65.0.1", "100.65.0.3"})
    got = [await leases.lease(pool, contract) for contract in contracts]
    assert got == ["100.65.0.2", "100.65.0.4", "100.65.0.5"]


async def test_fixed_prefixes_of_other_sizes_are_never_leased(sessions: Sessions) -> None:
    # A fixed /56 covers 256 of this /32's /64s: 2^32 candidates, never listed.
    pool = await new_pool(sessions, ["3fff:100::/32"], family="ipv6", prefix_length=64)
    fixed = FixedAddresses()
    fixed.add("3fff:100::/56")
    fixed.watch([64])
    (contract,) = await new_contracts(sessions, 1)
    leases = Leaser(sessions, offer_timeout=60, is_fixed=fixed.overlaps, clock=Clock())
    assert await leases.lease(pool, contract) == "3fff:100:0:100::/64"


async def test_an_address_no_longer_fixed_is_found_before_refusing(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = await new_pool(sessions, ["100.65.1.0/30"])  # .1 and .2
    one, two = await new_contracts(sessions, 2)
    fixed = {"100.65.1.1"}
    leases = leaser(sessions, Clock(), fixed=fixed)
    assert await leases.lease(pool, one) == "100.65.1.2"
    with pytest.raises(PoolExhausted):
        await leases.lease(pool, two)
    fixed.clear()  # the contract holding it was changed
    monkeypatch.setattr(pools, "_RESCAN", 0.0)  # the node walked the pool long ago
    assert await leases.lease(pool, two) == "100.65.1.1"


async def test_network_and_broadcast_are_skipped_and_exhaustion_counts(
    sessions: Sessions,
) -> None:
    pool = await new_pool(sessions, ["100.66.0.0/29", "100.66.1.0/31"])
    contracts = await new_contracts(sessions, 10)
    leases = leaser(sessions, Clock())
    got = [await leases.lease(pool, contract) for contract in contracts[:8]]
    assert got == [*(f"100.66.0.{n}" for n in range(1, 7)), "100.66.1.0", "100.66.1.1"]

    with pytest.raises(PoolExhausted) as refused:
        await leases.lease(pool, contracts[8])
    assert refused.value.pool == pool.name and pool.name in str(refused.value)
    as_handler_sees_it: Leases = leases
    assert as_handler_sees_it.exhausted_error(refused.value) == pool.name
    assert as_handler_sees_it.exhausted_error(ValueError()) is None
    with pytest.raises(PoolExhausted):
        await leases.lease(pool, contracts[9])
    assert leases.exhausted == {pool.name: 2}
    # Their own addresses are still theirs.
    assert await leases.lease(pool, contracts[0]) == "100.66.0.1"


async def test_a_released_address_waits_for_its_contract(sessions: Sessions) -> None:
    pool = await new_pool(sessions, ["100.67.0.0/29"])  # 6 addresses
    contracts = await new_contracts(sessions, 8)
    clock = Clock()
    leases = leaser(sessions, clock)
    early, late = contracts[0], contracts[1]
    for contract in (early, late):
        address = await leases.lease(pool, contract)
        await confirm(sessions, clock.now, contract, address)
    await stop(sessions, clock.advance(10), early, "100.67.0.1")
    await stop(sessions, clock.advance(10), late, "100.67.0.2")

    # Never-used addresses go first, even though two are free.
    got = [await leases.lease(pool, contract) for contract in contracts[2:6]]
    assert got == ["100.67.0.3", "100.67.0.4", "100.67.0.5", "100.67.0.6"]
    # Then the one free the longest, whoever had it.
    assert await leases.lease(pool, contracts[6]) == "100.67.0.1"
    assert await leases.lease(pool, late) == "100.67.0.2"  # still its own
    with pytest.raises(PoolExhausted):
        await leases.lease(pool, early)  # its address went to another contract
    rows = await leases_of(sessions, pool.id)
    assert rows["100.67.0.1"].contract_id == contracts[6]


async def test_expire_ends_offers_never_confirmed(sessions: Sessions) -> None:
    # A clock long past: only this test's leases are due in this database.
    clock = Clock(datetime(2001, 1, 1, tzinfo=UTC))
    pool = await new_pool(sessions, ["100.68.0.0/30"])  # 2 addresses
    offered, confirmed, newcomer = await new_contracts(sessions, 3)
    leases = leaser(sessions, clock)
    lost = await leases.lease(pool, offered)
    kept = await leases.lease(pool, confirmed)
    await confirm(sessions, clock.now, confirmed, kept)
    with pytest.raises(PoolExhausted):
        await leases.lease(pool, newcomer)

    clock.advance(61)  # offer_timeout is 60
    assert await leases.expire() == 1
    assert await leases.expire() == 0
    rows = await leases_of(sessions, pool.id)
    assert rows[lost].state == "expired" and rows[lost].contract_id == offered
    assert rows[kept].state == "bound"
    assert await leases.lease(pool, newcomer) == lost


async def test_ipv6_prefixes_and_delegated_prefixes(sessions: Sessions) -> None:
    v6 = await new_pool(sessions, ["2001:db8:100::/48"], family="ipv6", prefix_length=64)
    pd = await new_pool(sessions, ["2001:db8:200::/40"], family="ipv6-pd", prefix_length=56)
    one, two = await new_contracts(sessions, 2)
    clock = Clock()
    leases = leaser(sessions, clock)
    assert await leases.lease(v6, one) == "2001:db8:100::/64"
    assert await leases.lease(v6, two) == "2001:db8:100:1::/64"
    assert await leases.lease(pd, one) == "2001:db8:200::/56"
    assert await leases.lease(pd, two) == "2001:db8:200:100::/56"
    # A NAS reports prefixes in its own spelling; bind and release canonicalise them.
    await confirm(sessions, clock.now, one, "2001:0db8:0200:0000::/56")
    assert (await leases_of(sessions, pd.id))["2001:db8:200::/56"].state == "bound"
    await stop(sessions, clock.advance(1), one, "2001:DB8:200::/56")
    assert (await leases_of(sessions, pd.id))["2001:db8:200::/56"].state == "released"


async def test_bind_and_release_touch_only_the_contracts_own_lease(sessions: Sessions) -> None:
    pool = await new_pool(sessions, ["100.69.0.0/29"])
    nas_pool = await new_pool(sessions, ["100.69.1.0/29"], mode="nas")
    owner, stranger = await new_contracts(sessions, 2)
    clock = Clock()
    leases = leaser(sessions, clock)
    address = await leases.lease(pool, owner)

    await confirm(sessions, clock.now, stranger, address)  # not the stranger's lease
    await stop(sessions, clock.now, owner, address)  # offered, not bound: a newer session's
    await confirm(sessions, clock.now, owner, "not an address")
    row = (await leases_of(sessions, pool.id))[address]
    assert row.state == "offered" and row.contract_id == owner

    await confirm(sessions, clock.now, owner, address)
    row = (await leases_of(sessions, pool.id))[address]
    assert row.state == "bound" and row.expires_at == clock.now + timedelta(seconds=3600)

    # Authenticating again while bound: offered again, for no shorter than it was held.
    assert await leases.lease(pool, owner) == address
    row = (await leases_of(sessions, pool.id))[address]
    assert row.state == "offered" and row.expires_at == clock.now + timedelta(seconds=3600)
    # The old session's Stop then leaves the address to the new one.
    await stop(sessions, clock.now, owner, address)
    assert (await leases_of(sessions, pool.id))[address].state == "offered"
    await confirm(sessions, clock.advance(1), owner, address)
    await stop(sessions, clock.advance(1), owner, address)
    row = (await leases_of(sessions, pool.id))[address]
    assert row.state == "released" and row.expires_at == clock.now

    # The offer expired but nobody took the address: a late Start still binds it.
    assert await leases.lease(pool, owner) == address
    clock.advance(600)
    await leases.expire()
    await confirm(sessions, clock.now, owner, address)
    assert (await leases_of(sessions, pool.id))[address].state == "bound"

    with pytest.raises(ValueError, match="not a managed pool"):
        await leases.lease(nas_pool, owner)


async def test_a_16_pool_leases_quickly_even_when_nearly_full(sessions: Sessions) -> None:
    pool = await new_pool(sessions, ["100.70.0.0/16"])
    (holder,) = await new_contracts(sessions, 1)
    contracts = await new_contracts(sessions, 202)
    clock = Clock()

    leases = leaser(sessions, clock)
    started = time.perf_counter()
    for contract in contracts[:200]:
        await leases.lease(pool, contract)
    per_lease = (time.perf_counter() - started) / 200
    print(f"\n{sessions.kw['bind'].dialect.name}: {per_lease * 1000:.2f} ms per lease")
    assert per_lease < 0.05

    # Every other address of the /16 is held by someone else...
    held_until = clock.now + timedelta(days=1)
    rows = [
        {
            "pool_id": pool.id,
            "address": f"100.70.{n >> 8}.{n & 255}",
            "contract_id": holder,
            "state": "bound",
            "leased_at": clock.now,
            "expires_at": held_until,
        }
        for n in range(201, 65534)
    ]
    async with sessions() as session, session.begin():
        await session.execute(LEASES.insert(), rows)

    # ...and a node that just started finds the last one without listing the pool.
    fresh = leaser(sessions, clock)
    started = time.perf_counter()
    assert await fresh.lease(pool, contracts[200]) == "100.70.255.254"
    first = time.perf_counter() - started
    started = time.perf_counter()
    with pytest.raises(PoolExhausted):
        await fresh.lease(pool, contracts[201])
    refused = time.perf_counter() - started
    print(f"first lease in a full /16 {first * 1000:.0f} ms, refusal {refused * 1000:.1f} ms")
    assert first < 3 and refused < 0.5


async def test_a_changed_pool_leases_from_its_new_ranges(sessions: Sessions) -> None:
    pool = await new_pool(sessions, ["100.71.0.0/30"])
    one, two = await new_contracts(sessions, 2)
    clock = Clock()
    leases = leaser(sessions, clock)
    assert await leases.lease(pool, one) == "100.71.0.1"
    moved = PoolSnapshot(
        pool.name,
        pool.family,
        pool.mode,
        pool.active,
        id=pool.id,
        ranges=("100.71.1.0/30",),
        lease_time=pool.lease_time,
    )
    # Its old address is no longer in the pool: it is not handed out again.
    assert await leases.lease(moved, one) == "100.71.1.1"
    assert await leases.lease(moved, two) == "100.71.1.2"


# -- several daemon nodes on one database -----------------------------------------------------


async def _race(
    database_url: str, pool: PoolSnapshot, contracts: list[int], nodes: int
) -> tuple[dict[int, str], int]:
    """Each node leases for its share of the contracts, all at once; (leased, refused)."""
    engines = [create_engine(database_url) for _ in range(nodes)]
    try:
        leasers = [
            Leaser(session_factory(engine), offer_timeout=60, is_fixed=lambda _a: False)
            for engine in engines
        ]

        async def one(contract: int) -> str | None:
            try:
                return await leasers[contract % nodes].lease(pool, contract)
            except PoolExhausted:
                return None

        results = await asyncio.gather(*(one(contract) for contract in contracts))
    finally:
        for engine in engines:
            await engine.dispose()
    leased = {c: a for c, a in zip(contracts, results, strict=True) if a is not None}
    return leased, sum(result is None for result in results)


async def test_nodes_racing_for_a_small_pool_never_share_an_address(
    sessions: Sessions, database_url: str
) -> None:
    pool = await new_pool(sessions, ["100.72.0.0/26"])  # 62 addresses
    contracts = await new_contracts(sessions, 80)
    leased, refused = await _race(database_url, pool, contracts, nodes=4)
    assert len(leased) == 62 and refused == 18
    assert len(set(leased.values())) == 62
    rows = await leases_of(sessions, pool.id)
    assert {row.address: row.contract_id for row in rows.values()} == {
        address: contract for contract, address in leased.items()
    }


async def test_nodes_racing_to_reclaim_free_addresses_take_each_once(
    sessions: Sessions, database_url: str
) -> None:
    pool = await new_pool(sessions, ["100.73.0.0/27"])  # 30 addresses, all used before
    (former,) = await new_contracts(sessions, 1)
    contracts = await new_contracts(sessions, 40)
    past = datetime.now(UTC) - timedelta(hours=1)
    rows: list[dict[str, Any]] = [
        {
            "pool_id": pool.id,
            "address": f"100.73.0.{n}",
            "contract_id": former,
            "state": "released",
            "leased_at": past,
            "expires_at": past + timedelta(seconds=n),
        }
        for n in range(1, 31)
    ]
    async with sessions() as session, session.begin():
        await session.execute(LEASES.insert(), rows)

    leased, refused = await _race(database_url, pool, contracts, nodes=4)
    assert len(leased) == 30 and refused == 10
    assert len(set(leased.values())) == 30
    stored = await leases_of(sessions, pool.id)
    assert {row.address: row.contract_id for row in stored.values()} == {
        address: contract for contract, address in leased.items()
    }


# -- the API --------------------------------------------------------------------------------


def test_pool_usage_counts_held_leases(
    daemon: RunningDaemon, api: httpx.Client, readonly_api: httpx.Client, make: Factory
) -> None:
    created = make.pool()
    network = created["ranges"][0]
    fixed_address = network.replace(".0/24", ".1")
    owner = make.contract(config={"ipv4": fixed_address})
    contracts = [make.contract()["id"] for _ in range(2)]
    index = daemon.daemon.index
    assert index is not None
    pool = index.pool(created["name"])
    assert pool is not None
    assert pool.id == created["id"] and pool.ranges == (network,) and pool.lease_time == 86400
    assert index.is_fixed(fixed_address) and fixed_address in index.fixed_addresses

    usage = readonly_api.get(f"/api/v1/radius/pools/{created['id']}/usage")
    assert usage.status_code == 200, usage.text
    assert usage.json() == {
        "pool_id": created["id"],
        "name": created["name"],
        "family": "ipv4",
        "mode": "managed",
        "size": 254,
        "held": 0,
        "offered": 0,
        "bound": 0,
        "free": 254,
    }

    assert daemon.daemon.services is not None
    factory = daemon.daemon.services.context.sessions

    async def lease_two() -> list[str]:
        leases = Leaser(factory, offer_timeout=60, is_fixed=index.is_fixed)
        got = [await leases.lease(pool, contract) for contract in contracts]
        async with factory() as session, session.begin():
            await bind(session, datetime.now(UTC), [(contracts[0], got[0], 3600)])
        return got

    got = daemon.run(lease_two())
    assert fixed_address not in got  # the owner's fixed address is skipped
    body = readonly_api.get(f"/api/v1/radius/pools/{created['id']}/usage").json()
    assert (body["held"], body["offered"], body["bound"], body["free"]) == (2, 1, 1, 252)

    # Freeing the fixed address lets pools use it again.
    api.patch(f"/api/v1/contracts/{owner['id']}", json={"config": {"ipv4": None}})
    assert not index.is_fixed(fixed_address)

    nas_pool = make.pool(mode="nas")
    body = readonly_api.get(f"/api/v1/radius/pools/{nas_pool['id']}/usage").json()
    assert (body["mode"], body["held"], body["free"]) == ("nas", 0, 254)
    v6 = make.pool(family="ipv6")
    assert readonly_api.get(f"/api/v1/radius/pools/{v6['id']}/usage").json()["size"] == 2**16

    missing = readonly_api.get("/api/v1/radius/pools/2147483647/usage")
    assert missing.status_code == 404
    anonymous = httpx.get(f"{daemon.base_url}/api/v1/radius/pools/{created['id']}/usage")
    assert anonymous.status_code == 401
