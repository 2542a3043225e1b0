"""UDP sockets for the listeners: one per bind address, IPv4 and IPv6 side by side."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable, Sequence

from radius_contracts.radius import udp
from radius_contracts.radius.protocol import RadiusProtocol


def udp_socket(
    address: str, port: int, receive_buffer: int, *, reuse_port: bool = False
) -> socket.socket:
    """A bound, non-blocking UDP socket.

    IPv6 sockets are IPv6-only, so ``["0.0.0.0", "::"]`` binds both families on one port
    instead of the second bind failing with "address in use". With ``reuse_port`` several
    sockets share the port (SO_REUSEPORT: the kernel spreads datagrams over them by source
    address and port), one per worker process.
    """
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        with contextlib.suppress(OSError):  # the kernel caps it at net.core.rmem_max
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.bind((address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_listeners(
    addresses: Sequence[str],
    port: int,
    protocol: Callable[[], RadiusProtocol],
    receive_buffer: int,
) -> list[tuple[asyncio.DatagramTransport, RadiusProtocol]]:
    """Bind ``port`` on every address; on failure, close what was opened and raise OSError."""
    opened: list[tuple[asyncio.DatagramTransport, RadiusProtocol]] = []
    try:
        for address in addresses:
            sock = udp_socket(address, port, receive_buffer)
            opened.append(await udp.open_endpoint(protocol, sock))
    except BaseException:
        for transport, _proto in opened:
            transport.close()
        raise
    return opened
