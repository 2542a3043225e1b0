"""A datagram transport that reads every queued datagram in one wake-up.

asyncio's own selector datagram transport takes one datagram per turn of the event loop, so
a burst of N requests costs N turns (a poll system call and the loop's bookkeeping each),
which under load is a fifth of an Access-Request's cost. This one reads until the socket is
empty, at most ``READ_BATCH`` at a time so timers and other sockets still get their turn,
and sends directly, queueing only when the kernel's send buffer is full. It implements what
the listeners use: ``sendto``, ``is_closing``, ``close``, ``abort``, ``get_extra_info``.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["READ_BATCH", "BatchedDatagramTransport", "open_endpoint"]

READ_BATCH = 64  # datagrams per wake-up at most
_MAX_DATAGRAM = 65_535  # read whole: an oversized request must be seen as one, then dropped
_MAX_QUEUED = 4_096  # replies waiting for send buffer space; beyond, they are dropped

P = TypeVar("P", bound=asyncio.DatagramProtocol)


class BatchedDatagramTransport(asyncio.DatagramTransport):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.DatagramProtocol,
    ) -> None:
        super().__init__({"socket": sock, "sockname": sock.getsockname()})
        self._loop = loop
        self._sock = sock
        self._fileno = sock.fileno()
        self._protocol = protocol
        self._queued: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._closing = False
        loop.add_reader(self._fileno, self._read_ready)

    # -- reading ----------------------------------------------------------------------------

    def _read_ready(self) -> None:
        receive, protocol = self._sock.recvfrom, self._protocol
        for _ in range(READ_BATCH):
            if self._closing:
                return
            try:
                data, addr = receive(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error from an earlier send
                protocol.error_received(exc)
                return
            protocol.datagram_received(data, addr)

    # -- writing ----------------------------------------------------------------------------

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        if self._closing:
            return
        if not self._queued:
            try:
                self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(self._fileno, self._write_ready)
            except OSError as exc:
                self._protocol.error_received(exc)
                return
        if len(self._queued) >= _MAX_QUEUED:
            # The NAS retransmits; a reply queue without a bound would only grow memory.
            self._protocol.error_received(BlockingIOError("send queue full"))
            return
        self._queued.append((bytes(data), addr))

    def _write_ready(self) -> None:
        queued = self._queued
        while queued:
            data, addr = queued[0]
            try:
                self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
            queued.popleft()
        self._loop.remove_writer(self._fileno)

    def get_write_buffer_size(self) -> int:
        return sum(len(data) for data, _addr in self._queued)

    # -- closing ----------------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fileno)
        self._loop.remove_writer(self._fileno)
        self._queued.clear()
        self._loop.call_soon(self._finish)

    def abort(self) -> None:
        self.close()

    def _finish(self) -> None:
        try:
            self._protocol.connection_lost(None)
        finally:
            self._sock.close()


async def open_endpoint(
    protocol_factory: Callable[[], P], sock: socket.socket
) -> tuple[BatchedDatagramTransport, P]:
    """``loop.create_datagram_endpoint(protocol_factory, sock=sock)`` with this transport."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    protocol = protocol_factory()
    transport = BatchedDatagramTransport(loop, sock, protocol)
    protocol.connection_made(transport)
    return transport, protocol
