"""The batched datagram transport: every queued datagram read, replies sent, a clean close."""

from __future__ import annotations

import asyncio
import socket

from radius_contracts.radius import udp


class Echo(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[bytes] = []
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.received.append(data)
        assert self.transport is not None
        self.transport.sendto(b"re:" + data, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


def test_a_burst_is_read_whole_answered_and_the_socket_closed() -> None:
    async def run() -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(2)
        # Queued before the loop looks: more than one wake-up's batch, and one datagram
        # larger than any RADIUS packet, which must arrive whole (the listener drops it).
        sent = [f"packet-{n}".encode() for n in range(udp.READ_BATCH * 3)] + [bytes(5000)]
        for data in sent:
            client.sendto(data, server.getsockname())
        transport, echo = await udp.open_endpoint(Echo, server)
        assert transport.get_extra_info("sockname") == server.getsockname()
        for _ in range(200):
            if len(echo.received) == len(sent):
                break
            await asyncio.sleep(0.01)
        assert echo.received == sent
        answers = {client.recv(65535) for _ in sent}
        assert answers == {b"re:" + data for data in sent}
        transport.close()
        assert transport.is_closing()
        transport.sendto(b"late", client.getsockname())  # ignored once closing
        await asyncio.wait_for(echo.lost.wait(), 2)
        assert server.fileno() == -1
        client.close()

    asyncio.run(run())
