"""Pool geometry (PoolSpace) and the fixed-address set the leaser consults (FixedAddresses)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from radius_contracts.aaa.pools import PoolSpace
from radius_contracts.index import FixedAddresses


def test_ipv4_space_skips_network_and_broadcast_of_ranges_shorter_than_31() -> None:
    space = PoolSpace.of("ipv4", ["10.0.0.0/29", "10.0.1.0/31", "10.0.2.7/32"], None)
    everything = [space.at(i) for i in range(space.size)]
    assert everything == [
        *(f"10.0.0.{n}" for n in range(1, 7)),
        "10.0.1.0",
        "10.0.1.1",
        "10.0.2.7",
    ]
    assert "10.0.0.1" in space and "10.0.2.7" in space
    assert "10.0.0.0" not in space and "10.0.0.7" not in space and "10.0.3.1" not in space
    assert "2001:db8::1" not in space and "nonsense" not in space
    with pytest.raises(IndexError):
        space.at(space.size)


def test_a_16_is_counted_not_listed() -> None:
    space = PoolSpace.of("ipv4", ["100.64.0.0/16"], None)
    assert space.size == 65534
    assert space.at(0) == "100.64.0.1" and space.at(65533) == "100.64.255.254"


def test_ipv6_space_is_prefixes_of_prefix_length() -> None:
    space = PoolSpace.of("ipv6", ["2001:db8::/32"], 64)
    assert space.size == 2**32
    assert space.at(0) == "2001:db8::/64"
    assert space.at(1) == "2001:db8:0:1::/64"
    assert space.at(2**32 - 1) == "2001:db8:ffff:ffff::/64"
    assert "2001:db8:0:1::/64" in space
    assert "2001:db8:0:1::/56" not in space  # another size
    assert "2001:db8:0:1::1/64" not in space  # not a prefix
    assert "2001:db9::/64" not in space

    pd = PoolSpace.of("ipv6-pd", ["2001:db8:100::/40", "2001:db8:200::/48"], 56)
    assert pd.size == 2**16 + 2**8
    assert pd.at(1) == "2001:db8:100:100::/56"
    assert pd.at(2**16) == "2001:db8:200::/56"


def test_ipv6_default_prefix_length_is_64() -> None:
    assert PoolSpace.of("ipv6", ["2001:db8::/60"], None).size == 16


def test_fixed_addresses_are_counted_and_canonical() -> None:
    fixed = FixedAddresses()
    fixed.add("10.0.0.5")
    fixed.add("2001:DB8:0:1::/64")
    assert "10.0.0.5" in fixed and "2001:db8:0:1::/64" in fixed
    assert set(fixed) == {"10.0.0.5", "2001:db8:0:1::/64"} and len(fixed) == 2
    # An address moving between contracts: the new holder's update may come first.
    fixed.add("10.0.0.5")
    fixed.discard("10.0.0.5")
    assert fixed.overlaps("10.0.0.5")
    fixed.discard("10.0.0.5")
    assert not fixed.overlaps("10.0.0.5") and "10.0.0.5" not in fixed
    fixed.discard("10.0.0.9")  # unknown: nothing happens


def test_fixed_ipv6_prefixes_overlap_candidates_of_other_sizes() -> None:
    fixed = FixedAddresses()
    fixed.add("2001:db8:100::/56")  # covers 256 /64s
    fixed.add("2001:db8:200:5::/64")  # inside one /56
    fixed.add("2001:db8:300::1")  # a single address
    assert fixed.overlaps("2001:db8:100:7::/64")
    assert fixed.overlaps("2001:db8:100::/56")
    assert not fixed.overlaps("2001:db8:101::/64")
    # Candidates longer than what they would cover: without and with the watched length.
    assert fixed.overlaps("2001:db8:200::/56")
    assert fixed.overlaps("2001:db8:300::/64")
    fixed.watch([56, 64])
    assert fixed.overlaps("2001:db8:200::/56")
    assert fixed.overlaps("2001:db8:300::/64")
    assert not fixed.overlaps("2001:db8:200:100::/56")
    fixed.discard("2001:db8:200:5::/64")
    assert not fixed.overlaps("2001:db8:200::/56")
    fixed.add("2001:db8:200:5::/64")  # added after watch(): kept cut as well
    assert fixed.overlaps("2001:db8:200::/56")
    assert not fixed.overlaps("10.0.0.1")


def test_span_formats_like_ipaddress() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        # Random zero runs, where the "::" compression rules matter.
        hextets = [rng.getrandbits(16) if rng.random() < 0.5 else 0 for _ in range(8)]
        value = int.from_bytes(b"".join(h.to_bytes(2, "big") for h in hextets), "big")
        network = ipaddress.IPv6Network((value, 128))
        space = PoolSpace.of("ipv6", [str(network)], 128)
        assert space.span(0, 1) == [str(network)]
    mapped = PoolSpace.of("ipv6", ["::ffff:10.0.0.0/120"], 128)
    assert mapped.at(5) == str(ipaddress.IPv6Network("::ffff:10.0.0.5/128"))
    v4 = PoolSpace.of("ipv4", ["10.0.0.0/30", "10.0.1.0/30"], None)
    assert v4.span(1, 3) == ["10.0.0.2", "10.0.1.1"]
    assert v4.span(0, 99) == ["10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.1.2"]
