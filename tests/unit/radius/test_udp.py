"""The batched datagram transport: every queued datagram read, replies sent, a clean close."""

from __future__ import annotations

import asyncio
import socket

import pytest

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


class Picky(Echo):
    """Answers every datagram and, for b"also-bad", first sends to a port no datagram may go
    to; ``later`` answers from a callback outside the read (as accounting does after its
    commit) instead of at once."""

    later = False

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[Exception] = []

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.received.append(data)
        if self.later:
            asyncio.get_running_loop().call_later(0.02, self._answer, data, addr)
        else:
            self._answer(data, addr)

    def _answer(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        assert self.transport is not None
        if data == b"also-bad":
            self.transport.sendto(b"never", ("127.0.0.1", 0))  # EINVAL: port 0
        self.transport.sendto(b"re:" + data, addr)

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)


class PickyLater(Picky):
    later = True


@pytest.mark.parametrize("protocol_class", [Picky, PickyLater])
def test_one_failing_send_stops_none_of_the_other_replies(protocol_class: type[Picky]) -> None:
    async def run() -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(2)
        # Queued before the loop looks, so that they are read (and answered) in batches.
        sent = [f"n-{n}".encode() for n in range(50)] + [b"also-bad"]
        sent += [f"m-{n}".encode() for n in range(50)]
        for data in sent:
            client.sendto(data, server.getsockname())
        transport, protocol = await udp.open_endpoint(protocol_class, server)
        for _ in range(200):
            if len(protocol.received) == len(sent):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        answers = {client.recv(65535) for _ in sent}
        assert answers == {b"re:" + data for data in sent}
        assert len(protocol.errors) == 1 and isinstance(protocol.errors[0], OSError)
        transport.close()
        client.close()

    asyncio.run(run())


class Closer(Echo):
    """Answers by host name, then closes the transport while its batch is being handled."""

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.received.append(data)
        assert self.transport is not None
        # Not a dotted quad: the C batch refuses it, socket.sendto resolves it.
        self.transport.sendto(b"by-name:" + data, ("localhost", addr[1]))
        self.transport.sendto(b"re:" + data, addr)
        self.transport.close()


def test_replies_to_host_names_and_replies_given_before_close_go_out() -> None:
    async def run() -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.settimeout(2)
        for data in (b"first", b"second"):  # both read in one batch; the first closes
            client.sendto(data, server.getsockname())
        _transport, closer = await udp.open_endpoint(Closer, server)
        await asyncio.wait_for(closer.lost.wait(), 2)
        assert closer.received == [b"first"]
        assert {client.recv(100), client.recv(100)} == {b"by-name:first", b"re:first"}
        client.close()

    asyncio.run(run())
