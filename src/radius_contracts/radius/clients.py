"""Which source addresses are RADIUS clients (NAS) and their secrets: the wire layer's view."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 6614 §2.3: over TLS the shared secret is "radsec" unless one is configured.
RADSEC_SECRET = b"radsec"


@dataclass(frozen=True, slots=True)
class NasClient:
    """A NAS allowed to talk to us: the id the handler knows it by, and its shared secret."""

    id: int
    secret: bytes = field(repr=False)  # kept out of reprs, which end up in logs
    require_message_authenticator: bool
    name: str = ""  # for log lines


class ClientTable:
    """Source IP → NasClient: single addresses in a dict, CIDR entries most specific first.

    Immutable once built; the daemon swaps in a new table when the NAS list changes, so a
    packet is always checked against one consistent set.
    """

    __slots__ = ("_exact", "_networks")

    def __init__(self, entries: Iterable[tuple[str, NasClient]] = ()) -> None:
        exact: dict[str, NasClient] = {}
        networks: list[tuple[IPNetwork, NasClient]] = []
        for address, client in entries:
            network = ipaddress.ip_network(address, strict=False)
            if network.num_addresses == 1:
                exact.setdefault(str(network.network_address), client)
            else:
                networks.append((network, client))
        networks.sort(key=lambda item: item[0].prefixlen, reverse=True)
        self._exact = exact
        self._networks = tuple(networks)

    def __len__(self) -> int:
        return len(self._exact) + len(self._networks)

    def lookup(self, source: str) -> NasClient | None:
        """The client for datagrams from ``source`` (as the socket reports it), or None."""
        client = self._exact.get(source)
        if client is not None or (not self._networks and not source.startswith("::ffff:")):
            return client
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
            address = address.ipv4_mapped
            client = self._exact.get(str(address))
            if client is not None:
                return client
        for network, candidate in self._networks:
            if address.version == network.version and address in network:
                return candidate
        return None
