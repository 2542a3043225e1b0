"""The Dynamic Authorization client (RFC 5176): CoA-Request and Disconnect-Request to a NAS.

One UDP socket per address family sends every request; replies are matched by NAS address,
port and Identifier, and accepted only with a valid Response Authenticator (and
Message-Authenticator, when present). A request is retransmitted unchanged (same Identifier
and authenticator, RFC 5176 §2.3 via RFC 5080 §2.2.1) with growing waits until it is
answered or the tries run out; at most 256 requests are outstanding per NAS (the Identifier
space), and at most ``max_in_flight`` in all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from radius_contracts.radius import codec

Outcome = Literal["ack", "nak", "timeout"]

_ANSWERS: dict[int, tuple[int, int]] = {
    codec.Code.COA_REQUEST: (codec.Code.COA_ACK, codec.Code.COA_NAK),
    codec.Code.DISCONNECT_REQUEST: (codec.Code.DISCONNECT_ACK, codec.Code.DISCONNECT_NAK),
}
Destination = tuple[str, int]


@dataclass(frozen=True, slots=True)
class CoaResult:
    """How a CoA or Disconnect-Request ended."""

    outcome: Outcome
    error_cause: int | None  # Error-Cause of a NAK (RFC 5176 §3.5), e.g. 503 session not found
    attempts: int
    seconds: float


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[codec.Packet | None]  # None: every try timed out
    authenticator: bytes
    secret: bytes
    code: int
    attempts: int = 1
    timer: asyncio.TimerHandle | None = None


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, sender: CoaSender) -> None:
        self._sender = sender

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._sender._received(data, addr)


class CoaSender:
    """Sends CoA and Disconnect-Requests and waits for their ACK or NAK."""

    def __init__(
        self,
        *,
        timeout: float = 1.0,
        tries: int = 3,
        backoff: float = 2.0,
        max_in_flight: int = 256,
    ) -> None:
        if tries < 1 or timeout <= 0:
            raise ValueError("tries must be at least 1 and timeout positive")
        self._timeout = timeout
        self._tries = tries
        self._backoff = backoff
        self._slots = asyncio.Semaphore(max_in_flight)
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._pending: dict[tuple[Destination, int], _Pending] = {}
        self._next_id: dict[Destination, int] = {}
        self._per_nas: dict[Destination, asyncio.Semaphore] = {}
        self.ignored = 0  # replies that matched nothing or failed their authenticator

    @property
    def timing(self) -> tuple[float, int, float]:
        """(timeout, tries, backoff) in force."""
        return self._timeout, self._tries, self._backoff

    def configure(self, *, timeout: float, tries: int, backoff: float) -> None:
        """New settings from a reload: they apply to the next wait, even of requests in flight."""
        if tries < 1 or timeout <= 0:
            raise ValueError("tries must be at least 1 and timeout positive")
        self._timeout, self._tries, self._backoff = timeout, tries, backoff

    async def _transport(self, family: int) -> asyncio.DatagramTransport:
        transport = self._transports.get(family)
        if transport is None:
            loop = asyncio.get_running_loop()
            local = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)  # noqa: S104
            created, _ = await loop.create_datagram_endpoint(
                lambda: _Endpoint(self), local_addr=local, family=family
            )
            transport = self._transports[family] = created
        return transport

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.cancel()
        self._pending.clear()

    async def send_to(
        self,
        nas_id: int,
        route: Callable[[], tuple[str, int]],
        secret: bytes,
        code: int,
        attributes: bytes,
    ) -> CoaResult:
        """:meth:`send` to the UDP address ``route`` gives (the dispatcher's interface)."""
        host, port = route()
        return await self.send(host, port, secret, code, attributes)

    async def send(
        self,
        host: str,
        port: int,
        secret: bytes,
        code: int,
        attributes: bytes,
    ) -> CoaResult:
        """Send one request (``attributes`` encoded, without Message-Authenticator) over UDP."""
        if code not in _ANSWERS:
            raise ValueError(f"code {code} is not a CoA or Disconnect-Request")
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        destination = (host, port)
        started = time.monotonic()
        per_nas = self._per_nas.get(destination)
        if per_nas is None:
            # The Identifier space: requests beyond 256 to one NAS queue here, in order.
            per_nas = self._per_nas[destination] = asyncio.Semaphore(256)
        async with per_nas, self._slots:
            transport = await self._transport(family)
            identifier = self._identifier(destination)
            key = (destination, identifier)
            # RFC 5176 §3.5 and BlastRADIUS: a Message-Authenticator on every request.
            packet = codec.encode_request(code, identifier, attributes, secret)
            loop = asyncio.get_running_loop()
            pending = _Pending(loop.create_future(), packet[4:20], secret, code)
            self._pending[key] = pending
            transport.sendto(packet, destination)
            # Retransmissions run on timers rather than a wait_for per try: a bulk change
            # has thousands of requests outstanding, and timers cost far less than tasks.
            pending.timer = loop.call_later(
                self._timeout, self._retransmit, pending, transport, packet, destination,
                self._timeout,
            )  # fmt: skip
            try:
                reply = await pending.future
            finally:
                pending.timer.cancel()
                del self._pending[key]
            seconds = time.monotonic() - started
            if reply is None:
                return CoaResult("timeout", None, pending.attempts, seconds)
            ack, _nak = _ANSWERS[code]
            if reply.code == ack:
                return CoaResult("ack", None, pending.attempts, seconds)
            cause = reply.get(codec.ERROR_CAUSE)
            error = int.from_bytes(cause, "big") if cause and len(cause) == 4 else None
            return CoaResult("nak", error, pending.attempts, seconds)

    def _retransmit(
        self,
        pending: _Pending,
        transport: asyncio.DatagramTransport,
        packet: bytes,
        destination: Destination,
        waited: float,
    ) -> None:
        if pending.future.done():
            return
        if pending.attempts >= self._tries:
            pending.future.set_result(None)  # timed out
            return
        pending.attempts += 1
        transport.sendto(packet, destination)  # the same bytes (RFC 5080 §2.2.1)
        wait = waited * self._backoff
        loop = asyncio.get_running_loop()
        pending.timer = loop.call_later(
            wait, self._retransmit, pending, transport, packet, destination, wait
        )

    def _identifier(self, destination: Destination) -> int:
        """A free Identifier for ``destination`` (the per-NAS semaphore guarantees one)."""
        start = self._next_id.get(destination, 0)
        for step in range(256):
            identifier = (start + step) % 256
            if (destination, identifier) not in self._pending:
                self._next_id[destination] = (identifier + 1) % 256
                return identifier
        raise AssertionError("more than 256 requests outstanding to one NAS")

    def _received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            packet = codec.decode(data)
        except codec.MalformedPacket:
            self.ignored += 1
            return
        host = str(addr[0])
        if host.startswith("::ffff:"):
            host = host[7:]
        pending = self._pending.get(((host, int(cast(int, addr[1]))), packet.identifier))
        if (
            pending is None
            or pending.future.done()
            or packet.code not in _ANSWERS[pending.code]
            or not codec.verify_response_authenticator(
                packet, pending.secret, pending.authenticator
            )
            or (
                packet.has_message_authenticator
                and not codec.verify_message_authenticator(
                    packet, pending.secret, pending.authenticator
                )
            )
        ):
            # Late, forged, or signed with another secret: as if it never came.
            self.ignored += 1
            return
        pending.future.set_result(packet)
