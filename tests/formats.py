"""Hypothesis strategies for the string formats /openapi.json names that are this API's own.

"ipv4-network" and "ipv6-network": a network address with its prefix length, host bits zero.
The fuzzer registers them with schemathesis; test_openapi_formats checks that validation takes
everything they generate.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st


def _networks(
    bits: int, build: type[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> st.SearchStrategy[str]:
    def network(length: int) -> st.SearchStrategy[str]:
        host = bits - length
        return st.integers(0, 2**length - 1).map(lambda n: str(build((n << host, length))))

    return st.integers(0, bits).flatmap(network)


IPV4_NETWORK = _networks(32, ipaddress.IPv4Network)
IPV6_NETWORK = _networks(128, ipaddress.IPv6Network)
FORMATS = {"ipv4-network": IPV4_NETWORK, "ipv6-network": IPV6_NETWORK}
