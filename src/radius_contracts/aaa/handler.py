"""The AAA handler: the only object the RADIUS listeners call.

``handle_access`` answers an Access-Request from memory (the authorization index), without a
database round trip: authenticate (PAP, CHAP, MS-CHAPv2 or MAC), authorize (status, dates,
MAC binding), then reply with the NAS manufacturer's layout rendered for the contract
(aaa.replies: rendered and encoded once per contract, NAS and purpose, rebuilt when the
contract snapshot or the catalogue changes).

Every reply fits a RADIUS packet (4096 octets, RFC 2865 §3). The rendered reply knows its
size; what a request adds (MS-CHAPv2 proof and keys, leased addresses, its Proxy-State echo)
is counted before anything is sent, and an Accept that would not fit becomes an Access-Reject
that says so. Nothing is cut off: a reply missing some of its layout's attributes (a rate
limit, a filter) would connect the subscriber with the wrong service, silently.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from radius_contracts.aaa import authenticate, chap_challenges
from radius_contracts.aaa.auth_log import AuthEvent, AuthLogWriter
from radius_contracts.aaa.authorize import Refusal, mac_binding_refusal, purpose_of
from radius_contracts.aaa.claims import ClaimDecider
from radius_contracts.aaa.reject_reasons import reject_label
from radius_contracts.aaa.replies import RenderedAttribute, Replies, Reply
from radius_contracts.aaa.sessions import OpenSession, SessionView
from radius_contracts.domain import (
    ContractSnapshot,
    LayoutPurpose,
    LayoutSnapshot,
    NasSnapshot,
    PoolFamily,
    PoolMode,
    PoolSnapshot,
    parse_mac,
)
from radius_contracts.errors import InvalidInput, NotFound
from radius_contracts.index import AuthIndex, Layouts, resolve_layout
from radius_contracts.logging import RateLimitedLog
from radius_contracts.radius import codec
from radius_contracts.radius.dictionary import (
    AttributeCatalog,
    encode_value,
)
from radius_contracts.radius.messages import (
    AccessRequest,
    AuthDecision,
    AuthMethod,
    HiddenAttribute,
)

log = logging.getLogger("radius_contracts.aaa")

# Shown to the subscriber for both unknown users and wrong passwords: telling them apart on
# the wire would let anyone probe which usernames exist. The auth log keeps the difference.
_AUTH_FAILED = "authentication failed"
# RFC 2548 §2.4.4-2.4.5: MPPE allowed (not required), 40- or 128-bit keys.
_MPPE_POLICY = codec.vendor_attribute(
    codec.VENDOR_MICROSOFT, codec.MS_MPPE_ENCRYPTION_POLICY, (1).to_bytes(4, "big")
)
_MPPE_TYPES = codec.vendor_attribute(
    codec.VENDOR_MICROSOFT, codec.MS_MPPE_ENCRYPTION_TYPES, (6).to_bytes(4, "big")
)
# An MPPE key attribute: 16 octets before the salted encryption (RFC 2548 §2.4.2-2.4.3).
_MPPE_KEY_SIZE = codec.hidden_size(
    HiddenAttribute(codec.MS_MPPE_SEND_KEY, bytes(16), 2, codec.VENDOR_MICROSOFT)
)
# What an MS-CHAPv2 Accept adds: MS-CHAP2-Success, a Vendor-Specific attribute (8 octets of
# headers) around the Ident and the 42-character Authenticator Response (RFC 2548 §2.3.3,
# RFC 2759 §8.7), then the MPPE policy, types and both keys.
_MSCHAP_SIZE = 8 + 1 + 42 + len(_MPPE_POLICY) + len(_MPPE_TYPES) + 2 * _MPPE_KEY_SIZE
_MAX_PACKET = codec.MAX_PACKET  # a module global: one lookup less per request
# The attribute that carries what a managed pool leased, by pool family (RFC 2865 §5.8,
# RFC 3162 §2.3, RFC 4818).
_LEASE_ATTRIBUTES = {
    PoolFamily.IPV4: "Framed-IP-Address",
    PoolFamily.IPV6: "Framed-IPv6-Prefix",
    PoolFamily.IPV6_PD: "Delegated-IPv6-Prefix",
}


class PoolExhaustedError(Exception):
    """Raised by a Leases implementation when a pool has nothing left to lease."""


class Leases(Protocol):
    """Leases addresses from managed pools (aaa.pools.Leaser)."""

    async def lease(self, pool: PoolSnapshot, contract_id: int, *, share: bool = True) -> str: ...

    def exhausted_error(self, exc: BaseException) -> str | None:
        """The exhausted pool's name when ``exc`` means a pool is exhausted, else None."""
        ...


@dataclass(frozen=True, slots=True)
class Preview:
    """What a NAS would be answered for a contract now (credentials assumed right).

    ``size`` is the octets of the Access-Accept a PAP or CHAP login would get (leased
    addresses counted at their size, no Proxy-State), None when the contract is refused
    before a reply is rendered. ``warnings`` name logins that would be refused nonetheless.
    """

    decision: AuthDecision
    layout: str | None
    attributes: tuple[RenderedAttribute, ...]
    size: int | None = None
    warnings: tuple[str, ...] = ()


class AccessHandler:
    """Answers Access-Requests from the index; records every outcome in the auth log."""

    def __init__(
        self,
        index: AuthIndex,
        catalog: Callable[[], AttributeCatalog],
        *,
        auth_log: AuthLogWriter | None = None,
        sessions: SessionView | None = None,
        leases: Leases | None = None,
        interim_interval: int = 0,
        reply_message: bool = True,
        chap_challenge_window: float = 60.0,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.index = index
        self._catalog = catalog
        self._auth_log = auth_log
        self.sessions = sessions
        # Simultaneous use decided elsewhere: in the database (several nodes), or by the main
        # process (in a worker process); None: by ``sessions`` alone. Set by the daemon.
        self.claims: ClaimDecider | None = None
        self.leases = leases
        self._reply_message = reply_message
        self.challenges = chap_challenges.ChallengeWindow(chap_challenge_window)
        self._warn = RateLimitedLog(log)
        self._today = today
        self._date = today()
        self._date_checked = time.monotonic()
        self.rejects: dict[str, int] = {}  # Access-Rejects by reject_reasons label (metrics)
        self.replies = Replies(index, catalog, interim_interval)

    def configure(
        self, *, interim_interval: int, reply_message: bool, chap_challenge_window: float
    ) -> None:
        """New settings from a reload; replies rendered with the old ones are dropped."""
        self.replies.configure(interim_interval)
        self._reply_message = reply_message
        if chap_challenge_window <= 0:
            self.challenges.clear()  # reuse checks are off: nothing to hold on to
        self.challenges.window = chap_challenge_window

    # -- the hot path -------------------------------------------------------------------------

    def handle_access(self, request: AccessRequest) -> AuthDecision | Awaitable[AuthDecision]:
        decision = self._decide(request)
        if isinstance(decision, AuthDecision):
            if not decision.accept and request.proxy_state_size:
                decision = _fitted(decision, request.proxy_state_size)
            self._log(request, decision)
            return decision
        return self._finish_later(request, decision)

    async def _finish_later(
        self, request: AccessRequest, pending: Awaitable[AuthDecision]
    ) -> AuthDecision:
        decision = await pending
        if not decision.accept and request.proxy_state_size:
            decision = _fitted(decision, request.proxy_state_size)
        self._log(request, decision)
        return decision

    def _log(self, request: AccessRequest, decision: AuthDecision) -> None:
        if not decision.accept:
            label = reject_label(decision.reason)
            self.rejects[label] = self.rejects.get(label, 0) + 1
        if self._auth_log is not None:
            self._auth_log.record(
                AuthEvent(
                    at=datetime.now(UTC),
                    contract_id=decision.contract_id,
                    username=request.user_name,
                    nas_id=request.nas_id,
                    calling_station_id=request.calling_station_id,
                    accept=decision.accept,
                    reason=decision.reason,
                    method=decision.method,
                )
            )

    def _decide(self, request: AccessRequest) -> AuthDecision | Awaitable[AuthDecision]:
        nas = self.index.nas(request.nas_id)
        if nas is None:  # deactivated between the listener's lookup and now
            return self._reject("NAS is not active")
        if request.eap:
            return self._reject("EAP is not supported")
        name = request.user_name
        if not name:
            return self._reject("no User-Name")
        contract = self.index.contract_by_username(name)
        mac = None if contract is not None else parse_mac(name)
        if mac is not None:
            contract = self.index.contract_by_mac(mac)
        method, verified, mschap = self._authenticate(request, name, contract, mac)
        if method is None:
            return self._reject("no password, CHAP or MS-CHAPv2 credentials", contract=contract)
        if request.password is None and request.chap_password is not None:
            # CHAP it was (PAP wins when both came, see _authenticate): a short challenge is
            # refused for anyone, known or not, before the password's verdict.
            refusal = self._challenge_refusal(request, nas, verified)
            if refusal is not None:
                return self._reject(refusal, method=method, contract=contract)
        if contract is None:
            return self._reject("unknown user", method=method, public=_AUTH_FAILED, request=request)
        if not verified:
            return self._reject(
                "wrong password", method=method, contract=contract, public=_AUTH_FAILED,
                request=request,
            )  # fmt: skip
        purpose = purpose_of(contract, self._current_date())
        if isinstance(purpose, Refusal):
            return self._reject(purpose, method=method, contract=contract)
        calling = request.calling_station_id
        if method == "mac" and calling is None:
            calling = name  # MAC authentication: the User-Name is the caller's MAC
        refusal = mac_binding_refusal(contract, calling)
        if refusal is not None:
            return self._reject(refusal, method=method, contract=contract)
        layout = self._layout(nas, purpose)
        if isinstance(layout, Refusal):
            return self._reject(layout, method=method, contract=contract)
        reply = self.replies.get(contract, nas, purpose, layout)
        pools = self._managed_pools(contract)
        # Before any session is admitted or address leased: a reply that cannot be sent must
        # hold nothing. A couple of additions for most requests; the rest only when used.
        size = reply.size + request.proxy_state_size
        if mschap is not None:
            size += _MSCHAP_SIZE
        if pools:
            size += sum(_lease_size(pool) for pool in pools)
        if size > _MAX_PACKET:
            return self._too_large(size, reply, request, contract, nas, method)
        limit = contract.config.simultaneous_use
        sessions = self.sessions
        if limit is not None and sessions is not None:
            login = OpenSession(
                request.nas_id, "", None, calling, request.nas_port, request.nas_port_id
            )
            if self.claims is not None:
                # Other nodes or worker processes decide too: the database or the main
                # process decides (aaa.claims, workers.claims).
                return self._accept_claimed(
                    contract, reply, purpose, layout, method, mschap, pools, login, limit
                )
            refusal = sessions.check(contract.id, limit, login)
            if refusal is not None:
                return self._reject(refusal, method=method, contract=contract)
            sessions.admit(contract.id, login)
        if pools:
            return self._accept_leased(
                contract, reply, purpose, layout, method, mschap, pools, login
            )
        return self._accept(contract, reply, purpose, layout, method, mschap)

    def _accept(
        self,
        contract: ContractSnapshot,
        reply: Reply,
        purpose: LayoutPurpose,
        layout: LayoutSnapshot | None,
        method: AuthMethod,
        mschap: authenticate.MsChapV2Result | None,
        leased: bytes = b"",
    ) -> AuthDecision:
        if mschap is None and not leased:
            decision = reply.decisions.get(method)
            if decision is None:
                decision = AuthDecision(
                    True, _accepted(purpose, layout), reply.attributes, reply.hidden, method,
                    contract.id,
                )  # fmt: skip
                reply.decisions[method] = decision
            return decision
        attributes, hidden = reply.attributes + leased, reply.hidden
        if mschap is not None:
            attributes += (
                codec.vendor_attribute(
                    codec.VENDOR_MICROSOFT, codec.MS_CHAP2_SUCCESS, mschap.success
                )
                + _MPPE_POLICY
                + _MPPE_TYPES
            )
            hidden = (
                *hidden,
                HiddenAttribute(codec.MS_MPPE_SEND_KEY, mschap.send_key, 2, codec.VENDOR_MICROSOFT),
                HiddenAttribute(codec.MS_MPPE_RECV_KEY, mschap.recv_key, 2, codec.VENDOR_MICROSOFT),
            )
        return AuthDecision(
            True, _accepted(purpose, layout), attributes, hidden, method, contract.id
        )

    def _managed_pools(self, contract: ContractSnapshot) -> list[PoolSnapshot]:
        """The active managed pools the contract takes its addresses from."""
        config = contract.config
        if config.pool_name_ipv4 is None and config.pool_name_ipv6 is None:
            return []
        found = []
        for name in (config.pool_name_ipv4, config.pool_name_ipv6):
            if name is None:
                continue
            pool = self.index.pool(name)
            if pool is not None and pool.active and pool.mode is PoolMode.MANAGED:
                found.append(pool)
        return found

    async def _accept_claimed(
        self,
        contract: ContractSnapshot,
        reply: Reply,
        purpose: LayoutPurpose,
        layout: LayoutSnapshot | None,
        method: AuthMethod,
        mschap: authenticate.MsChapV2Result | None,
        pools: list[PoolSnapshot],
        login: OpenSession,
        limit: int,
    ) -> AuthDecision:
        """Accept once the login claimed a place of the contract's limit (aaa.claims)."""
        claims = self.claims
        assert claims is not None
        claim = await claims.decide(contract.id, limit, login)
        if isinstance(claim, Refusal):
            return self._reject(claim, method=method, contract=contract)
        if not pools:
            return self._accept(contract, reply, purpose, layout, method, mschap)
        try:
            decision = await self._accept_leased(
                contract, reply, purpose, layout, method, mschap, pools, login
            )
        except BaseException:
            await claims.withdraw(contract.id, login, claim)
            raise
        if not decision.accept:
            await claims.withdraw(contract.id, login, claim)
        return decision

    async def _accept_leased(
        self,
        contract: ContractSnapshot,
        reply: Reply,
        purpose: LayoutPurpose,
        layout: LayoutSnapshot | None,
        method: AuthMethod,
        mschap: authenticate.MsChapV2Result | None,
        pools: list[PoolSnapshot],
        login: OpenSession,
    ) -> AuthDecision:
        """Accept with an address (or prefix) from each managed pool, leased in the database."""
        leases = self.leases
        catalog = self._catalog()
        encoded: list[bytes] = []
        # One session at a time may take its held lease back (a re-authentication); a contract
        # allowed several sessions needs an address per session.
        share = contract.config.simultaneous_use == 1
        try:
            for pool in pools:
                if leases is None:
                    raise PoolExhaustedError(pool.name)
                try:
                    address = await leases.lease(pool, contract.id, share=share)
                except Exception as exc:
                    exhausted = leases.exhausted_error(exc)
                    if exhausted is None:
                        raise
                    raise PoolExhaustedError(exhausted) from exc
                spec = catalog.get(_LEASE_ATTRIBUTES[pool.family])
                assert spec is not None, "the RFC dictionaries are always loaded"
                encoded.append(codec.encode_attribute(spec, encode_value(spec, address)))
        except PoolExhaustedError as exc:
            if self.sessions is not None:
                self.sessions.withdraw(contract.id, login)
            return self._reject(f"pool {exc} is exhausted", method=method, contract=contract)
        except BaseException:
            if self.sessions is not None:
                self.sessions.withdraw(contract.id, login)
            raise
        return self._accept(contract, reply, purpose, layout, method, mschap, b"".join(encoded))

    def _layout(
        self, nas: NasSnapshot, purpose: LayoutPurpose, layouts: Layouts | None = None
    ) -> LayoutSnapshot | Refusal | None:
        """The layout ``nas`` uses for ``purpose`` (among ``layouts``, else the index's); a
        suspended contract needs one to connect."""
        table = self.index.layouts if layouts is None else layouts
        layout = resolve_layout(table, nas.manufacturer_id, purpose)
        if purpose is LayoutPurpose.SUSPENDED and layout is None:
            return Refusal("contract is suspended")
        if purpose is LayoutPurpose.QUOTA and layout is None:
            # No quota layout for this manufacturer: the active one, with the quota's reduced
            # speeds where the plan gives some (documented in the README).
            return resolve_layout(table, nas.manufacturer_id, LayoutPurpose.ACTIVE)
        return layout

    def _current_date(self) -> date:
        # date.today() costs a few µs; contract dates only need the day, so look again at
        # most once a second.
        now = time.monotonic()
        if now - self._date_checked >= 1.0:
            self._date, self._date_checked = self._today(), now
        return self._date

    def _authenticate(
        self,
        request: AccessRequest,
        name: str,
        contract: ContractSnapshot | None,
        mac: str | None,
    ) -> tuple[AuthMethod | None, bool, authenticate.MsChapV2Result | None]:
        """Check the request's credentials; an unknown user does the same work as a known one."""
        password = contract.config.password if contract is not None else None
        if mac is not None and contract is not None:
            # MAC authentication: NAS send the MAC as User-Name and as password, or an empty
            # password (MikroTik hotspot and wireless access lists); the contract's own
            # password is accepted too.
            candidates = [c for c in (name, "", password) if c is not None]
            if request.password is not None:
                given = request.password
                results = [authenticate.check_pap(given, c) for c in candidates]
                return "mac", any(results), None
            if request.chap_password is not None and request.chap_challenge is not None:
                chap, challenge = request.chap_password, request.chap_challenge
                results = [authenticate.check_chap(chap, challenge, c) for c in candidates]
                return "mac", any(results), None
            # No credentials at all: refused below like any request without them (RFC 2865
            # §4.1 wants User-Password or CHAP-Password in every Access-Request).
        if request.password is not None:
            return "pap", authenticate.check_pap(request.password, password), None
        if request.chap_password is not None and request.chap_challenge is not None:
            return (
                "chap",
                authenticate.check_chap(request.chap_password, request.chap_challenge, password),
                None,
            )
        if request.ms_chap2_response is not None and request.ms_chap_challenge is not None:
            result = authenticate.check_mschapv2(
                name, request.ms_chap_challenge, request.ms_chap2_response, password
            )
            return "mschapv2", result is not None, result
        return None, False, None

    def _challenge_refusal(
        self, request: AccessRequest, nas: NasSnapshot, verified: bool
    ) -> str | None:
        """Why a CHAP request's challenge is refused (RFC 2865 §5.40, reuse), or None."""
        challenge = request.chap_challenge
        if challenge is None:
            return None
        if len(challenge) < chap_challenges.MIN_CHALLENGE:
            self._warn.warning(
                ("short-challenge", nas.id),
                "NAS %s sent a CHAP-Challenge of %d octets (RFC 2865 §5.40: at least 5); "
                "refusing such requests",
                nas.name, len(challenge),
            )  # fmt: skip
            return chap_challenges.SHORT_CHALLENGE
        # Only a verified response is remembered: see chap_challenges.
        if verified and self.challenges.reused(
            request.nas_id, challenge, request.identifier, request.authenticator
        ):
            self._warn.warning(
                ("reused-challenge", nas.id),
                "NAS %s reused a CHAP challenge (user %r): a replay, or a NAS that repeats "
                "its challenges; refused",
                nas.name, request.user_name,
            )  # fmt: skip
            return chap_challenges.REUSED_CHALLENGE
        return None

    def _too_large(
        self,
        size: int,
        reply: Reply,
        request: AccessRequest,
        contract: ContractSnapshot,
        nas: NasSnapshot,
        method: AuthMethod,
    ) -> AuthDecision:
        """The Access-Reject for an Accept that would not fit one packet, and a warning."""
        proxy_state = request.proxy_state_size
        self._warn.warning(
            ("too-large", contract.id, nas.id),
            "contract %s: the reply for NAS %s would be %d octets, more than the %d of a RADIUS "
            "packet (RFC 2865 §3): layout %s with the contract's values %d, MS-CHAPv2 and "
            "leased addresses %d, the request's Proxy-State %d; answering Access-Reject",
            contract.number, nas.name, size, codec.MAX_PACKET, reply.layout, reply.size,
            size - reply.size - proxy_state, proxy_state,
        )  # fmt: skip
        return self._reject(too_large_reason(size), method=method, contract=contract)

    def _reject(
        self,
        reason: str,
        *,
        method: AuthMethod | None = None,
        contract: ContractSnapshot | None = None,
        public: str | None = None,
        request: AccessRequest | None = None,
    ) -> AuthDecision:
        attributes = b""
        if self._reply_message:
            text = (public or reason).encode()[:253]
            attributes = codec.attribute(codec.REPLY_MESSAGE, text)
        if method == "mschapv2" and request is not None and request.ms_chap2_response:
            # RFC 2548 §2.1.5 / RFC 2759 §6: E=691 is "authentication failure", R=0 no retry.
            ident = request.ms_chap2_response[:1]
            attributes += codec.vendor_attribute(
                codec.VENDOR_MICROSOFT, codec.MS_CHAP_ERROR, ident + b"E=691 R=0 V=3"
            )
        return AuthDecision(
            False, reason, attributes, (), method, contract.id if contract is not None else None
        )

    # -- rendering ----------------------------------------------------------------------------

    def rendered_reply(
        self,
        contract: ContractSnapshot,
        nas: NasSnapshot,
        layouts: Layouts | None = None,
    ) -> tuple[RenderedAttribute, ...] | Refusal:
        """The reply attributes ``contract`` gets at ``nas`` today, or why it is refused.

        Credentials and MAC binding are not evaluated. ``layouts`` (an index's layouts as they
        were) renders with other layouts than the current ones: what a CoA compares against.
        """
        purpose = purpose_of(contract, self._current_date())
        if isinstance(purpose, Refusal):
            return purpose
        layout = self._layout(nas, purpose, layouts)
        if isinstance(layout, Refusal):
            return layout
        if layouts is None:
            # The reply cache: what the next Access-Request of this contract will use anyway.
            return self.replies.get(contract, nas, purpose, layout).rendered
        return self.replies.render(contract, nas, layout).rendered

    # -- previews (management API) ------------------------------------------------------------

    def preview(self, contract_id: int, nas_id: int) -> Preview:
        """What ``nas`` would answer for the contract now, assuming the right credentials.

        MAC binding is not evaluated: it depends on the caller, not on the contract.
        """
        contract = self.index.contract(contract_id)
        if contract is None:
            raise NotFound(f"contract {contract_id} does not exist")
        nas = self.index.nas(nas_id)
        if nas is None:
            raise InvalidInput(f"NAS {nas_id} does not exist or is not active", field="nas_id")
        purpose = purpose_of(contract, self._current_date())
        if isinstance(purpose, Refusal):
            return Preview(self._reject(purpose, contract=contract), None, ())
        layout = self._layout(nas, purpose)
        if isinstance(layout, Refusal):
            return Preview(self._reject(layout, contract=contract), None, ())
        reply = self.replies.get(contract, nas, purpose, layout)
        # As _decide counts it for a PAP or CHAP login without Proxy-State.
        size = reply.size + sum(_lease_size(pool) for pool in self._managed_pools(contract))
        if size > codec.MAX_PACKET:
            decision = self._reject(too_large_reason(size), contract=contract)
        else:
            decision = AuthDecision(
                True, _accepted(purpose, layout), reply.attributes, reply.hidden, None,
                contract.id,
            )  # fmt: skip
        warnings: tuple[str, ...] = ()
        if size <= codec.MAX_PACKET < size + _MSCHAP_SIZE:
            warnings = (
                f"MS-CHAPv2 logins add {_MSCHAP_SIZE} octets (MS-CHAP2-Success and MPPE keys): "
                f"their reply would be {size + _MSCHAP_SIZE} octets, more than "
                f"{codec.MAX_PACKET}, and they are rejected",
            )
        return Preview(decision, reply.layout, reply.rendered, size, warnings)


def too_large_reason(size: int) -> str:
    """The reject reason for a reply of ``size`` octets (reject_reasons: reply_too_large)."""
    return f"reply too large ({size} octets, at most {codec.MAX_PACKET})"


def _fitted(decision: AuthDecision, proxy_state_size: int) -> AuthDecision:
    """A Reject without its attributes when they and the Proxy-State echo would not fit.

    The Reject must go out; its Reply-Message (and MS-CHAP-Error) may not. A request with
    User-Name and credentials always leaves room for the bare Reject: its own header and those
    attributes take more than the Reject's header and Message-Authenticator.
    """
    if codec.REPLY_OVERHEAD + len(decision.attributes) + proxy_state_size <= codec.MAX_PACKET:
        return decision
    return dataclasses.replace(decision, attributes=b"")


def _lease_size(pool: PoolSnapshot) -> int:
    """Octets of the attribute that carries what ``pool`` leases (see _LEASE_ATTRIBUTES)."""
    if pool.family is PoolFamily.IPV4:
        return 6  # RFC 2865 §5.8: Framed-IP-Address, type, length and 4 octets
    # RFC 3162 §2.3, RFC 4818: type, length, reserved, prefix length, the prefix's octets.
    return 4 + ((pool.prefix_length or 64) + 7) // 8


_ACCEPTED = {
    LayoutPurpose.ACTIVE: "accepted",
    LayoutPurpose.SUSPENDED: "accepted as suspended",
    LayoutPurpose.QUOTA: "accepted over quota",
}


def _accepted(purpose: LayoutPurpose, layout: LayoutSnapshot | None) -> str:
    reason = _ACCEPTED[purpose]
    return reason if layout is not None else reason + " without a layout"
