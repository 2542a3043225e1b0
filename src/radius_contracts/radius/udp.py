"""A datagram transport that reads every queued datagram in one wake-up.

asyncio's own selector datagram transport takes one datagram per turn of the event loop, so
a burst of N requests costs N turns (a poll system call and the loop's bookkeeping each),
which under load is a fifth of an Access-Request's cost. This one reads until the socket is
empty, at most ``READ_BATCH`` at a time so timers and other sockets still get their turn,
and sends directly, queueing only when the kernel's send buffer is full. It implements what
the listeners use: ``sendto``, ``is_closing``, ``close``, ``abort``, ``get_extra_info``.

On an IPv4 socket, with the optional C part (_udp.c) built, a wake-up reads its batch with
one recvmmsg() and the replies the protocol sends while handling that batch go out together
in one sendmmsg() when the batch is done: two system calls per batch instead of two per
datagram. A reply then waits for the rest of its batch (at most ``READ_BATCH`` requests
that the handler answers without waiting for the database). Replies sent outside a batch
(after a database write, a delayed reject) go out at once as before: collecting the
Accounting-Responses of one commit until the end of the loop's turn as well was tried and
made accounting no faster (bench/README).
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from radius_contracts.radius.wire_speedups import load_optional

__all__ = ["READ_BATCH", "BatchIo", "BatchedDatagramTransport", "open_endpoint"]

READ_BATCH = 64  # datagrams per wake-up at most
_MAX_DATAGRAM = 65_535  # read whole: an oversized request must be seen as one, then dropped
_MAX_QUEUED = 4_096  # replies waiting for send buffer space; beyond, they are dropped

P = TypeVar("P", bound=asyncio.DatagramProtocol)


class BatchIo(Protocol):
    """The functions _udp.c provides (see _udp.pyi)."""

    def recv_many(self, fd: int, limit: int, /) -> list[tuple[bytes, tuple[str, int]]]: ...
    def send_many(self, fd: int, messages: list[tuple[bytes, Any]], start: int, /) -> int: ...


# The C batch calls (_udp.c), or None: not built, or the pure Python path asked for.
_BATCH_IO = cast("BatchIo | None", load_optional("radius_contracts.radius._udp"))


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
        # Batched (recvmmsg/sendmmsg, see the module): replies waiting for _flush.
        self._collected: list[tuple[bytes, Any]] = []
        self._reading = False  # handling a batch: _read_batch flushes when it is done
        batched = _BATCH_IO is not None and sock.family == socket.AF_INET
        self._batch_io = _BATCH_IO if batched else None
        loop.add_reader(self._fileno, self._read_batch if batched else self._read_ready)

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

    def _read_batch(self) -> None:
        assert self._batch_io is not None
        try:
            batch = self._batch_io.recv_many(self._fileno, READ_BATCH)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # e.g. an ICMP error from an earlier send
            self._protocol.error_received(exc)
            return
        protocol = self._protocol
        self._reading = True
        try:
            for data, addr in batch:
                if self._closing:
                    return
                protocol.datagram_received(data, addr)
        finally:
            self._reading = False
            self._flush()

    # -- writing ----------------------------------------------------------------------------

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        if self._closing:
            return
        if not self._reading:
            self._send_now(data, addr)
            return
        # Handling a batch read by recvmmsg: sent with the rest of its replies when it is done.
        self._collected.append((data if type(data) is bytes else bytes(data), addr))

    def _send_now(self, data: bytes | bytearray | memoryview, addr: Any) -> None:
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

    def _flush(self) -> None:
        """Send a batch's collected replies with sendmmsg(), queueing what the send buffer
        cannot take (sent by _write_ready as it drains)."""
        collected = self._collected
        if not collected or self._closing:
            return
        self._collected = []
        assert self._batch_io is not None
        send_many, fileno = self._batch_io.send_many, self._fileno
        done, total = 0, len(collected)
        while done < total and not self._queued:
            try:
                done += send_many(fileno, collected, done)
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(fileno, self._write_ready)
                break
            except ValueError:  # not a dotted-quad address: socket.sendto resolves it
                self._send_now(*collected[done])
                done += 1
            except OSError as exc:  # this reply's error (sendmmsg stops at it); go on
                self._protocol.error_received(exc)
                done += 1
        for data, addr in collected[done:]:
            if len(self._queued) >= _MAX_QUEUED:
                self._protocol.error_received(BlockingIOError("send queue full"))
                break
            self._queued.append((data, addr))

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
        # Replies already given (e.g. the acknowledgements of a committed accounting write)
        # go out before the socket closes, as they would have unbatched.
        self._flush()
        self._closing = True
        self._loop.remove_reader(self._fileno)
        self._loop.remove_writer(self._fileno)
        self._queued.clear()
        self._collected.clear()
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
