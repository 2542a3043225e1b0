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
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from radius_contracts.logging import RateLimitedLog
from radius_contracts.radius import codec, fields, hiding, request_context, wire_speedups
from radius_contracts.radius.clients import ClientTable, NasClient
from radius_contracts.radius.dedup import IN_PROGRESS, Key, ReplyCache
from radius_contracts.radius.histogram import Histogram
from radius_contracts.radius.messages import AccessRequest, AccountingRequest, AuthDecision
from radius_contracts.radius.wire_speedups import AccessFields, AccountingFields

log = logging.getLogger("radius_contracts.radius")

Port = Literal["auth", "acct", "radsec"]  # radsec: both, over TLS (RFC 6614)


class AuthHandler(Protocol):
    """What the auth listener calls (aaa.handler.AccessHandler).

    A decision that needs the database (an address leased from a managed pool) comes back
    as an awaitable; everything else is answered synchronously.
    """

    def handle_access(self, request: AccessRequest) -> AuthDecision | Awaitable[AuthDecision]: ...


class AcctHandler(Protocol):
    """What the accounting listener calls (aaa.accounting.AccountingHandler)."""

    def handle_accounting(self, request: AccountingRequest, done: Callable[[bool], None]) -> bool:
        """Take ``request``; call ``done(True)`` once it is durably recorded, ``done(False)``
        when it could not be. Returns False when it cannot take any more right now."""
        ...


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    reject_delay: float = 1.0  # seconds an Access-Reject waits before it is sent
    duplicate_window: float = 5.0  # RFC 5080 §2.2.2 reply cache lifetime
    max_delayed_rejects: int = 10_000  # beyond this, requests that would be rejected are dropped
    max_pending_access: int = 1_000  # Access-Requests waiting on the database (pool leases)


class Stats:
    """Plain counters of one port, cheap enough for every packet; the metrics collector reads
    them when ``/metrics`` is scraped.

    ``counts``: outcomes by name (``received``, ``accepts``, ``drop_<reason>``,
    ``malformed_<reason>``, ...). ``requests``: (RADIUS code, result) of every datagram that
    decoded, from an active NAS. ``latency``: seconds from arrival to the reply of answered
    Access- and Accounting-Requests.
    """

    __slots__ = ("counts", "latency", "requests")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.requests: dict[tuple[int, str], int] = {}
        self.latency = Histogram()

    def add(self, name: str) -> None:
        counts = self.counts
        counts[name] = counts.get(name, 0) + 1

    def request(self, code: int, result: str) -> None:
        requests, key = self.requests, (code, result)
        requests[key] = requests.get(key, 0) + 1

    def drop(self, code: int, reason: str) -> None:
        """A decoded request dropped unanswered; ``reason`` is its ``drop_<reason>`` outcome."""
        self.add(reason)
        self.request(code, DROPPED)

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name, 0)


class StatsTotal:
    """The outcome counters of several ports summed, read live."""

    def __init__(self, parts: Iterable[Stats]) -> None:
        self._parts = tuple(parts)

    def __getitem__(self, name: str) -> int:
        return sum(part[name] for part in self._parts)


_ACCESS_REQUEST_OCTET = bytes((codec.Code.ACCESS_REQUEST,))
_ACCOUNTING_REQUEST_OCTET = bytes((codec.Code.ACCOUNTING_REQUEST,))

# Request results (Stats.requests).
ACCEPT, REJECT, RESPONSE = "accept", "reject", "response"
DUPLICATE, DROPPED, NOT_RECORDED = "duplicate", "dropped", "not_recorded"


# RFC 2866 §5.1 and RFC 2869 §5.4 names of Acct-Status-Type values, for log lines.
_STATUS_NAMES = {
    1: "Start", 2: "Stop", 3: "Interim-Update", 7: "Accounting-On", 8: "Accounting-Off",
}  # fmt: skip


def _status_name(status_type: int) -> str:
    return _STATUS_NAMES.get(status_type, str(status_type))


def _log_decision(request: AccessRequest, decision: AuthDecision) -> None:
    """One DEBUG line per answered Access-Request: who, how, and why (never credentials)."""
    log.debug(
        "Access-%s for %r: %s",
        "Accept" if decision.accept else "Reject",
        request.user_name,
        decision.reason,
        extra={"result": "accept" if decision.accept else "reject", "reason": decision.reason,
               "auth_method": decision.method, "contract_id": decision.contract_id},
    )  # fmt: skip


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
        acct_handler: AcctHandler | None = None,
    ) -> None:
        self.port = port
        self._clients = clients
        self._auth = auth_handler
        self._acct = acct_handler
        self._pending_access = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = stats
        self._options = options
        self._replies = replies
        self._delayed = 0
        self._warn = RateLimitedLog(log)
        # The C wire code (None: pure Python; see radius.wire_speedups).
        self._wire = wire_speedups.module()
        self.transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = True
        # Told the source and why of a packet dropped for what it is: malformed, or a code
        # this port does not take (RadSec closes that connection, RFC 6614 §2.5).
        self.on_discard: Callable[[tuple[str | object, ...], str], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not inherit DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._loop = asyncio.get_running_loop()

    @property
    def options(self) -> ListenerOptions:
        return self._options

    @options.setter
    def options(self, options: ListenerOptions) -> None:
        # One frozen object replaced whole (a reload): a packet reads either set, never a mix.
        self._options = options

    def stop_accepting(self) -> None:
        """Shutdown: drop new datagrams; replies to requests taken already still go out."""
        self._accepting = False

    async def drain(self, grace: float) -> None:
        """Let Access-Requests waiting on the database finish (bounded by ``grace``)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors from earlier sends (e.g. a NAS that went away); nothing to undo.
        self.stats.add("send_errors")

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        # Every line logged about this datagram, here, in the handler or in a task started
        # for it, carries its request id; nothing is rendered unless a line is logged.
        token = request_context.current.set((data, addr, self._clients))
        try:
            self._received(data, addr)
        except Exception:
            # Whatever a packet does, the listener keeps serving the next one.
            self.stats.add("drop_internal_error")
            log.exception("internal error handling a datagram from %s", addr[0])
        finally:
            request_context.current.reset(token)

    def _received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        started = time.perf_counter()  # the latency histograms measure from here
        stats = self.stats
        stats.add("received")
        if not self._accepting:
            # Stopping: the NAS retransmits to its other server; anything taken now might be
            # left half done when the process exits.
            stats.add("drop_stopping")
            return
        source = str(addr[0])
        client = self._clients().lookup(source)
        if client is None:
            stats.add("drop_unknown_nas")
            self._warn.warning(source, "ignoring RADIUS packets from %s: not an active NAS", source)
            return
        wire, auth, acct = self._wire, self._auth, self._acct
        if wire is not None:
            # The C wire code parses and verifies the common Access- and Accounting-Request;
            # it declines (None) what it does not handle, which the Python path below takes.
            first = data[:1]
            if auth is not None and first == _ACCESS_REQUEST_OCTET:
                access = wire.parse_access(data, client.secret)
                if access is not None:
                    self._fast_access(access, client, addr, auth, started)
                    return
            elif acct is not None and first == _ACCOUNTING_REQUEST_OCTET:
                accounting = wire.parse_accounting(data, client.secret)
                if accounting is not None:
                    self._fast_accounting(accounting, client, addr, acct, started)
                    return
        try:
            packet = codec.decode(data)
        except codec.MalformedPacket as exc:
            stats.add("drop_malformed")
            stats.add(f"malformed_{exc.reason}")
            self._warn.warning((source, "malformed"), "malformed packet from %s: %s", source, exc)
            if self.on_discard is not None:
                self.on_discard(addr, "malformed")
            return
        code = packet.code
        if code == codec.Code.STATUS_SERVER:
            self._status_server(packet, client, addr)
            return
        if code == codec.Code.ACCESS_REQUEST and auth is not None:
            self._access_request(packet, client, addr, auth, started)
            return
        if code == codec.Code.ACCOUNTING_REQUEST and acct is not None:
            self._accounting_request(packet, client, addr, acct, started)
            return
        stats.drop(code, "drop_unexpected_code")
        if self.on_discard is not None:
            self.on_discard(addr, "unexpected_code")
        self._warn.warning(
            (source, "code"), "dropping RADIUS code %d from %s on the %s port", code, source,
            self.port,
        )  # fmt: skip

    def _send(self, reply: bytes, addr: tuple[str | object, ...]) -> None:
        transport = self.transport
        # A reply finished after the socket was closed at shutdown (e.g. a late accounting
        # commit) cannot go out; sendto on a closing transport would only log noise.
        if transport is not None and not transport.is_closing():
            transport.sendto(reply, addr)

    # -- Status-Server (RFC 5997) -------------------------------------------------------------

    def _status_server(
        self, packet: codec.Packet, client: NasClient, addr: tuple[str | object, ...]
    ) -> None:
        # RFC 5997 §3: Status-Server MUST carry a Message-Authenticator; without a valid one
        # it is silently discarded.
        if not packet.has_message_authenticator or not codec.verify_message_authenticator(
            packet, client.secret
        ):
            self.stats.drop(packet.code, "drop_bad_message_authenticator")
            return
        # RFC 5997 §3: Access-Accept on the authentication port, Accounting-Response on the
        # accounting port; RadSec carries both on one, and answers as an auth port.
        code = codec.Code.ACCOUNTING_RESPONSE if self.port == "acct" else codec.Code.ACCESS_ACCEPT
        self.stats.add("status_server")
        self.stats.request(packet.code, RESPONSE)
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
        started: float,
    ) -> None:
        key: Key = (addr[0], addr[1], packet.identifier, packet.authenticator)
        ma = 0
        if packet.has_message_authenticator:
            ma = 1 if codec.verify_message_authenticator(packet, client.secret) else -1
        if not self._admissible(key, ma, client, addr):
            return
        request = self._access_fields(packet, client)
        if request is None:
            self.stats.drop(packet.code, "drop_malformed")
            self.stats.add("malformed_user_password")
            return
        states = tuple(packet.get_all(codec.PROXY_STATE)) if request.proxy_state_size else ()
        self._decide(auth, request, client, addr, key, states, started)

    def _fast_access(
        self,
        fields: AccessFields,
        client: NasClient,
        addr: tuple[str | object, ...],
        auth: AuthHandler,
        started: float,
    ) -> None:
        """An Access-Request the C wire code parsed (see _wire.c: the same fields as
        _access_fields, the Message-Authenticator already checked)."""
        (identifier, authenticator, ma, user_name, password, chap_password, chap_challenge,
         calling, called, nas_port, nas_port_id, eap, states, states_size, ms_chap_challenge,
         ms_chap2_response) = fields  # fmt: skip
        key: Key = (addr[0], addr[1], identifier, authenticator)
        if not self._admissible(key, ma, client, addr):
            return
        request = AccessRequest(
            client.id, user_name, password, chap_password, chap_challenge,
            ms_chap_challenge, ms_chap2_response, calling, called, nas_port, nas_port_id, eap,
            states_size,
        )  # fmt: skip
        if chap_password is not None:
            # Only the CHAP challenge check tells a retransmit from a new request.
            request.identifier = identifier
            request.authenticator = authenticator
        self._decide(auth, request, client, addr, key, states, started)

    def _admissible(
        self, key: Key, ma: int, client: NasClient, addr: tuple[str | object, ...]
    ) -> bool:
        """Whether an Access-Request goes on to the handler: not a retransmit (answered from
        the reply cache here), and its Message-Authenticator (``ma``: 1 right, -1 wrong, 0
        none) as the NAS requires."""
        stats = self.stats
        cached = self._replies.get(key)
        if cached is not None:
            stats.add("duplicates")
            stats.request(codec.Code.ACCESS_REQUEST, DUPLICATE)
            if cached is not IN_PROGRESS:
                self._send(cached, addr)
            return False
        if ma < 0:
            # RFC 3579 §3.2: a wrong Message-Authenticator means a silent discard.
            stats.drop(codec.Code.ACCESS_REQUEST, "drop_bad_message_authenticator")
            self._warn.warning(
                (addr[0], "ma"), "bad Message-Authenticator from %s (wrong secret?)", addr[0]
            )
            return False
        if ma == 0 and client.require_message_authenticator:
            # BlastRADIUS (CVE-2024-3596): without it an attacker on path can forge replies.
            stats.drop(codec.Code.ACCESS_REQUEST, "drop_missing_message_authenticator")
            self._warn.warning(
                (addr[0], "no-ma"),
                "Access-Request from %s without Message-Authenticator; the NAS requires one",
                addr[0],
            )
            return False
        return True

    def _decide(
        self,
        auth: AuthHandler,
        request: AccessRequest,
        client: NasClient,
        addr: tuple[str | object, ...],
        key: Key,
        states: tuple[bytes, ...],
        started: float,
    ) -> None:
        decision = auth.handle_access(request)
        if not isinstance(decision, AuthDecision):
            self._access_later(client, addr, key, request, decision, states, started)
            return
        self._answer_access(client, addr, key, request, decision, states, started)

    def _access_later(
        self,
        client: NasClient,
        addr: tuple[str | object, ...],
        key: Key,
        request: AccessRequest,
        pending: Awaitable[AuthDecision],
        states: tuple[bytes, ...],
        started: float,
    ) -> None:
        """Answer once the handler's database work is done; no reply if it fails."""
        if self._pending_access >= self._options.max_pending_access:
            self.stats.drop(codec.Code.ACCESS_REQUEST, "drop_over_capacity")
            if asyncio.iscoroutine(pending):
                pending.close()
            return
        self._pending_access += 1
        self._replies.put(key, IN_PROGRESS)

        async def finish() -> None:
            try:
                decision = await pending
            except Exception as exc:
                # e.g. the database is down: stay silent so the NAS tries its other server.
                self.stats.drop(codec.Code.ACCESS_REQUEST, "drop_handler_failed")
                self._replies.discard(key)
                self._warn.warning(
                    "access-failed", "no answer to an Access-Request from %s: %r", addr[0], exc
                )
                return
            finally:
                self._pending_access -= 1
            self._replies.discard(key)
            self._answer_access(client, addr, key, request, decision, states, started)

        task = asyncio.ensure_future(finish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _answer_access(
        self,
        client: NasClient,
        addr: tuple[str | object, ...],
        key: Key,
        request: AccessRequest,
        decision: AuthDecision,
        states: tuple[bytes, ...],
        started: float,
    ) -> None:
        stats = self.stats
        code = codec.Code.ACCESS_ACCEPT if decision.accept else codec.Code.ACCESS_REJECT
        identifier, authenticator = key[2], key[3]
        wire = self._wire
        try:
            if wire is not None:
                attributes = decision.attributes
                if decision.hidden:
                    # encode_reply's order: the plain attributes, then the hidden ones.
                    attributes += codec.encode_hidden_attributes(
                        decision.hidden, client.secret, authenticator
                    )
                reply = wire.reply(
                    code, identifier, authenticator, attributes, client.secret, states
                )
            else:
                reply = codec.encode_reply(
                    code, identifier, authenticator, decision.attributes, client.secret,
                    proxy_states=states, hidden=decision.hidden,
                )  # fmt: skip
        except ValueError as exc:  # codec.PacketTooLarge, or the C code's ValueError
            # The handler answers a reply that would not fit with an Access-Reject that does;
            # only a request that is nearly all Proxy-State and lacks credentials leaves no
            # room even for that (its echo alone passes 4096 octets).
            stats.drop(codec.Code.ACCESS_REQUEST, "drop_reply_too_large")
            self._warn.warning(
                (addr[0], "too-large"), "no answer to an Access-Request from %s: %s", addr[0], exc
            )
            return
        if log.isEnabledFor(logging.DEBUG):
            _log_decision(request, decision)
        delay = self._options.reject_delay
        if decision.accept or delay <= 0:
            if decision.accept:
                stats.add("accepts")
                stats.request(codec.Code.ACCESS_REQUEST, ACCEPT)
            else:
                stats.add("rejects")
                stats.request(codec.Code.ACCESS_REQUEST, REJECT)
            self._replies.put(key, reply)
            self._send(reply, addr)
            stats.latency.observe(time.perf_counter() - started)
            return
        if self._delayed >= self._options.max_delayed_rejects:
            # A flood of failing logins: holding more replies would only grow memory.
            stats.drop(codec.Code.ACCESS_REQUEST, "drop_over_capacity")
            return
        stats.add("rejects")
        stats.request(codec.Code.ACCESS_REQUEST, REJECT)
        self._delayed += 1
        self._replies.put(key, IN_PROGRESS)
        assert self._loop is not None
        self._loop.call_later(delay, self._send_delayed, key, reply, addr)
        # The reject delay is deliberate (it slows password guessing): the latency counts the
        # work up to here, not the wait.
        stats.latency.observe(time.perf_counter() - started)

    def _send_delayed(self, key: Key, reply: bytes, addr: tuple[str | object, ...]) -> None:
        self._delayed -= 1
        self._replies.put(key, reply)
        self._send(reply, addr)

    # -- Accounting-Request (RFC 2866) -------------------------------------------------------

    def _accounting_request(
        self,
        packet: codec.Packet,
        client: NasClient,
        addr: tuple[str | object, ...],
        acct: AcctHandler,
        started: float,
    ) -> None:
        stats = self.stats
        code = packet.code
        key: Key = (addr[0], addr[1], packet.identifier, packet.authenticator)
        if self._answered_again(key, code, addr):
            return
        secret = client.secret
        # RFC 2866 §3: the Request Authenticator is an MD5 over the packet and the secret; a
        # request that fails the check is silently discarded.
        if not codec.verify_request_authenticator(packet, secret):
            stats.drop(code, "drop_bad_authenticator")
            self._warn.warning(
                (addr[0], "acct-auth"),
                "Accounting-Request from %s with a bad authenticator (wrong secret?)",
                addr[0],
            )
            return
        if packet.has_message_authenticator and not codec.verify_message_authenticator(
            packet, secret
        ):
            stats.drop(code, "drop_bad_message_authenticator")
            return
        request = fields.accounting_request(packet, client.id)
        if request is None:
            stats.drop(code, "drop_malformed")
            stats.add("malformed_accounting")
            self._warn.warning(
                (addr[0], "acct-fields"),
                "Accounting-Request from %s without Acct-Status-Type or Acct-Session-Id",
                addr[0],
            )
            return
        states = tuple(packet.get_all(codec.PROXY_STATE))
        self._record(request, client, addr, key, states, acct, started)

    def _fast_accounting(
        self,
        parsed: AccountingFields,
        client: NasClient,
        addr: tuple[str | object, ...],
        acct: AcctHandler,
        started: float,
    ) -> None:
        """An Accounting-Request the C wire code parsed and found authentic (see _wire.c:
        the same checks and fields as the Python path above)."""
        key: Key = (addr[0], addr[1], parsed[0], parsed[1])
        if self._answered_again(key, codec.Code.ACCOUNTING_REQUEST, addr):
            return
        request = fields.accounting_request_from_wire(parsed, client.id)
        self._record(request, client, addr, key, parsed[23], acct, started)

    def _answered_again(self, key: Key, code: int, addr: tuple[str | object, ...]) -> bool:
        """RFC 5080 §2.2.2: a retransmit gets the same answer and is never recorded twice;
        one that comes while the first is still being committed waits for that commit."""
        cached = self._replies.get(key)
        if cached is None:
            return False
        self.stats.add("duplicates")
        self.stats.request(code, DUPLICATE)
        if cached is not IN_PROGRESS:
            self._send(cached, addr)
        return True

    def _record(
        self,
        request: AccountingRequest,
        client: NasClient,
        addr: tuple[str | object, ...],
        key: Key,
        proxy_states: tuple[bytes, ...],
        acct: AcctHandler,
        started: float,
    ) -> None:
        """Hand ``request`` to the accounting handler; answer once it is durably recorded."""
        stats, replies, wire = self.stats, self._replies, self._wire
        code = codec.Code.ACCOUNTING_REQUEST
        replies.put(key, IN_PROGRESS)
        identifier, authenticator, secret = key[2], key[3], client.secret
        # done() runs in the accounting writer's task: its lines name this request explicitly.
        datagram = request_context.current.get() if log.isEnabledFor(logging.DEBUG) else None

        def done(recorded: bool) -> None:
            if datagram is not None:
                log.debug(
                    "Accounting-Request %s for session %s %s",
                    _status_name(request.status_type),
                    request.acct_session_id,
                    "recorded and answered" if recorded else "not recorded, not answered",
                    extra=request_context.log_fields(datagram),
                )
            if not recorded:
                # RFC 2866 §2: no response unless the record was stored; the retransmit is
                # handled afresh.
                replies.discard(key)
                stats.add("accounting_not_recorded")
                stats.request(code, NOT_RECORDED)
                return
            # No Message-Authenticator: no RFC defines one on an Accounting-Response.
            if wire is not None:
                reply = wire.reply(
                    codec.Code.ACCOUNTING_RESPONSE, identifier, authenticator, b"", secret,
                    proxy_states, False,
                )  # fmt: skip
            else:
                reply = codec.encode_reply(
                    codec.Code.ACCOUNTING_RESPONSE, identifier, authenticator, b"", secret,
                    proxy_states=proxy_states, message_authenticator=False,
                )  # fmt: skip
            replies.put(key, reply)
            stats.add("accounting_responses")
            stats.request(code, RESPONSE)
            self._send(reply, addr)
            # Includes the wait for the group commit (RFC 2866 §2: no answer before that).
            stats.latency.observe(time.perf_counter() - started)

        if not acct.handle_accounting(request, done):
            replies.discard(key)
            stats.drop(code, "drop_over_capacity")

    @staticmethod
    def _access_fields(packet: codec.Packet, client: NasClient) -> AccessRequest | None:
        """The handler's view of the packet; None when User-Password cannot be decrypted."""
        first = fields.first_values(packet)
        get = first.get
        password = get(codec.USER_PASSWORD)
        if password is not None:
            password = hiding.decrypt_user_password(password, client.secret, packet.authenticator)
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
        request = AccessRequest(
            nas_id=client.id,
            user_name=fields.text_or_none(get(codec.USER_NAME)),
            password=password,
            chap_password=chap_password,
            chap_challenge=chap_challenge,
            ms_chap_challenge=ms_chap_challenge,
            ms_chap2_response=ms_chap2_response,
            calling_station_id=fields.text_or_none(get(codec.CALLING_STATION_ID)),
            called_station_id=fields.text_or_none(get(codec.CALLED_STATION_ID)),
            nas_port=fields.integer_or_none(get(codec.NAS_PORT)),
            nas_port_id=fields.text_or_none(get(codec.NAS_PORT_ID)),
            eap=codec.EAP_MESSAGE in first,
            proxy_state_size=fields.proxy_state_size(packet) if codec.PROXY_STATE in first else 0,
        )
        if chap_password is not None:
            # Only the CHAP challenge check tells a retransmit from a new request.
            request.identifier = packet.identifier
            request.authenticator = packet.authenticator
        return request
