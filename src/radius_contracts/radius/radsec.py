"""RadSec (RADIUS over TLS, RFC 6614): a TLS listener that feeds the same request handling.

Each TLS connection carries a stream of RADIUS packets framed by their own Length field
(RFC 6614 §2.5). A complete packet is handed to a :class:`RadiusProtocol` exactly as a
datagram would be, with the connection's peer address as the "source": duplicate detection,
authenticator checks, the handlers, accounting durability and the statistics are the UDP
path's own. One connection, its framing, replies and the CoA/Disconnect-Requests sent down it
are :mod:`radius_contracts.radius.radsec_connection`; this module is the listener: admission,
limits, counters, TLS reloads, and the CoA sender that picks a NAS's connection.

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
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from radius_contracts.logging import RateLimitedLog
from radius_contracts.radius.clients import RADSEC_SECRET, ClientTable
from radius_contracts.radius.coa import CoaResult, CoaSender
from radius_contracts.radius.dictionary import AttributeCatalog
from radius_contracts.radius.protocol import RadiusProtocol
from radius_contracts.radius.radius11 import Mode
from radius_contracts.radius.radsec_connection import RadsecConnection, ReplyRouter
from radius_contracts.radius.radsec_tls import refusal_reason

__all__ = [
    "DEFAULT_SECRET",
    "RadsecCoaSender",
    "RadsecOptions",
    "RadsecServer",
]

log = logging.getLogger("radius_contracts.radsec")

DEFAULT_SECRET = RADSEC_SECRET  # RFC 6614 §2.3


@dataclass(frozen=True, slots=True)
class RadsecOptions:
    """Limits of the listener; replaced whole on reload."""

    handshake_timeout: float = 10.0
    idle_timeout: float = 300.0
    max_connections: int = 256
    max_in_flight: int = 256
    radius_1_1: Mode = "allow"  # RFC 9765; the TLS context's ALPN names follow it


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
        self.connections: set[RadsecConnection] = set()
        self._replies = ReplyRouter()
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
                lambda: RadsecConnection(self, addr),
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

    def connections_of(self, nas_id: int) -> Iterator[RadsecConnection]:
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

    def refuse(self, connection: RadsecConnection, reason: str) -> None:
        """Close a connection whose TLS peer is not let in (after the handshake)."""
        self.count_refusal(connection.addr, reason)
        connection._closed = True
        self.connections.discard(connection)
        if connection.transport is not None:
            connection.transport.close()

    def established(self, connection: RadsecConnection) -> None:
        self.add("accepted")
        self._replies.connections[connection.addr] = connection
        assert connection.client is not None
        log.info(
            "RadSec connection from %s: NAS %s, certificate CN=%s",
            connection.addr[0], connection.client.name, connection.subject,
        )  # fmt: skip

    def lost(self, connection: RadsecConnection) -> None:
        self.connections.discard(connection)
        if self._replies.connections.get(connection.addr) is connection:
            del self._replies.connections[connection.addr]

    def malformed(self, connection: RadsecConnection, reason: str) -> None:
        """A frame that breaks the stream: counted like a malformed datagram, then closed."""
        stats = self.dispatch.stats
        stats.add("received")
        stats.add("drop_malformed")
        stats.add(f"malformed_{reason}")
        self._close_malformed(connection)

    def untranslatable(self, connection: RadsecConnection, code: int, reason: str) -> None:
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

    def _close_malformed(self, connection: RadsecConnection) -> None:
        self._close(connection, "malformed")

    def _close(self, connection: RadsecConnection, reason: str) -> None:
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
