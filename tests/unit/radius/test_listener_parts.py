"""The listener's helpers: the client table (source → NAS) and the duplicate reply cache."""

from __future__ import annotations

import asyncio

from radius_contracts.radius.clients import ClientTable, NasClient
from radius_contracts.radius.dedup import DRAIN_STEP, IN_PROGRESS, ReplyCache


def _client(nas_id: int) -> NasClient:
    return NasClient(nas_id, f"secret-{nas_id}".encode(), True)


def test_client_table_prefers_exact_addresses_then_the_most_specific_network() -> None:
    table = ClientTable(
        [
            ("10.0.0.0/8", _client(1)),
            ("10.1.0.0/16", _client(2)),
            ("10.1.2.3", _client(3)),
            ("2001:db8::/32", _client(4)),
            ("2001:db8::1", _client(5)),
        ]
    )
    found = {
        source: (c.id if (c := table.lookup(source)) else None)
        for source in ("10.1.2.3", "10.1.9.9", "10.9.9.9", "11.0.0.1", "2001:db8::1",
                       "2001:db8::2", "::ffff:10.1.2.3", "::ffff:10.1.7.7", "not-an-ip")
    }  # fmt: skip
    assert found == {
        "10.1.2.3": 3,
        "10.1.9.9": 2,
        "10.9.9.9": 1,
        "11.0.0.1": None,
        "2001:db8::1": 5,
        "2001:db8::2": 4,
        "::ffff:10.1.2.3": 3,  # IPv4 peers on a dual-stack socket
        "::ffff:10.1.7.7": 2,
        "not-an-ip": None,
    }
    assert len(table) == 5


def test_client_table_without_networks_answers_exact_addresses_only() -> None:
    table = ClientTable([("192.0.2.1/32", _client(1))])
    assert table.lookup("192.0.2.1") is not None
    assert table.lookup("192.0.2.2") is None


async def test_reply_cache_keeps_replies_for_one_to_two_windows() -> None:
    cache = ReplyCache(window=0.05)
    cache.start(asyncio.get_running_loop())
    key = ("127.0.0.1", 1000, 7, b"a" * 16)
    assert cache.get(key) is None
    cache.put(key, IN_PROGRESS)
    assert cache.get(key) is IN_PROGRESS
    cache.put(key, b"reply")
    await asyncio.sleep(0.07)  # one rotation: still answered from the previous generation
    assert cache.get(key) == b"reply"
    await asyncio.sleep(0.07)  # two rotations: forgotten
    assert cache.get(key) is None and len(cache) == 0
    cache.stop()


async def test_an_expired_generation_is_freed_a_slice_per_loop_turn() -> None:
    # Freeing rate x window replies at once held every packet up (40 ms after a burst of
    # 25,000 req/s): the expired generation goes DRAIN_STEP entries per turn of the loop.
    loop = asyncio.get_running_loop()
    cache = ReplyCache(window=60)  # rotated by hand below, not by the timer
    keys = [("192.0.2.1", 1812, n % 256, n.to_bytes(16, "big")) for n in range(5 * DRAIN_STEP)]
    for key in keys:
        cache.put(key, b"reply")
    cache._rotate(loop)  # the replies are now the previous generation, still answered
    assert cache.get(keys[0]) == b"reply" and len(cache) == len(keys)
    expired = cache._previous
    cache._rotate(loop)  # and now expired
    assert cache.get(keys[0]) is None and len(cache) == 0
    sizes = [len(expired)]
    for _ in range(6):
        await asyncio.sleep(0)  # one turn of the loop
        sizes.append(len(expired))
    assert sizes == [5 * DRAIN_STEP - n * DRAIN_STEP for n in range(6)] + [0]
    cache.stop()
