"""The RADIUS listeners: one asyncio DatagramProtocol per socket, bytes in, bytes out.

``datagram_received`` does everything a warm Access-Request needs right there, synchronously
(DESIGN §2: a task per packet would cost as much as the whole authentication). Only the reject
delay waits, on a timer. Order per datagram: client lookup by source address, strict decode,
code check for the port, duplicate cache, authenticator checks, the handler, encode, send.
Anything wrong is dropped and counted, never answered: the NAS retransmits or fails over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from radius_contracts.logging import RateLimitedLog
from radius_contracts.radius import codec
from radius_contracts.radius.clients import ClientTable, NasClient
from radius_contracts.radius.dedup import IN_PROGRESS, Key, ReplyCache
from radius_contracts.radius.messages import AccessRequest, AuthDecision

log = logging.getLogger("radius_contracts.radius")

Port = Literal["auth", "acct"]


class AuthHandler(Protocol):
    """What the auth listener calls (aaa.handler.AccessHandler)."""

    def handle_access(self, request: AccessRequest) -> AuthDecision: ...


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    reject_delay: float = 1.0  # seconds an Access-Reject waits before it is sent
    duplicate_window: float = 5.0  # RFC 5080 §2.2.2 reply cache lifetime
    max_delayed_rejects: int = 10_000  # beyond this, requests that would be rejected are dropped


class Stats:
    """Plain counters, cheap enough for every packet; exported by the metrics endpoint."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, name: str) -> None:
        counts = self.counts
        counts[name] = counts.get(name, 0) + 1

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name, 0)


def _text_or_none(value: bytes | None) -> str | None:
    # RADIUS "text" should be UTF-8 (RFC 2865 §5); anything else is kept visible, not dropped.
    return None if value is None else value.decode("utf-8", "replace")


def _integer_or_none(value: bytes | None) -> int | None:
    return int.from_bytes(value, "big") if value is not None and len(value) == 4 else None


class RadiusProtocol(asyncio.DatagramProtocol):
    """One UDP socket of the auth or accounting port."""

    def __init__(
        self,
        port: Port,
        clients: Callable[[], ClientTable],
        auth_handler: AuthHandler | None,
        stats: Stats,
        options: ListenerOptions,
        replies: ReplyCache,
    ) -> None:
        self.port = port
        self._clients = clients
        self._auth = auth_handler
        self.stats = stats
        self._options = options
        self._replies = replies
        self._delayed = 0
        self._warn = RateLimitedLog(log)
        self.transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not inherit DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._loop = asyncio.get_running_loop()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors from earlier sends (e.g. a NAS that went away); nothing to undo.
        self.stats.add("send_errors")

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            self._received(data, addr)
        except Exception:
            # Whatever a packet does, the listener keeps serving the next one.
            self.stats.add("drop_internal_error")
            log.exception("internal error handling a datagram from %s", addr[0])

    def _received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        stats = self.stats
        stats.add("received")
        source = str(addr[0])
        client = self._clients().lookup(source)
        if client is None:
            stats.add("drop_unknown_nas")
            self._warn.warning(source, "ignoring RADIUS packets from %s: not an active NAS", source)
            return
        try:
            packet = codec.decode(data)
        except codec.MalformedPacket as exc:
            stats.add("drop_malformed")
            stats.add(f"malformed_{exc.reason}")
            self._warn.warning((source, "malformed"), "malformed packet from %s: %s", source, exc)
            return
        code = packet.code
        if code == codec.Code.STATUS_SERVER:
            self._status_server(packet, client, addr)
            return
        auth = self._auth
        if code == codec.Code.ACCESS_REQUEST and auth is not None:
            self._access_request(packet, client, addr, auth)
            return
        stats.add("drop_unexpected_code")
        self._warn.warning(
            (source, "code"), "dropping RADIUS code %d from %s on the %s port", code, source,
            self.port,
        )  # fmt: skip

    def _send(self, reply: bytes, addr: tuple[str | object, ...]) -> None:
        if self.transport is not None:
            self.transport.sendto(reply, addr)

    # -- Status-Server (RFC 5997) -------------------------------------------------------------

    def _status_server(
        self, packet: codec.Packet, client: NasClient, addr: tuple[str | object, ...]
    ) -> None:
        # RFC 5997 §3: Status-Server MUST carry a Message-Authenticator; without a valid one
        # it is silently discarded.
        if not packet.has_message_authenticator or not codec.verify_message_authenticator(
            packet, client.secret
        ):
            self.stats.add("drop_bad_message_authenticator")
            return
        # RFC 5997 §3: Access-Accept on the authentication port, Accounting-Response on the
        # accounting port.
        code = codec.Code.ACCESS_ACCEPT if self.port == "auth" else codec.Code.ACCOUNTING_RESPONSE
        self.stats.add("status_server")
        self._send(
            codec.encode_reply(code, packet.identifier, packet.authenticator, b"", client.secret),
            addr,
        )

    # -- Access-Request -----------------------------------------------------------------------

    def _access_request(
        self,
        packet: codec.Packet,
        client: NasClient,
        addr: tuple[str | object, ...],
        auth: AuthHandler,
    ) -> None:
        stats = self.stats
        key: Key = (addr[:2], packet.identifier, packet.authenticator)
        cached = self._replies.get(key)
        if cached is not None:
            stats.add("duplicates")
            if cached is not IN_PROGRESS:
                self._send(cached, addr)
            return
        secret = client.secret
        if packet.has_message_authenticator:
            # RFC 3579 §3.2: a wrong Message-Authenticator means a silent discard.
            if not codec.verify_message_authenticator(packet, secret):
                stats.add("drop_bad_message_authenticator")
                self._warn.warning(
                    (addr[0], "ma"), "bad Message-Authenticator from %s (wrong secret?)", addr[0]
                )
                return
        elif client.require_message_authenticator:
            # BlastRADIUS (CVE-2024-3596): without it an attacker on path can forge replies.
            stats.add("drop_missing_message_authenticator")
            self._warn.warning(
                (addr[0], "no-ma"),
                "Access-Request from %s without Message-Authenticator; the NAS requires one",
                addr[0],
            )
            return
        request = self._access_fields(packet, client, str(addr[0]))
        if request is None:
            stats.add("drop_malformed")
            stats.add("malformed_user_password")
            return
        decision = auth.handle_access(request)
        code = codec.Code.ACCESS_ACCEPT if decision.accept else codec.Code.ACCESS_REJECT
        reply = codec.encode_reply(
            code,
            packet.identifier,
            packet.authenticator,
            decision.attributes,
            secret,
            proxy_states=packet.get_all(codec.PROXY_STATE) if request.proxied else (),
            hidden=decision.hidden,
        )
        delay = self._options.reject_delay
        if decision.accept or delay <= 0:
            stats.add("accepts" if decision.accept else "rejects")
            self._replies.put(key, reply)
            self._send(reply, addr)
            return
        if self._delayed >= self._options.max_delayed_rejects:
            # A flood of failing logins: holding more replies would only grow memory.
            stats.add("drop_over_capacity")
            return
        stats.add("rejects")
        self._delayed += 1
        self._replies.put(key, IN_PROGRESS)
        assert self._loop is not None
        self._loop.call_later(delay, self._send_delayed, key, reply, addr)

    def _send_delayed(self, key: Key, reply: bytes, addr: tuple[str | object, ...]) -> None:
        self._delayed -= 1
        self._replies.put(key, reply)
        self._send(reply, addr)

    @staticmethod
    def _access_fields(
        packet: codec.Packet, client: NasClient, source: str
    ) -> AccessRequest | None:
        """The handler's view of the packet; None when User-Password cannot be decrypted."""
        # The first value of each attribute type, in one pass: every field below is then a
        # dict read (this runs for every request, so it is written for speed).
        first: dict[int, bytes] = {}
        for kind, value in packet.attributes:
            if kind not in first:
                first[kind] = value
        get = first.get
        password = get(codec.USER_PASSWORD)
        if password is not None:
            password = codec.decrypt_user_password(password, client.secret, packet.authenticator)
            if password is None:
                return None
        chap_password = get(codec.CHAP_PASSWORD)
        chap_challenge = get(codec.CHAP_CHALLENGE)
        if chap_password is not None and chap_challenge is None:
            # RFC 2865 §5.3: without CHAP-Challenge the Request Authenticator is the challenge.
            chap_challenge = packet.authenticator
        ms_chap_challenge = ms_chap2_response = None
        if codec.VENDOR_SPECIFIC in first:
            ms_chap_challenge = packet.vendor(codec.VENDOR_MICROSOFT, codec.MS_CHAP_CHALLENGE)
            ms_chap2_response = packet.vendor(codec.VENDOR_MICROSOFT, codec.MS_CHAP2_RESPONSE)
        return AccessRequest(
            nas_id=client.id,
            source=source,
            user_name=_text_or_none(get(codec.USER_NAME)),
            password=password,
            chap_password=chap_password,
            chap_challenge=chap_challenge,
            ms_chap_challenge=ms_chap_challenge,
            ms_chap2_response=ms_chap2_response,
            calling_station_id=_text_or_none(get(codec.CALLING_STATION_ID)),
            called_station_id=_text_or_none(get(codec.CALLED_STATION_ID)),
            nas_port=_integer_or_none(get(codec.NAS_PORT)),
            nas_port_id=_text_or_none(get(codec.NAS_PORT_ID)),
            eap=codec.EAP_MESSAGE in first,
            proxied=codec.PROXY_STATE in first,
        )
