"""RADIUS/1.1 (RFC 9765): RadSec without MD5, negotiated per connection by ALPN.

A RadSec connection whose TLS handshake selects the ALPN name ``radius/1.1`` carries packets
whose header has a Token (four octets) where the Identifier and Authenticator were, and whose
attributes are no longer hidden with the shared secret: User-Password, Tunnel-Password and
MS-MPPE keys travel as their plain values (TLS protects them), and Message-Authenticator is
neither sent nor checked (RFC 9765 §5).

The daemon's request handling speaks RADIUS/1.0 (duplicate detection, the C wire parser, the
handlers, reply encoding). Rather than teach every layer a second packet format, a
:class:`Translator` on each RADIUS/1.1 connection turns a request into the RADIUS/1.0 packet
the same NAS would have sent over RADIUS/1.0 RadSec (its own Identifier and a fresh random
authenticator, User-Password hidden with the connection's secret), and turns the reply back
(Token restored, hidden attributes revealed, Message-Authenticator removed). MD5 is thus only
used inside this process, never on the wire; a request costs two extra packet walks.

Token handling (RFC 9765 §4.2): a Token identifies a request on its connection; TLS never
retransmits, so no duplicate detection is done on it (each request gets a new authenticator,
which the reply cache keys on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from radius_contracts.radius import codec, hiding
from radius_contracts.radius.dictionary import AttributeCatalog, AttributeSpec

__all__ = [
    "ALPN_RADIUS_10",
    "ALPN_RADIUS_11",
    "Mode",
    "Translator",
    "alpn_protocols",
]

ALPN_RADIUS_10: Final = "radius/1.0"
ALPN_RADIUS_11: Final = "radius/1.1"
Mode = Literal["forbid", "allow", "require"]

# RFC 7930 §4: Original-Packet-Code is extended attribute 241.4; RFC 9765 §5.6 says it is not
# used over RADIUS/1.1 and is discarded like Message-Authenticator.
_EXTENDED_1: Final = 241
_ORIGINAL_PACKET_CODE: Final = 4
_TOKEN_END: Final = 8  # Code, Reserved-1, Length, Token
_RESERVED_2: Final = bytes(12)
_MAX_PASSWORD: Final = 128  # RFC 9765 §5.1.1 keeps RFC 2865 §5.2's limit


def alpn_protocols(mode: Mode) -> list[str] | None:
    """The ALPN names a server in ``mode`` offers, most wanted first; None offers none.

    RFC 9765 §3.3: "forbid" behaves as a server that does not know RADIUS/1.1 (no ALPN reply
    at all); "allow" takes RADIUS/1.1 when the client offers it and RADIUS/1.0 otherwise;
    "require" takes only RADIUS/1.1.
    """
    if mode == "forbid":
        return None
    if mode == "allow":
        return [ALPN_RADIUS_11, ALPN_RADIUS_10]
    return [ALPN_RADIUS_11]


class Untranslatable(ValueError):
    """A RADIUS/1.1 request that has no RADIUS/1.0 equivalent; ``reason`` is a metrics label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Pending:
    """A request of a RADIUS/1.1 connection being handled: what its reply needs back."""

    token: bytes
    authenticator: bytes  # of the RADIUS/1.0 packet we made, which hid the reply's secrets


class Translator:
    """RADIUS/1.1 ⇄ RADIUS/1.0 for one connection (see the module docstring)."""

    __slots__ = ("_catalog", "_secret")

    def __init__(self, secret: bytes, catalog: Callable[[], AttributeCatalog | None]) -> None:
        self._secret = secret
        self._catalog = catalog

    # -- requests from the NAS ----------------------------------------------------------------

    def request(self, frame: bytes, identifier: int) -> tuple[bytes, Pending]:
        """The RADIUS/1.0 packet with ``identifier`` standing for the RADIUS/1.1 ``frame``.

        Raises codec.MalformedPacket for broken attributes and Untranslatable for a request
        RADIUS/1.1 does not allow (a CHAP-Password without CHAP-Challenge: the challenge can
        no longer come from the Authenticator field, RFC 9765 §5.1.2).
        """
        packet = codec.decode(frame)
        code = packet.code
        token = frame[4:_TOKEN_END]
        secret = self._secret
        nonce = code in (codec.Code.ACCESS_REQUEST, codec.Code.STATUS_SERVER)
        authenticator = codec.new_authenticator() if nonce else bytes(16)
        parts: list[bytes] = []
        chap = challenge = False
        for kind, value in packet.attributes:
            if kind == codec.MESSAGE_AUTHENTICATOR or _is_original_packet_code(kind, value):
                continue  # RFC 9765 §5.3, §5.6: silently discarded
            if kind == codec.USER_PASSWORD:
                if not 0 < len(value) <= _MAX_PASSWORD:
                    raise Untranslatable("user_password_length")
                value = hiding.hide_user_password(value, secret, authenticator)
            elif kind == codec.CHAP_PASSWORD:
                chap = True
            elif kind == codec.CHAP_CHALLENGE:
                challenge = True
            parts.append(codec.attribute(kind, value))
        if chap and not challenge:
            raise Untranslatable("chap_without_challenge")
        if nonce:
            legacy = codec.encode_request(
                code, identifier, b"".join(parts), secret, authenticator=authenticator
            )
        elif code == codec.Code.ACCOUNTING_REQUEST:
            legacy = codec.encode_request(
                code, identifier, b"".join(parts), secret, message_authenticator=False
            )
            authenticator = legacy[4:20]
        else:
            raise Untranslatable("unexpected_code")
        return legacy, Pending(token, authenticator)

    # -- our replies ----------------------------------------------------------------------------

    def reply(self, legacy: bytes, pending: Pending) -> bytes:
        """The RADIUS/1.1 form of our RADIUS/1.0 ``legacy`` reply to ``pending``."""
        packet = codec.decode(legacy)
        catalog = self._catalog()
        parts: list[bytes] = []
        for kind, value in packet.attributes:
            if kind == codec.MESSAGE_AUTHENTICATOR:
                continue  # RFC 9765 §5.3: MUST NOT be sent
            if kind == codec.VENDOR_SPECIFIC:
                value = self._reveal_vendor(value, pending.authenticator, catalog)
            elif catalog is not None:
                spec = catalog.by_code(kind)
                if spec is not None and spec.encrypt:
                    value = self._reveal(spec, value, pending.authenticator)
            parts.append(codec.attribute(kind, value))
        return _frame(packet.code, pending.token, b"".join(parts))

    def refusal(self, frame: bytes, error_cause: int) -> bytes:
        """A Protocol-Error answering RADIUS/1.0 ``frame`` (see :func:`protocol_error`)."""
        return protocol_error(frame, error_cause, self._secret)

    def _reveal(self, spec: AttributeSpec, value: bytes, authenticator: bytes) -> bytes:
        # RFC 9765 §5.1: the value as its data type encodes it, with the hiding left out; a
        # tagged one (Tunnel-Password) keeps its Tag octet and loses Salt and Data-Length.
        tag = b""
        if spec.has_tag and value:
            tag, value = value[:1], value[1:]
        if spec.encrypt == 2:
            plain = hiding.salt_decrypt(value, self._secret, authenticator)
        elif spec.encrypt == 1:
            plain = hiding.decrypt_user_password(value, self._secret, authenticator)
        else:
            return tag + value  # Ascend's scheme: no RADIUS/1.1 form defined; left as is
        if plain is None:
            raise ValueError(f"{spec.name}: our own hidden value does not decode")
        return tag + plain

    def _reveal_vendor(
        self, value: bytes, authenticator: bytes, catalog: AttributeCatalog | None
    ) -> bytes:
        if catalog is None or len(value) < 6:
            return value
        vendor_id = int.from_bytes(value[:4], "big")
        subs = codec.split_vendor_specific(value)
        if subs is None:
            return value
        _, items = subs
        changed = False
        out: list[tuple[int, bytes]] = []
        for sub_type, sub_value in items:
            spec = catalog.by_code(sub_type, vendor_id)
            if spec is not None and spec.encrypt:
                sub_value = self._reveal(spec, sub_value, authenticator)
                changed = True
            out.append((sub_type, sub_value))
        if not changed:
            return value
        return value[:4] + b"".join(bytes((t, len(v) + 2)) + v for t, v in out)

    # -- requests we send (CoA / Disconnect) ----------------------------------------------------

    @staticmethod
    def outbound(code: int, token: bytes, attributes: bytes) -> bytes:
        """A RADIUS/1.1 request of ours: ``attributes`` as they are, no Message-Authenticator."""
        return _frame(code, token, attributes)


def protocol_error(frame: bytes, error_cause: int, secret: bytes) -> bytes:
    """A RADIUS/1.0 Protocol-Error (code 52, RFC 7930 §4) answering ``frame``, carrying
    Error-Cause ``error_cause``: how a server that requires RADIUS/1.1 tells a client that did
    not negotiate it why the connection closes (RFC 9765 §3.4 uses 406, Unsupported Extension).
    """
    request_authenticator = frame[4:20]
    cause = codec.attribute(codec.ERROR_CAUSE, error_cause.to_bytes(4, "big"))
    return codec.encode_reply(
        PROTOCOL_ERROR, frame[1], request_authenticator, cause, secret, message_authenticator=True
    )


PROTOCOL_ERROR: Final = 52  # RFC 7930 §4
UNSUPPORTED_EXTENSION: Final = 406  # Error-Cause, RFC 5176 §3.5


def _frame(code: int, token: bytes, attributes: bytes) -> bytes:
    length = 20 + len(attributes)
    if length > codec.MAX_PACKET:
        raise codec.PacketTooLarge("RADIUS/1.1 packet", length)
    # RFC 9765 §4.1: Reserved-1 (the old Identifier) and Reserved-2 are sent as zero.
    return bytes((code, 0)) + length.to_bytes(2, "big") + token + _RESERVED_2 + attributes


def _is_original_packet_code(kind: int, value: bytes) -> bool:
    return kind == _EXTENDED_1 and value[:1] == bytes((_ORIGINAL_PACKET_CODE,))
