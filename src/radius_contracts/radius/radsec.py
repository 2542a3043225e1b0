"""RadSec (RADIUS over TLS, RFC 6614): a TLS listener that feeds the same request handling.

Each TLS connection carries a stream of RADIUS packets framed by their own Length field
(RFC 6614 §2.5). A complete packet is handed to a :class:`RadiusProtocol` exactly as a
datagram would be, with the connection's peer address as the "source": duplicate detection,
authenticator checks, the handlers, accounting durability and the statistics are the UDP
path's own. Replies come back through :class:`_Replies`, which stands in for the datagram
transport and writes each reply to the connection it belongs to.

Who may connect (checks in :mod:`radius_contracts.radius.radsec_tls`): a TLS 1.2+ client whose
certificate chains to the configured CA (the TLS layer checks validity dates too), connecting
from the address of an active NAS, and, when that NAS pins one, presenting the pinned
certificate (subject CN or SHA-256 fingerprint). The RADIUS shared secret is ``radsec``
(RFC 6614 §2.3) unless the NAS sets its own.

Refusals and closes are counted in :attr:`RadsecServer.counts` (``refused_<reason>``,
``closed_<reason>``), malformed packets also in the protocol's statistics like UDP's.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from radius_contracts.logging import RateLimitedLog
from radius_contracts.radius import codec
from radius_contracts.radius.clients import RADSEC_SECRET, ClientTable, NasClient
from radius_contracts.radius.coa import CoaResult, CoaSender
from radius_contracts.radius.dictionary import AttributeCatalog
from radius_contracts.radius.protocol import RadiusProtocol
from radius_contracts.radius.radius11 import (
    ALPN_RADIUS_11,
    UNSUPPORTED_EXTENSION,
    Mode,
    Pending,
    Translator,
    Untranslatable,
    protocol_error,
)
from radius_contracts.radius.radsec_tls import (
    certificate_fingerprint,
    pin_matches,
    refusal_reason,
    subject_cn,
)

__all__ = [
    "DEFAULT_SECRET",
    "RadsecCoaSender",
    "RadsecOptions",
    "RadsecServer",
]

log = logging.getLogger("radius_contracts.radsec")

DEFAULT_SECRET = RADSEC_SECRET  # RFC 6614 §2.3

_HEADER_SIZE = 4
# Replies to requests we send over the connection (CoA / Disconnect, RFC 5176 over TLS).
_RESPONSES_TO_US = frozenset(
    {codec.Code.COA_ACK, codec.Code.COA_NAK, codec.Code.DISCONNECT_ACK, codec.Code.DISCONNECT_NAK}
)
# A request the dispatcher dropped silently never gets a reply; its in-flight slot is given
# back after this many seconds.
_IN_FLIGHT_STALE = 30.0
_REQUEST_CODES = frozenset(
    {codec.Code.ACCESS_REQUEST, codec.Code.ACCOUNTING_REQUEST, codec.Code.STATUS_SERVER}
)


@dataclass(frozen=True, slots=True)
class RadsecOptions:
    """Limits of the listener; replaced whole on reload."""

    handshake_timeout: float = 10.0
    idle_timeout: float = 300.0
    max_connections: int = 256
    max_in_flight: int = 256
    radius_1_1: Mode = "allow"  # RFC 9765; the TLS context's ALPN names follow it


class _Replies:
    """Stands in for the datagram transport of the RadSec dispatcher: ``sendto`` writes the
    reply to the connection whose peer address the request came with."""

    __slots__ = ("connections",)

    def __init__(self) -> None:
        self.connections: dict[tuple[object, ...], _Connection] = {}

    def sendto(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        connection = self.connections.get(addr[:2])
        if connection is not None:  # else closed meanwhile: the reply has nowhere to go
            connection.reply(data)

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


class _Connection(asyncio.Protocol):
    """One TLS connection (the handshake is done when it is made): a stream of RADIUS packets."""

    def __init__(self, server: RadsecServer, addr: tuple[str, int]) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.addr = addr
        self.client: NasClient | None = None
        self.subject: str | None = None
        self.fingerprint: str | None = None
        self._buffer = bytearray()
        self._out: list[bytes] = []  # replies waiting for the end of this turn of the loop
        self.opened_at = time.monotonic()
        self._established = False
        self._closed = False
        self._last_activity = self._loop.time()
        self._idle: asyncio.TimerHandle | None = None
        self._in_flight: dict[int, float] = {}  # Identifier → when the request came
        # Requests we sent (CoA / Disconnect) by Identifier (by Token over RADIUS/1.1),
        # waiting for their response.
        self._outbound: dict[int | bytes, asyncio.Future[bytes]] = {}
        # RADIUS/1.1 (RFC 9765), when the handshake negotiated it: requests go to the
        # dispatcher as RADIUS/1.0 under an Identifier of ours; _pending maps it back.
        self.translator: Translator | None = None
        self._pending: dict[int, Pending] = {}
        self._next_identifier = 0
        self._next_token = int.from_bytes(secrets.token_bytes(4), "big")
        # A server that requires RADIUS/1.1 answers the first request of a connection that
        # did not negotiate it with a Protocol-Error, then closes (RFC 9765 §3.4).
        self._needs_radius_11 = False

    # -- life cycle -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the asyncio.Transport methods without subclassing it.
        self.transport = tls = cast(asyncio.Transport, transport)
        server = self._server
        server.connections.add(self)
        reason = self._identify(tls) or self._negotiated(tls)
        if reason is not None:
            server.refuse(self, reason)
            return
        self._established = True
        server.established(self)
        self._arm_idle()

    def _identify(self, tls: asyncio.Transport) -> str | None:
        """Check the peer against the NAS it connects from; a refusal reason or None."""
        client = self._server.clients().lookup(self.addr[0])
        if client is None:
            return "unknown_nas"
        ssl_object = tls.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der is None:
            return "no_certificate"
        self.subject = subject_cn(tls.get_extra_info("peercert"))
        self.fingerprint = certificate_fingerprint(der)
        pin = self._server.pins().get(client.id)
        if pin and not pin_matches(pin, self.subject, self.fingerprint):
            log.warning(
                "RadSec peer %s (NAS %s) presented CN=%s %s, not the pinned %s",
                self.addr[0], client.name, self.subject, self.fingerprint, pin,
            )  # fmt: skip
            return "pin_mismatch"
        self.client = client
        return None

    def _negotiated(self, tls: asyncio.Transport) -> str | None:
        """Which RADIUS the handshake chose (RFC 9765 §3.3); a refusal reason or None."""
        ssl_object = tls.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn == ALPN_RADIUS_11:
            # RFC 9765 §3.5: RADIUS/1.1 only over TLS 1.3 or later. ALPN is chosen before the
            # version is known to us, so a TLS 1.2 peer offering it is turned away here.
            if ssl_object.version() in ("TLSv1", "TLSv1.1", "TLSv1.2"):
                return "radius11_needs_tls13"
            assert self.client is not None
            self.translator = Translator(self.client.secret, self._server.catalog)
        elif self._server.options.radius_1_1 == "require":
            self._needs_radius_11 = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._idle is not None:
            self._idle.cancel()
        for future in self._outbound.values():
            if not future.done():
                future.set_exception(ConnectionError("the RadSec connection closed"))
        self._outbound.clear()
        self._server.lost(self)

    def close(self, reason: str) -> None:
        """Close after what is already written (replies included) has gone out."""
        if self._closed:
            return
        self._flush()  # replies made earlier in this turn still go out
        self._closed = True
        self._server.add(f"closed_{reason}")
        if self.transport is not None:
            self.transport.close()

    # -- flow control: stop reading while the peer does not read our replies ---------------

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()

    # -- packets ----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self._established or self._closed:
            return
        self._last_activity = self._loop.time()
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _HEADER_SIZE:
            # RFC 6614 §2.5: the RADIUS Length field delimits packets on the stream; one
            # outside 20..4096 leaves no way to find the next packet.
            length = int.from_bytes(buffer[2:4], "big")
            if length < codec.MIN_PACKET or length > codec.MAX_PACKET:
                self._server.malformed(self, "bad_length")
                return
            if len(buffer) < length:
                break
            frame = bytes(buffer[:length])
            del buffer[:length]
            self._packet(frame)
            if self._closed:
                return

    def _packet(self, frame: bytes) -> None:
        code, identifier = frame[0], frame[1]
        translator = self.translator
        if code in _RESPONSES_TO_US:
            key: int | bytes = frame[4:8] if translator is not None else identifier
            future = self._outbound.pop(key, None)
            if future is not None and not future.done():
                future.set_result(frame)
            else:
                self._server.add("unmatched_responses")
            return
        if self._needs_radius_11:
            self._refuse_radius_10(frame)
            return
        in_flight = self._in_flight
        if translator is not None:
            free = self._free_identifier()
            if free is None:
                self._server.dispatch.stats.drop(code, "drop_in_flight_limit")
                return
            identifier = free
        elif identifier not in in_flight and len(in_flight) >= self._server.options.max_in_flight:
            self._purge_in_flight()
            if len(in_flight) >= self._server.options.max_in_flight:
                self._server.dispatch.stats.drop(code, "drop_in_flight_limit")
                return
        if translator is not None:
            try:
                frame, self._pending[identifier] = translator.request(frame, identifier)
            except codec.MalformedPacket as exc:
                self._server.malformed(self, exc.reason)
                return
            except Untranslatable as exc:
                self._server.untranslatable(self, code, exc.reason)
                return
        in_flight[identifier] = self._last_activity
        self._server.dispatch.datagram_received(frame, self.addr)

    def _free_identifier(self) -> int | None:
        """An Identifier no request of this RADIUS/1.1 connection is using, or None when
        max_in_flight of them are."""
        in_flight = self._in_flight
        if len(in_flight) >= self._server.options.max_in_flight:
            self._purge_in_flight()
            if len(in_flight) >= self._server.options.max_in_flight:
                return None
        candidate = self._next_identifier
        while candidate in in_flight:
            candidate = (candidate + 1) & 0xFF
        self._next_identifier = (candidate + 1) & 0xFF
        return candidate

    def _refuse_radius_10(self, frame: bytes) -> None:
        assert self.client is not None and self.transport is not None
        self._server.count_refusal(self.addr, "radius11_required")
        if frame[0] in _REQUEST_CODES:
            self.transport.write(protocol_error(frame, UNSUPPORTED_EXTENSION, self.client.secret))
        self.close("radius11_required")

    def _purge_in_flight(self) -> None:
        oldest = self._loop.time() - _IN_FLIGHT_STALE
        for identifier, since in list(self._in_flight.items()):
            if since < oldest:
                del self._in_flight[identifier]
                self._pending.pop(identifier, None)

    def reply(self, data: bytes) -> None:
        if self._closed or self.transport is None:
            return
        identifier = data[1]
        self._in_flight.pop(identifier, None)
        if self.translator is not None:
            pending = self._pending.pop(identifier, None)
            if pending is None:
                return  # its slot went stale and was given to another request
            data = self.translator.reply(data, pending)
        # Replies made in one turn of the loop (a burst of requests read together) leave in
        # one write: one TLS record and one send instead of one each, the larger part of a
        # RadSec request's cost.
        out = self._out
        out.append(data)
        if len(out) == 1:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and not self._closed and self.transport is not None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])

    async def request(self, data: bytes, within: float) -> bytes | None:
        """Send a request of ours (CoA / Disconnect) and wait ``within`` seconds for its
        response; None on timeout. Raises ConnectionError when the connection is gone or the
        Identifier (RADIUS/1.1: Token) is taken by another request still waiting."""
        if self._closed or self.transport is None or not self._established:
            raise ConnectionError("the RadSec connection is closed")
        identifier: int | bytes = data[4:8] if self.translator is not None else data[1]
        if identifier in self._outbound:
            raise ConnectionError(f"Identifier {identifier!r} is in use on this connection")
        future: asyncio.Future[bytes] = self._loop.create_future()
        self._outbound[identifier] = future
        self.transport.write(data)
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            return None
        finally:
            if self._outbound.get(identifier) is future:
                del self._outbound[identifier]

    async def dynamic(self, code: int, attributes: bytes, within: float) -> CoaResult:
        """A CoA- or Disconnect-Request to this NAS over its connection (RFC 6614 §2.5 carries
        RFC 5176 like any RADIUS exchange). No retransmits: TLS delivers or the connection
        fails (RFC 6613: no retransmits on a reliable transport); ``within`` seconds is the
        whole wait."""
        assert self.client is not None
        if self.translator is not None:
            return await self._dynamic_radius_11(code, attributes, within)
        secret = self.client.secret
        identifier = next((i for i in range(256) if i not in self._outbound), None)
        if identifier is None:
            raise ConnectionError("256 requests outstanding on this connection")
        packet = codec.encode_request(code, identifier, attributes, secret)
        answer, seconds = await self._exchange(packet, within)
        if answer is None:
            return CoaResult("timeout", None, 1, seconds)
        authenticator = packet[4:20]
        if not codec.verify_response_authenticator(answer, secret, authenticator) or (
            answer.has_message_authenticator
            and not codec.verify_message_authenticator(answer, secret, authenticator)
        ):
            self._server.add("unmatched_responses")
            return CoaResult("timeout", None, 1, seconds)
        return _coa_result(answer, seconds)

    async def _dynamic_radius_11(self, code: int, attributes: bytes, within: float) -> CoaResult:
        # RFC 9765 §4.2: a new Token per request, from a per-connection counter that started
        # at a random value; no authenticators to check, TLS vouches for the peer.
        self._next_token = (self._next_token + 1) & 0xFFFFFFFF
        packet = Translator.outbound(code, self._next_token.to_bytes(4, "big"), attributes)
        answer, seconds = await self._exchange(packet, within)
        if answer is None:
            return CoaResult("timeout", None, 1, seconds)
        return _coa_result(answer, seconds)

    async def _exchange(self, packet: bytes, within: float) -> tuple[codec.Packet | None, float]:
        """Send a CoA/Disconnect and wait for its answer: the decoded reply (None when none
        came or it did not decode, which is counted) and the seconds it took."""
        started = time.monotonic()
        reply = await self.request(packet, within)
        seconds = time.monotonic() - started
        if reply is None:
            return None, seconds
        try:
            return codec.decode(reply), seconds
        except codec.MalformedPacket:
            self._server.malformed(self, "coa_reply")
            return None, seconds

    # -- idle timeout -----------------------------------------------------------------------

    def _arm_idle(self) -> None:
        timeout = self._server.options.idle_timeout
        if timeout > 0:
            self._idle = self._loop.call_at(self._last_activity + timeout, self._check_idle)

    def _check_idle(self) -> None:
        self._idle = None
        if self._closed:
            return
        timeout = self._server.options.idle_timeout
        if timeout <= 0:
            return
        if self._loop.time() - self._last_activity >= timeout and not self._outbound:
            self.close("idle")
            return
        self._arm_idle()


def _coa_result(answer: codec.Packet, seconds: float) -> CoaResult:
    if answer.code in (codec.Code.COA_ACK, codec.Code.DISCONNECT_ACK):
        return CoaResult("ack", None, 1, seconds)
    cause = answer.get(codec.ERROR_CAUSE)
    error = int.from_bytes(cause, "big") if cause and len(cause) == 4 else None
    return CoaResult("nak", error, 1, seconds)


class RadsecServer:
    """The RadSec listener(s): connections, their limits and counters, and TLS reloads."""

    def __init__(
        self,
        dispatch: RadiusProtocol,
        clients: Callable[[], ClientTable],
        context: ssl.SSLContext,
        options: RadsecOptions,
        pins: Callable[[], Mapping[int, str]] = dict,
        catalog: Callable[[], AttributeCatalog | None] = lambda: None,
    ) -> None:
        """``dispatch`` handles every packet (its transport is set here); ``clients`` is the
        RadSec view of the NAS table (secrets as RFC 6614 §2.3 says); ``pins`` maps NAS ids
        to the certificate they must present; ``catalog`` is the loaded dictionary, which
        says which reply attributes RADIUS/1.1 sends unhidden."""
        self.dispatch = dispatch
        self.clients = clients
        self.pins = pins
        self.catalog = catalog
        self.context = context
        self.options = options
        self.counts: dict[str, int] = {}
        self.connections: set[_Connection] = set()
        self._replies = _Replies()
        self._listeners: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._handshaking = 0
        self._warn = RateLimitedLog(log)
        dispatch.connection_made(self._replies)  # type: ignore[arg-type]
        dispatch.on_discard = self._discarded

    async def start(self, addresses: tuple[str, ...], port: int) -> int:
        """Listen on ``port`` at every address; returns the bound port (for port 0)."""
        loop = asyncio.get_running_loop()
        try:
            for address in addresses:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                listener = socket.create_server((address, port), family=family, backlog=128)
                listener.setblocking(False)
                self._listeners.append(listener)
                port = port or listener.getsockname()[1]
                self._spawn(self._accept(loop, listener))
        except BaseException:
            self.close()
            raise
        return port

    async def _accept(self, loop: asyncio.AbstractEventLoop, listener: socket.socket) -> None:
        # Sockets are accepted here and handed to connect_accepted_socket with TLS: unlike a
        # TLS server, that says why a handshake failed, and a stranger is turned away before
        # any TLS work.
        while True:
            try:
                sock, peer = await loop.sock_accept(listener)
            except OSError as exc:
                if listener.fileno() < 0:
                    return  # closed
                self._warn.warning("accept", "RadSec accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            self._spawn(self._admit(loop, sock, (str(peer[0]), int(peer[1]))))

    async def _admit(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, addr: tuple[str, int]
    ) -> None:
        if len(self.connections) + self._handshaking >= self.options.max_connections:
            self._turn_away(sock, addr, "max_connections")
            return
        if self.clients().lookup(addr[0]) is None:
            self._turn_away(sock, addr, "unknown_nas")
            return
        self._handshaking += 1
        try:
            await loop.connect_accepted_socket(
                lambda: _Connection(self, addr),
                sock,
                ssl=self.context,
                ssl_handshake_timeout=self.options.handshake_timeout,
            )
        except Exception as exc:
            sock.close()
            self.count_refusal(addr, refusal_reason(exc), str(exc))
        finally:
            self._handshaking -= 1

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _turn_away(self, sock: socket.socket, addr: tuple[str, int], reason: str) -> None:
        sock.close()
        self.count_refusal(addr, reason)

    def close(self) -> None:
        """Stop listening; established connections stay until :meth:`close_connections`."""
        for task in list(self._tasks):
            task.cancel()  # accept loops and handshakes under way
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()

    def close_connections(self) -> None:
        for connection in list(self.connections):
            connection.close("shutdown")

    def reload(self, context: ssl.SSLContext, options: RadsecOptions) -> None:
        """New handshakes use ``context``; established connections keep the one they have."""
        self.context = context
        self.options = options

    @property
    def open_connections(self) -> int:
        return sum(1 for c in self.connections if c.client is not None)

    def connections_of(self, nas_id: int) -> Iterator[_Connection]:
        """Established connections of one NAS, newest last."""
        for connection in self.connections:
            if connection.client is not None and connection.client.id == nas_id:
                yield connection

    # -- called by connections ---------------------------------------------------------------

    def add(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def count_refusal(self, addr: tuple[str, int], reason: str, detail: str = "") -> None:
        self.add(f"refused_{reason}")
        source = addr[0]
        self._warn.warning(
            (source, reason), "RadSec connection from %s refused: %s%s", source, reason,
            f" ({detail})" if detail else "",
        )  # fmt: skip

    def refuse(self, connection: _Connection, reason: str) -> None:
        """Close a connection whose TLS peer is not let in (after the handshake)."""
        self.count_refusal(connection.addr, reason)
        connection._closed = True
        self.connections.discard(connection)
        if connection.transport is not None:
            connection.transport.close()

    def established(self, connection: _Connection) -> None:
        self.add("accepted")
        self._replies.connections[connection.addr] = connection
        assert connection.client is not None
        log.info(
            "RadSec connection from %s: NAS %s, certificate CN=%s",
            connection.addr[0], connection.client.name, connection.subject,
        )  # fmt: skip

    def lost(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if self._replies.connections.get(connection.addr) is connection:
            del self._replies.connections[connection.addr]

    def malformed(self, connection: _Connection, reason: str) -> None:
        """A frame that breaks the stream: counted like a malformed datagram, then closed."""
        stats = self.dispatch.stats
        stats.add("received")
        stats.add("drop_malformed")
        stats.add(f"malformed_{reason}")
        self._close_malformed(connection)

    def untranslatable(self, connection: _Connection, code: int, reason: str) -> None:
        """A RADIUS/1.1 request with no RADIUS/1.0 form (see radius11.Translator.request):
        dropped and counted like a malformed datagram; the connection stays."""
        stats = self.dispatch.stats
        stats.add("received")
        stats.drop(code, "drop_malformed")
        stats.add(f"malformed_{reason}")
        source = connection.addr[0]
        self._warn.warning(
            (source, reason), "RadSec peer %s: RADIUS/1.1 request dropped: %s", source,
            reason.replace("_", " "),
        )  # fmt: skip

    def _discarded(self, addr: tuple[str | object, ...], reason: str) -> None:
        # RFC 6614 §2.5: what UDP would silently discard, a stream discards and closes: a
        # peer that sends broken packets, or packets no server takes, is not one to keep
        # reading from. (Wrong authenticators stay a plain drop: they are the secret's fault,
        # and closing would not mend it.)
        connection = self._replies.connections.get(addr[:2])
        if connection is not None:
            self._close(connection, reason)

    def _close_malformed(self, connection: _Connection) -> None:
        self._close(connection, "malformed")

    def _close(self, connection: _Connection, reason: str) -> None:
        source = connection.addr[0]
        self._warn.warning(
            (source, reason), "RadSec peer %s: %s packet, closing the connection", source,
            reason.replace("_", " "),
        )  # fmt: skip
        connection.close(reason)


class RadsecCoaSender:
    """CoA and Disconnect-Requests: over the NAS's RadSec connection when it has one (the
    newest), else by UDP to its CoA port as ever."""

    def __init__(self, udp: CoaSender, server: Callable[[], RadsecServer | None]) -> None:
        """``server`` is the RadSec server once it listens (None before)."""
        self._udp = udp
        self._server = server

    def within(self) -> float:
        # What UDP would wait in all, its retransmits included: a NAS gets the same time.
        timeout, tries, backoff = self._udp.timing
        return sum(timeout * backoff**attempt for attempt in range(tries))

    async def send_to(
        self,
        nas_id: int,
        route: Callable[[], tuple[str, int]],
        secret: bytes,
        code: int,
        attributes: bytes,
    ) -> CoaResult:
        """Over the NAS's newest RadSec connection; without one, by UDP to where ``route``
        says (asked only then: a NAS on RadSec needs no UDP address)."""
        connection = None
        server = self._server()
        if server is not None:
            connection = max(server.connections_of(nas_id), key=lambda c: c.opened_at, default=None)
        if connection is not None:
            try:
                return await connection.dynamic(code, attributes, self.within())
            except ConnectionError:
                # Closed before the request went out (or it closed while we waited: then
                # the NAS may have acted on it, but cannot tell us; UDP asks again).
                pass
        return await self._udp.send_to(nas_id, route, secret, code, attributes)
