"""One RadSec connection (RFC 6614): a TLS stream of RADIUS packets, in both directions.

Requests from the NAS are cut out of the stream by their Length field (RFC 6614 §2.5) and
handed to the shared :class:`~radius_contracts.radius.protocol.RadiusProtocol` as if each were
a datagram from the connection's peer address; :class:`ReplyRouter` stands in for the datagram
transport and writes each reply back to the connection it belongs to. CoA and
Disconnect-Requests of ours to the NAS go down the same connection
(:meth:`RadsecConnection.dynamic`).
A connection that negotiated RADIUS/1.1 (RFC 9765, ALPN) translates at this boundary, so the
handlers only ever see RADIUS/1.0 packets.

The listener that accepts connections, counts refusals and reloads certificates is
:class:`radius_contracts.radius.radsec.RadsecServer`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING, cast

from radius_contracts.radius import codec
from radius_contracts.radius.clients import NasClient
from radius_contracts.radius.coa import CoaResult
from radius_contracts.radius.radius11 import (
    ALPN_RADIUS_11,
    UNSUPPORTED_EXTENSION,
    Pending,
    Translator,
    Untranslatable,
    protocol_error,
)
from radius_contracts.radius.radsec_tls import certificate_fingerprint, pin_matches, subject_cn

if TYPE_CHECKING:
    from radius_contracts.radius.radsec import RadsecServer

__all__ = ["RadsecConnection", "ReplyRouter"]

log = logging.getLogger("radius_contracts.radsec")

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


class ReplyRouter:
    """Stands in for the datagram transport of the RadSec dispatcher: ``sendto`` writes the
    reply to the connection whose peer address the request came with."""

    __slots__ = ("connections",)

    def __init__(self) -> None:
        self.connections: dict[tuple[object, ...], RadsecConnection] = {}

    def sendto(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        connection = self.connections.get(addr[:2])
        if connection is not None:  # else closed meanwhile: the reply has nowhere to go
            connection.reply(data)

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


class RadsecConnection(asyncio.Protocol):
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
