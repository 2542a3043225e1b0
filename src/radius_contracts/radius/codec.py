"""RADIUS packets as bytes: a strict decoder, the authenticators and reply encoding.

This is the hot path of every request, so it works on ``bytes`` with slicing, ``struct``, MD5
and HMAC-MD5 (radius.digest); hiding values (User-Password, salted) is radius.hiding. It knows
attribute numbers, not names: the dictionary is consulted when reply attributes are prepared,
not per packet.

``decode`` is strict about the framing RFC 2865 §3 and §5 define and lenient about what it
cannot judge without a dictionary (values are returned as raw octets). Anything it refuses
raises :class:`MalformedPacket`, whose ``reason`` is a metrics label; it raises nothing else.

Replies always start with a Message-Authenticator (RFC 3579 §3.2). That is the BlastRADIUS
(CVE-2024-3596) mitigation: the attack forges a Response Authenticator with an MD5
chosen-prefix collision hidden in an echoed Proxy-State, which needs the octets before it to
be predictable; an HMAC value first makes them unpredictable, and cannot itself be forged.
"""

from __future__ import annotations

import hmac
import secrets
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from radius_contracts.radius import wire_speedups
from radius_contracts.radius.dictionary import AttributeSpec
from radius_contracts.radius.digest import hmac_md5, md5
from radius_contracts.radius.hiding import hide_user_password, new_salt, new_salts, salt_encrypt
from radius_contracts.radius.messages import HiddenAttribute

__all__ = [
    "MAX_PACKET",
    "MAX_VALUE",
    "REPLY_OVERHEAD",
    "Code",
    "MalformedPacket",
    "Packet",
    "PacketTooLarge",
    "attribute",
    "attribute_size",
    "decode",
    "encode_attribute",
    "encode_attributes",
    "encode_hidden",
    "encode_reply",
    "encode_request",
    "hidden_attribute",
    "hidden_size",
    "new_authenticator",
    "split_vendor_specific",
    "vendor_attribute",
    "verify_message_authenticator",
    "verify_request_authenticator",
    "verify_response_authenticator",
]


class Code(IntEnum):
    """Packet type codes (RFC 2865 §3, RFC 2866 §3, RFC 5997 §2, RFC 5176 §2.3)."""

    ACCESS_REQUEST = 1
    ACCESS_ACCEPT = 2
    ACCESS_REJECT = 3
    ACCOUNTING_REQUEST = 4
    ACCOUNTING_RESPONSE = 5
    ACCESS_CHALLENGE = 11
    STATUS_SERVER = 12
    STATUS_CLIENT = 13
    DISCONNECT_REQUEST = 40
    DISCONNECT_ACK = 41
    DISCONNECT_NAK = 42
    COA_REQUEST = 43
    COA_ACK = 44
    COA_NAK = 45


# -- attribute numbers the server reads or writes itself ----------------------------------------

USER_NAME: Final = 1
USER_PASSWORD: Final = 2
CHAP_PASSWORD: Final = 3
NAS_IP_ADDRESS: Final = 4
NAS_PORT: Final = 5
SERVICE_TYPE: Final = 6
FRAMED_PROTOCOL: Final = 7
FRAMED_IP_ADDRESS: Final = 8
FILTER_ID: Final = 11
REPLY_MESSAGE: Final = 18
STATE: Final = 24
CLASS: Final = 25
VENDOR_SPECIFIC: Final = 26
SESSION_TIMEOUT: Final = 27
CALLED_STATION_ID: Final = 30
CALLING_STATION_ID: Final = 31
NAS_IDENTIFIER: Final = 32
PROXY_STATE: Final = 33
ACCT_STATUS_TYPE: Final = 40
ACCT_DELAY_TIME: Final = 41
ACCT_INPUT_OCTETS: Final = 42
ACCT_OUTPUT_OCTETS: Final = 43
ACCT_SESSION_ID: Final = 44
ACCT_AUTHENTIC: Final = 45
ACCT_SESSION_TIME: Final = 46
ACCT_INPUT_PACKETS: Final = 47
ACCT_OUTPUT_PACKETS: Final = 48
ACCT_TERMINATE_CAUSE: Final = 49
ACCT_MULTI_SESSION_ID: Final = 50
ACCT_INPUT_GIGAWORDS: Final = 52
ACCT_OUTPUT_GIGAWORDS: Final = 53
EVENT_TIMESTAMP: Final = 55
CHAP_CHALLENGE: Final = 60
NAS_PORT_TYPE: Final = 61
TUNNEL_PASSWORD: Final = 69
EAP_MESSAGE: Final = 79
MESSAGE_AUTHENTICATOR: Final = 80
ACCT_INTERIM_INTERVAL: Final = 85
NAS_PORT_ID: Final = 87
FRAMED_POOL: Final = 88
NAS_IPV6_ADDRESS: Final = 95
FRAMED_IPV6_PREFIX: Final = 97
ERROR_CAUSE: Final = 101
DELEGATED_IPV6_PREFIX: Final = 123
FRAMED_IPV6_ADDRESS: Final = 168

VENDOR_MICROSOFT: Final = 311
MS_CHAP_ERROR: Final = 2
MS_MPPE_ENCRYPTION_POLICY: Final = 7
MS_MPPE_ENCRYPTION_TYPES: Final = 8
MS_CHAP_CHALLENGE: Final = 11
MS_MPPE_SEND_KEY: Final = 16
MS_MPPE_RECV_KEY: Final = 17
MS_CHAP2_RESPONSE: Final = 25
MS_CHAP2_SUCCESS: Final = 26

# RFC 2865 §3: "The minimum length is 20 and maximum length is 4096."
MIN_PACKET: Final = 20
MAX_PACKET: Final = 4096
# RFC 2865 §5: the Length octet counts Type and Length, so a value has 253 octets at most.
MAX_VALUE: Final = 253

_HEADER = struct.Struct("!BBH")
_ZERO16: Final = bytes(16)
# A Message-Authenticator attribute with its value zeroed: the form the HMAC is computed over.
_MA_PLACEHOLDER: Final = bytes((MESSAGE_AUTHENTICATOR, 18)) + _ZERO16
# What every Access-Accept/Reject/Challenge carries besides its attributes: the header and
# the Message-Authenticator that encode_reply puts first.
REPLY_OVERHEAD: Final = MIN_PACKET + len(_MA_PLACEHOLDER)

# Requests whose Request Authenticator is a hash over the packet, not a random nonce:
# RFC 2866 §3 (accounting) and RFC 5176 §2.3 / §3.5 (dynamic authorization).
_HASHED_REQUESTS: Final = frozenset(
    {Code.ACCOUNTING_REQUEST, Code.COA_REQUEST, Code.DISCONNECT_REQUEST}
)
# Requests that carry a random Request Authenticator (RFC 2865 §3, RFC 5997 §3).
_NONCE_REQUESTS: Final = frozenset({Code.ACCESS_REQUEST, Code.STATUS_SERVER})


_WIRE = wire_speedups.module()


class PacketTooLarge(ValueError):
    """A packet to be built would pass the 4096 octets of RFC 2865 §3; ``size`` says by how much."""

    def __init__(self, what: str, size: int) -> None:
        super().__init__(f"the {what} would be {size} octets, at most {MAX_PACKET}")
        self.size = size


class MalformedPacket(ValueError):
    """A datagram that is no valid RADIUS packet; ``reason`` is a short snake_case label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Packet:
    """A decoded packet: header fields, attributes in wire order, and the bytes they came from.

    ``code`` is the raw Code octet (compare with :class:`Code`; unknown codes are the
    caller's to drop, RFC 2865 §3). ``data`` is the datagram cut to its Length field, which
    the authenticator checks hash. ``message_authenticator_offset`` is where the
    Message-Authenticator *value* starts in ``data``, or -1 without one.
    """

    code: int
    identifier: int
    authenticator: bytes
    attributes: list[tuple[int, bytes]]
    data: bytes
    message_authenticator_offset: int = -1

    @property
    def has_message_authenticator(self) -> bool:
        """Whether the packet carries a Message-Authenticator."""
        return self.message_authenticator_offset >= 0

    def get(self, type_: int) -> bytes | None:
        """The value of the first attribute of ``type_``, or None."""
        for kind, value in self.attributes:
            if kind == type_:
                return value
        return None

    def get_all(self, type_: int) -> list[bytes]:
        """The values of every attribute of ``type_``, in order."""
        return [value for kind, value in self.attributes if kind == type_]

    def vendor(self, vendor_id: int, vendor_type: int) -> bytes | None:
        """The value of the first ``vendor_type`` sub-attribute in a VSA of ``vendor_id``.

        Only Vendor-Specific values in the RFC 2865 §5.26 recommended format (1-octet type,
        1-octet length) are searched; others are skipped, never an error.
        """
        for kind, value in self.attributes:
            if kind != VENDOR_SPECIFIC or len(value) < 6:
                continue
            if int.from_bytes(value[:4], "big") != vendor_id:
                continue
            subs = _split_subattributes(value)
            if subs is None:
                continue
            for sub_type, sub_value in subs:
                if sub_type == vendor_type:
                    return sub_value
        return None


# -- decoding ----------------------------------------------------------------------------------


def decode(data: bytes) -> Packet:
    """Parse one datagram strictly (RFC 2865 §3, §5; RFC 3579 §3.2); raise MalformedPacket."""
    size = len(data)
    if size < MIN_PACKET:
        raise MalformedPacket("too_short", f"{size} octets, a header needs 20")
    if size > MAX_PACKET:
        raise MalformedPacket("too_long", f"{size} octets, at most 4096 (RFC 2865 §3)")
    code, identifier, length = _HEADER.unpack_from(data)
    if length < MIN_PACKET or length > MAX_PACKET:
        raise MalformedPacket("bad_length", f"Length field {length} is outside 20..4096")
    if length > size:
        # RFC 2865 §3: "If the packet is shorter than the Length field indicates, it MUST be
        # silently discarded."
        raise MalformedPacket("length_mismatch", f"Length {length}, but {size} octets arrived")
    if length < size:
        # RFC 2865 §3: "Octets outside the range of the Length field MUST be treated as
        # padding and ignored on reception."
        data = data[:length]

    attributes: list[tuple[int, bytes]] = []
    append = attributes.append
    ma_offset = -1
    pos = MIN_PACKET
    try:
        while pos < length:
            kind = data[pos]
            end = pos + data[pos + 1]  # IndexError: a lone octet left, see below
            if end > length or end < pos + 2:
                raise _attribute_error(kind, pos, end, length)
            if kind == MESSAGE_AUTHENTICATOR:
                # RFC 3579 §3.2: Length = 18; and the HMAC covers exactly one value field.
                if end - pos != 18:
                    raise MalformedPacket("bad_message_authenticator", f"length {end - pos}")
                if ma_offset >= 0:
                    raise MalformedPacket("duplicate_message_authenticator")
                ma_offset = pos + 2
            append((kind, data[pos + 2 : end]))
            pos = end
    except IndexError:
        # data is cut to Length, so only the Length octet of a last attribute can be missing.
        raise MalformedPacket("attribute_overrun", f"a lone octet at offset {pos}") from None
    return Packet(code, identifier, data[4:20], attributes, data, ma_offset)


def _attribute_error(kind: int, pos: int, end: int, length: int) -> MalformedPacket:
    if end < pos + 2:
        # RFC 2865 §5: the Length octet counts Type, Length and Value, so 2 at least.
        return MalformedPacket("attribute_too_short", f"type {kind} at offset {pos}")
    return MalformedPacket(
        "attribute_overrun", f"type {kind} at offset {pos} ends at {end}, Length is {length}"
    )


def split_vendor_specific(value: bytes) -> tuple[int, list[tuple[int, bytes]]] | None:
    """Split a Vendor-Specific value into (vendor id, [(type, value), ...]).

    Returns None when the value is not in the RFC 2865 §5.26 recommended format (a 4-octet
    Vendor-Id, then sub-attributes of 1-octet type and 1-octet length filling it exactly).
    """
    if len(value) < 6:
        return None
    subs = _split_subattributes(value)
    if subs is None:
        return None
    return int.from_bytes(value[:4], "big"), subs


def _split_subattributes(value: bytes) -> list[tuple[int, bytes]] | None:
    subs: list[tuple[int, bytes]] = []
    pos = 4
    size = len(value)
    while pos < size:
        if pos + 1 == size:
            return None
        end = pos + value[pos + 1]
        if end < pos + 2 or end > size:
            return None
        subs.append((value[pos], value[pos + 2 : end]))
        pos = end
    return subs


# -- authenticators ----------------------------------------------------------------------------


def new_authenticator() -> bytes:
    """A Request Authenticator for Access-Request / Status-Server (RFC 2865 §3)."""
    # RFC 2865 §3 wants it unpredictable and unique over the lifetime of a secret: an
    # attacker who can predict it can prepare replies or collect password hiding keys.
    return secrets.token_bytes(16)


def verify_message_authenticator(
    packet: Packet, secret: bytes, request_authenticator: bytes | None = None
) -> bool:
    """Check the Message-Authenticator HMAC-MD5 (RFC 3579 §3.2); False if there is none.

    The Authenticator field the HMAC covers depends on the packet:

    * Access-Request and Status-Server: the packet's own Request Authenticator (leave
      ``request_authenticator`` None);
    * Accounting-Request, CoA-Request, Disconnect-Request: sixteen zero octets, since their
      Request Authenticator is itself a hash over the packet (RFC 5176 §3.5; leave it None);
    * any reply: the Request Authenticator of the request it answers, which must be given
      (RFC 3579 §3.2 for Access replies, RFC 5176 §3.5 for CoA/Disconnect ACK and NAK).

    Raises ValueError for a reply without ``request_authenticator``.
    """
    offset = packet.message_authenticator_offset
    if offset < 0:
        return False
    data = packet.data
    if request_authenticator is None:
        if packet.code in _NONCE_REQUESTS:
            # The Authenticator field already holds what the HMAC covers.
            expected = hmac_md5(secret, data[:offset], _ZERO16, data[offset + 16 :])
            return hmac.compare_digest(expected, data[offset : offset + 16])
        if packet.code not in _HASHED_REQUESTS:
            raise ValueError(
                f"code {packet.code} is not a request: pass the request's authenticator"
            )
        request_authenticator = _ZERO16
    expected = hmac_md5(
        secret, data[:4], request_authenticator, data[20:offset], _ZERO16, data[offset + 16 :]
    )
    return hmac.compare_digest(expected, data[offset : offset + 16])


def verify_request_authenticator(packet: Packet, secret: bytes) -> bool:
    """Check the Request Authenticator of Accounting-, CoA- and Disconnect-Requests.

    RFC 2866 §3 / RFC 5176 §3.5: MD5(Code + Identifier + Length + 16 zero octets +
    Attributes + Secret). Raises ValueError for codes whose authenticator is a nonce.
    """
    if packet.code not in _HASHED_REQUESTS:
        raise ValueError(f"code {packet.code} has no hashed Request Authenticator")
    data = packet.data
    expected = md5(data[:4] + _ZERO16 + data[20:] + secret)
    return hmac.compare_digest(expected, packet.authenticator)


def verify_response_authenticator(
    packet: Packet, secret: bytes, request_authenticator: bytes
) -> bool:
    """Check a reply's Response Authenticator against the request it answers.

    RFC 2865 §3 (Access replies), RFC 2866 §3 (Accounting-Response), RFC 5176 §3.5 (CoA and
    Disconnect ACK/NAK): MD5(Code + Identifier + Length + Request Authenticator +
    Attributes + Secret).
    """
    data = packet.data
    expected = md5(data[:4] + request_authenticator + data[20:] + secret)
    return hmac.compare_digest(expected, packet.authenticator)


# -- attribute builders ------------------------------------------------------------------------


def attribute(type_: int, value: bytes) -> bytes:
    """One attribute: Type, Length, Value (RFC 2865 §5). ValueError if the value is too long."""
    if not 0 < type_ < 256:
        raise ValueError(f"attribute type {type_} is outside 1..255")
    if len(value) > MAX_VALUE:
        raise ValueError(f"type {type_}: {len(value)} octets, at most {MAX_VALUE} fit")
    return bytes((type_, len(value) + 2)) + value


def vendor_attribute(vendor_id: int, vendor_type: int, value: bytes) -> bytes:
    """A Vendor-Specific attribute holding one sub-attribute (RFC 2865 §5.26 format)."""
    # RFC 2865 §5.26: "The high-order octet is 0 and the low-order 3 octets are the SMI
    # Network Management Private Enterprise Code of the Vendor".
    if not 0 <= vendor_id < 1 << 24:
        raise ValueError(f"vendor id {vendor_id} does not fit three octets")
    if not 0 < vendor_type < 256:
        raise ValueError(f"vendor type {vendor_type} is outside 1..255")
    if len(value) > MAX_VALUE - 6:
        raise ValueError(
            f"vendor {vendor_id} type {vendor_type}: {len(value)} octets, "
            f"at most {MAX_VALUE - 6} fit in a Vendor-Specific attribute"
        )
    return (
        bytes((VENDOR_SPECIFIC, len(value) + 8))
        + vendor_id.to_bytes(4, "big")
        + bytes((vendor_type, len(value) + 2))
        + value
    )


def encode_attribute(spec: AttributeSpec, value: bytes, tag: int | None = None) -> bytes:
    """Header (and Vendor-Specific wrapper) and tag for ``value`` as :func:`encode_value` made it.

    ``tag`` is only allowed for ``has_tag`` attributes. Attributes with ``encrypt`` set need
    the secret and go through :func:`encode_hidden` instead (ValueError here).
    """
    if spec.encrypt:
        raise ValueError(f"{spec.name} is encrypted: send it as a HiddenAttribute")
    if spec.has_tag:
        value = _tagged(spec, value, tag)
    elif tag is not None:
        raise ValueError(f"{spec.name} has no tag")
    if spec.vendor_id is None:
        return attribute(spec.code, value)
    return vendor_attribute(spec.vendor_id, spec.code, value)


def _tagged(spec: AttributeSpec, value: bytes, tag: int | None) -> bytes:
    if tag is not None and not 0 <= tag <= 0x1F:
        raise ValueError(f"{spec.name}: tag {tag} is outside 0..31 (RFC 2868 §3)")
    if spec.type == "integer":
        # RFC 2868 §3.1: the tag is the first of the four value octets ("If the Tag field is
        # unused, it MUST be zero"), leaving 24 bits for the number.
        if len(value) != 4 or value[0]:
            raise ValueError(f"{spec.name}: a tagged integer is 3 octets of number")
        return bytes((tag or 0,)) + value[1:]
    # String types (RFC 2868 §3.3 and on): a Tag octet of 0x01-0x1F precedes the value; a
    # first octet above 0x1F "SHOULD be interpreted as the first byte of the following String
    # field". So an untagged value that itself starts with 0x00-0x1F needs a zero tag octet,
    # or the receiver would take its first octet for a tag.
    if tag:
        return bytes((tag,)) + value
    if value and value[0] <= 0x1F:
        return b"\x00" + value
    return value


def encode_hidden(
    hidden: HiddenAttribute,
    secret: bytes,
    request_authenticator: bytes,
    *,
    salt: bytes | None = None,
) -> bytes:
    """Encrypt and frame one hidden reply attribute.

    ``encrypt=1`` hides like User-Password (RFC 2865 §5.2, e.g. MS-CHAP-MPPE-Keys);
    ``encrypt=2`` uses the salted scheme (RFC 2868 §3.5 Tunnel-Password, RFC 2548 §2.4.2
    MS-MPPE keys) with ``salt`` or a random one, after a tag octet when ``tag`` is not None
    (Tunnel-Password always has its tag octet: give 0 when untagged). Within one packet the
    salts must differ; :func:`encode_reply` sees to that.
    """
    if hidden.encrypt == 1:
        if hidden.tag is not None:
            raise ValueError(f"attribute {hidden.code}: User-Password style hiding has no tag")
        value = hide_user_password(hidden.value, secret, request_authenticator)
    elif hidden.encrypt == 2:
        if salt is None:
            salt = new_salt(set())
        value = salt_encrypt(hidden.value, secret, request_authenticator, salt)
        if hidden.tag is not None:
            if not 0 <= hidden.tag <= 0x1F:
                raise ValueError(f"attribute {hidden.code}: tag {hidden.tag} is outside 0..31")
            value = bytes((hidden.tag,)) + value
    else:
        raise ValueError(f"attribute {hidden.code}: encrypt={hidden.encrypt} is not supported")
    if hidden.vendor_id is None:
        return attribute(hidden.code, value)
    return vendor_attribute(hidden.vendor_id, hidden.code, value)


def encode_hidden_attributes(
    hidden: Sequence[HiddenAttribute], secret: bytes, request_authenticator: bytes
) -> bytes:
    """Encrypt and frame the hidden attributes of one reply, each salt different (see
    :func:`encode_hidden`); what :func:`encode_reply` puts after the plain attributes."""
    salts = iter(new_salts(sum(item.encrypt == 2 for item in hidden)))
    parts = []
    for item in hidden:
        salt = next(salts) if item.encrypt == 2 else None
        parts.append(encode_hidden(item, secret, request_authenticator, salt=salt))
    return b"".join(parts)


def hidden_size(hidden: HiddenAttribute) -> int:
    """Octets :func:`encode_hidden` makes of ``hidden``, worked out without encrypting.

    Reply sizes are checked before anything is encrypted (the keys need the request), so
    this follows the padding rules instead. ValueError for an ``encrypt`` it does not know.
    """
    size = len(hidden.value)
    if hidden.encrypt == 1:
        # RFC 2865 §5.2: padded with NULs to a multiple of 16 octets, one block at least.
        octets = max(16, size + -size % 16)
    elif hidden.encrypt == 2:
        # RFC 2868 §3.5: two salt octets, then a length octet and the data, padded to 16.
        octets = 2 + (size + 1) + -(size + 1) % 16 + (hidden.tag is not None)
    else:
        raise ValueError(f"attribute {hidden.code}: encrypt={hidden.encrypt} is not supported")
    return octets + (2 if hidden.vendor_id is None else 8)


def attribute_size(spec: AttributeSpec, value: bytes, tag: int | None = None) -> int:
    """Octets ``value`` (as ``encode_value`` made it) takes in a packet as ``spec``.

    Header, Vendor-Specific wrapper, tag octet and encryption padding included: what the
    attribute adds to a reply. ValueError when it cannot be encoded at all.
    """
    if spec.encrypt:
        return hidden_size(hidden_attribute(spec, value, tag))
    return len(encode_attribute(spec, value, tag))


def hidden_attribute(spec: AttributeSpec, value: bytes, tag: int | None = None) -> HiddenAttribute:
    """``value`` of an ``encrypt`` attribute, to be encrypted once the request is known.

    RFC 2868 §3.5: a has_tag attribute such as Tunnel-Password always carries its Tag octet
    (0 when untagged) before the salt. ValueError for a tag on an attribute without one.
    """
    if tag is not None and not spec.has_tag:
        raise ValueError(f"{spec.name} has no tag")
    if tag is not None and not 0 <= tag <= 0x1F:
        raise ValueError(f"{spec.name}: tag {tag} is outside 0..31 (RFC 2868 §3)")
    if spec.has_tag and tag is None:
        tag = 0
    return HiddenAttribute(spec.code, value, spec.encrypt, spec.vendor_id, tag)


# -- packets -----------------------------------------------------------------------------------


def _framed(
    what: str,
    code: int,
    identifier: int,
    body: bytes,
    secret: bytes,
    authenticator: bytes,
    *,
    signed: bool,
) -> tuple[bytes, bytes]:
    """The header for ``body``, and ``body`` with its leading Message-Authenticator filled in.

    ``authenticator`` is what the HMAC sees in the Authenticator field (RFC 3579 §3.2,
    RFC 5176 §3.5); ``signed`` says ``body`` starts with the zeroed placeholder.
    """
    length = MIN_PACKET + len(body)
    if length > MAX_PACKET:
        raise PacketTooLarge(what, length)
    header = _HEADER.pack(code, identifier, length)
    if signed:
        mac = hmac_md5(secret, header, authenticator, body)
        body = _MA_PLACEHOLDER[:2] + mac + body[18:]
    return header, body


def encode_reply(
    code: int,
    identifier: int,
    request_authenticator: bytes,
    attributes: bytes,
    secret: bytes,
    *,
    proxy_states: Sequence[bytes] = (),
    hidden: Sequence[HiddenAttribute] = (),
    message_authenticator: bool = True,
) -> bytes:
    """Build a reply: Message-Authenticator, ``attributes``, hidden ones, Proxy-State echoes.

    ``attributes`` are complete encoded attributes. The Message-Authenticator comes first
    (BlastRADIUS mitigation) and is the HMAC-MD5 of RFC 3579 §3.2 with the Request
    Authenticator in the Authenticator field. Leave it out (``message_authenticator=False``)
    for an Accounting-Response to an Accounting-Request: no RFC defines one there. Raises
    PacketTooLarge (a ValueError) if the packet would exceed 4096 octets.
    """
    if len(request_authenticator) != 16:
        raise ValueError("a Request Authenticator is 16 octets")
    parts = [_MA_PLACEHOLDER, attributes] if message_authenticator else [attributes]
    if hidden:
        parts.append(encode_hidden_attributes(hidden, secret, request_authenticator))
    # RFC 2865 §5.33: Proxy-State MUST be returned unmodified; §5: the order of attributes
    # of the same type MUST be preserved. Last, so our own attributes never follow them.
    for state in proxy_states:
        parts.append(attribute(PROXY_STATE, state))
    header, body = _framed(
        "reply", code, identifier, b"".join(parts), secret, request_authenticator,
        signed=message_authenticator,
    )  # fmt: skip
    # RFC 2865 §3: ResponseAuth = MD5(Code+ID+Length+RequestAuth+Attributes+Secret).
    response = md5(header + request_authenticator + body + secret)
    return header + response + body


def encode_request(
    code: int,
    identifier: int,
    attributes: bytes,
    secret: bytes,
    *,
    authenticator: bytes | None = None,
    message_authenticator: bool = True,
) -> bytes:
    """Build a request (test client, CoA sender); ``attributes`` are complete attributes.

    Access-Request and Status-Server carry ``authenticator`` or a random one (pass it when
    the attributes depend on it: User-Password, CHAP), the Message-Authenticator computed over
    it. Accounting-, CoA- and Disconnect-Requests get the Message-Authenticator computed with
    a zeroed Authenticator field, then the Request Authenticator of RFC 2866 §3 /
    RFC 5176 §3.5 over the result; ``authenticator`` must be None for them.
    """
    if code in _NONCE_REQUESTS:
        if authenticator is None:
            authenticator = new_authenticator()
        elif len(authenticator) != 16:
            raise ValueError("an authenticator is 16 octets")
        hashed = False
    elif code in _HASHED_REQUESTS:
        if authenticator is not None:
            raise ValueError(f"code {code} computes its Request Authenticator")
        authenticator = _ZERO16
        hashed = True
    else:
        raise ValueError(f"code {code} is not a request this codec builds")
    body = _MA_PLACEHOLDER + attributes if message_authenticator else attributes
    header, body = _framed(
        "request", code, identifier, body, secret, authenticator, signed=message_authenticator
    )
    if hashed:
        authenticator = md5(header + _ZERO16 + body + secret)
    return header + authenticator + body


def encode_attributes(items: Iterable[tuple[int, bytes]]) -> bytes:
    """Encode ``(type, value)`` pairs as consecutive attributes."""
    return b"".join(attribute(kind, value) for kind, value in items)
