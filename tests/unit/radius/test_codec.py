"""The packet codec: RFC 2865 §7 vectors, strict decoding, authenticators, hiding, encoding."""

from __future__ import annotations

import collections
import hashlib
import hmac
import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from pyrad.packet import AuthPacket, Packet

from radius_contracts.radius import codec, digest, hiding
from radius_contracts.radius.codec import Code, MalformedPacket
from radius_contracts.radius.dictionary import AttributeCatalog, encode_value
from radius_contracts.radius.messages import HiddenAttribute

REPO = Path(__file__).resolve().parents[3]

# RFC 2865 §7: every example uses this shared secret.
RFC_SECRET = b"xyzzy5461"

# RFC 2865 §7.1, "User Telnet to Specified Host": nemo / arctangent from NAS 192.168.1.16.
RFC_7_1_REQUEST = bytes.fromhex(
    "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb"
    "98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d"
    "93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8"
    "01 10 05 06 00 00 00 03"
)
RFC_7_1_ACCEPT = bytes.fromhex(
    "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf"
    "9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00"
    "0e 06 c0 a8 01 03"
)
# RFC 2865 §7.2, "Framed User Authenticating with CHAP": flopsy on port 20.
RFC_7_2_REQUEST = bytes.fromhex(
    "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e"
    "0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9"
    "75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04"
    "06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00"
    "02 07 06 00 00 00 01"
)
# The octets as printed: Framed-Routing (0a 06 ...) carries 2 although the attribute list
# above them says "Framed-Routing = None". The Response Authenticator covers the 2.
RFC_7_2_ACCEPT = bytes.fromhex(
    "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0"
    "3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01"
    "08 06 ff ff ff fe 0a 06 00 00 00 02 0d 06 00 00"
    "00 01 0c 06 00 00 05 dc"
)

SECRET = b"s3cr3t-shared"


@pytest.fixture(scope="module")
def catalog() -> AttributeCatalog:
    return AttributeCatalog.load(REPO / "dictionaries" / "dictionary")


def u32(number: int) -> bytes:
    return number.to_bytes(4, "big")


def header(code: int, identifier: int, length: int, authenticator: bytes = bytes(16)) -> bytes:
    return struct.pack("!BBH", code, identifier, length) + authenticator


def raw_packet(code: int, attributes: bytes, *, length: int | None = None) -> bytes:
    """A packet with arbitrary attribute octets and no valid authenticator."""
    size = 20 + len(attributes) if length is None else length
    return header(code, 7, size, bytes(range(16))) + attributes


def access_request(
    attributes: bytes = b"", *, secret: bytes = SECRET, identifier: int = 7
) -> tuple[bytes, bytes]:
    """An Access-Request with a User-Password for ``pw``; returns (datagram, authenticator)."""
    authenticator = codec.new_authenticator()
    body = codec.encode_attributes(
        [
            (codec.USER_NAME, b"alice"),
            (codec.USER_PASSWORD, hiding.hide_user_password(b"pw", secret, authenticator)),
        ]
    )
    data = codec.encode_request(
        Code.ACCESS_REQUEST,
        identifier,
        body + attributes,
        secret,
        authenticator=authenticator,
    )
    return data, authenticator


# -- RFC 2865 §7 examples ----------------------------------------------------------------------


def test_rfc2865_7_1_access_request_decodes_and_password_decrypts() -> None:
    packet = codec.decode(RFC_7_1_REQUEST)

    assert packet.code == Code.ACCESS_REQUEST
    assert packet.identifier == 0
    assert packet.authenticator == bytes.fromhex("0f403f9473978057bd83d5cb98f4227a")
    assert [kind for kind, _ in packet.attributes] == [1, 2, 4, 5]
    assert packet.get(codec.USER_NAME) == b"nemo"
    assert packet.get(codec.NAS_IP_ADDRESS) == bytes((192, 168, 1, 16))
    assert packet.get(codec.NAS_PORT) == u32(3)
    assert packet.data == RFC_7_1_REQUEST
    assert not packet.has_message_authenticator
    password = packet.get(codec.USER_PASSWORD)
    assert password is not None and len(password) == 16
    assert hiding.decrypt_user_password(password, RFC_SECRET, packet.authenticator) == (
        b"arctangent"
    )
    # ... and hiding it again gives the RFC's octets (the padding is NULs).
    assert hiding.hide_user_password(b"arctangent", RFC_SECRET, packet.authenticator) == password


def test_rfc2865_7_1_access_accept_authenticator_verifies_and_is_reproduced() -> None:
    request = codec.decode(RFC_7_1_REQUEST)
    accept = codec.decode(RFC_7_1_ACCEPT)

    assert accept.code == Code.ACCESS_ACCEPT
    assert accept.attributes == [
        (codec.SERVICE_TYPE, u32(1)),  # Login-User
        (15, u32(0)),  # Login-Service = Telnet
        (14, bytes((192, 168, 1, 3))),  # Login-IP-Host
    ]
    assert codec.verify_response_authenticator(accept, RFC_SECRET, request.authenticator)
    assert not codec.verify_response_authenticator(accept, b"wrong", request.authenticator)

    # The RFC reply has no Message-Authenticator, so build it without one.
    built = codec.encode_reply(
        Code.ACCESS_ACCEPT,
        request.identifier,
        request.authenticator,
        RFC_7_1_ACCEPT[20:],
        RFC_SECRET,
        message_authenticator=False,
    )
    assert built == RFC_7_1_ACCEPT


def test_rfc2865_7_2_chap_request_decodes() -> None:
    packet = codec.decode(RFC_7_2_REQUEST)

    assert (packet.code, packet.identifier, len(packet.data)) == (1, 1, 71)
    assert packet.get(codec.USER_NAME) == b"flopsy"
    chap = packet.get(codec.CHAP_PASSWORD)
    assert chap is not None and len(chap) == 17 and chap[0] == 0x16  # CHAP Ident + response
    assert packet.get(codec.CHAP_CHALLENGE) is None  # the Request Authenticator is the challenge
    assert packet.get(codec.NAS_IP_ADDRESS) == bytes((192, 168, 1, 16))
    assert packet.get(codec.NAS_PORT) == u32(20)
    assert packet.get(codec.SERVICE_TYPE) == u32(2)  # Framed-User
    assert packet.get(codec.FRAMED_PROTOCOL) == u32(1)  # PPP


def test_rfc2865_7_2_access_accept_authenticator_verifies_and_is_reproduced() -> None:
    request = codec.decode(RFC_7_2_REQUEST)
    accept = codec.decode(RFC_7_2_ACCEPT)

    assert accept.get(codec.FRAMED_IP_ADDRESS) == b"\xff\xff\xff\xfe"  # NAS picks the address
    assert accept.get(12) == u32(1500)  # Framed-MTU
    assert codec.verify_response_authenticator(accept, RFC_SECRET, request.authenticator)
    built = codec.encode_reply(
        Code.ACCESS_ACCEPT,
        1,
        request.authenticator,
        RFC_7_2_ACCEPT[20:],
        RFC_SECRET,
        message_authenticator=False,
    )
    assert built == RFC_7_2_ACCEPT

    # With the Framed-Routing the RFC's attribute list names (None = 0), the printed
    # authenticator does not verify: the hex, not the list, is what was hashed.
    as_listed = RFC_7_2_ACCEPT[:43] + b"\x00" + RFC_7_2_ACCEPT[44:]
    assert not codec.verify_response_authenticator(
        codec.decode(as_listed), RFC_SECRET, request.authenticator
    )


# -- strict decoding ---------------------------------------------------------------------------

MA_VALUE = bytes(range(16))

MALFORMED = [
    ("empty", b"", "too_short"),
    ("19 octets", header(1, 1, 20)[:19], "too_short"),
    ("over 4096 octets", header(1, 1, 4096) + bytes(4077), "too_long"),
    ("Length below 20", header(1, 1, 19), "bad_length"),
    ("Length above 4096", header(1, 1, 4097) + bytes(4076), "bad_length"),
    ("shorter than Length", header(1, 1, 30) + b"\x01\x05abc", "length_mismatch"),
    ("attribute length 0", raw_packet(1, b"\x01\x00abc"), "attribute_too_short"),
    ("attribute length 1", raw_packet(1, b"\x01\x01abc"), "attribute_too_short"),
    ("attribute past Length", raw_packet(1, b"\x01\x06abc"), "attribute_overrun"),
    (
        "attribute past Length, padded",
        raw_packet(1, b"\x01\x06abc", length=25) + b"\x00" * 9,
        "attribute_overrun",
    ),
    ("lone trailing octet", raw_packet(1, b"\x01\x05abc\x1f"), "attribute_overrun"),
    (
        "Message-Authenticator of 17",
        raw_packet(1, b"\x50\x11" + bytes(15)),
        "bad_message_authenticator",
    ),
    (
        "Message-Authenticator of 19",
        raw_packet(1, b"\x50\x13" + bytes(17)),
        "bad_message_authenticator",
    ),
    ("Message-Authenticator of 2", raw_packet(1, b"\x50\x02"), "bad_message_authenticator"),
    (
        "two Message-Authenticators",
        raw_packet(1, b"\x50\x12" + MA_VALUE + b"\x01\x03x" + b"\x50\x12" + MA_VALUE),
        "duplicate_message_authenticator",
    ),
]


@pytest.mark.parametrize(
    ("data", "reason"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_decode_rejects_malformed_packets_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket) as caught:
        codec.decode(data)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(reason)


def test_decode_accepts_the_limits() -> None:
    # A bare header, and a packet of exactly 4096 octets, are fine.
    assert codec.decode(header(12, 1, 20)).attributes == []
    filler = b"".join(codec.attribute(codec.CLASS, bytes(253)) for _ in range(15))
    last = codec.attribute(codec.CLASS, bytes(4076 - len(filler) - 2))
    data = header(2, 1, 4096) + filler + last
    assert len(data) == 4096
    assert len(codec.decode(data).attributes) == 16
    # An empty value (Length 2) frames correctly; judging it is the caller's business.
    assert codec.decode(raw_packet(1, b"\x01\x02")).attributes == [(1, b"")]


def test_octets_beyond_length_are_padding_and_ignored() -> None:
    data, _ = access_request()
    padded = codec.decode(data + b"\xff" * 40)
    plain = codec.decode(data)

    assert padded.attributes == plain.attributes
    assert padded.data == data
    assert codec.verify_message_authenticator(padded, SECRET)


def test_unknown_codes_decode_for_the_caller_to_drop() -> None:
    packet = codec.decode(raw_packet(99, b"\x01\x03x"))
    assert packet.code == 99
    assert packet.attributes == [(1, b"x")]


def test_get_get_all_and_order() -> None:
    body = codec.encode_attributes([(25, b"a"), (18, b"hello"), (25, b"b"), (25, b"c")])
    packet = codec.decode(raw_packet(2, body))

    assert packet.get(25) == b"a"
    assert packet.get_all(25) == [b"a", b"b", b"c"]
    assert packet.get(99) is None
    assert packet.get_all(99) == []
    assert [kind for kind, _ in packet.attributes] == [25, 18, 25, 25]


# -- Message-Authenticator -----------------------------------------------------------------


def test_access_request_message_authenticator_verifies() -> None:
    data, authenticator = access_request()
    packet = codec.decode(data)

    assert packet.attributes[0][0] == codec.MESSAGE_AUTHENTICATOR  # first, as we always put it
    assert packet.message_authenticator_offset == 22
    assert packet.authenticator == authenticator
    assert codec.verify_message_authenticator(packet, SECRET)
    assert not codec.verify_message_authenticator(packet, b"other secret")
    # Passing the own authenticator explicitly is the same computation.
    assert codec.verify_message_authenticator(packet, SECRET, authenticator)


@pytest.mark.parametrize("position", [1, 5, 19, 22, 37, 45, -1])
def test_message_authenticator_fails_when_any_octet_changes(position: int) -> None:
    data, _ = access_request(codec.attribute(codec.NAS_IDENTIFIER, b"bras-1"))
    tampered = bytearray(data)
    tampered[position] ^= 0x01
    packet = codec.decode(bytes(tampered))
    assert not codec.verify_message_authenticator(packet, SECRET)


def test_message_authenticator_absent_is_false() -> None:
    assert not codec.verify_message_authenticator(codec.decode(RFC_7_1_REQUEST), RFC_SECRET)


def test_message_authenticator_matches_the_hmac_definition() -> None:
    # RFC 3579 §3.2, computed the slow obvious way with the standard library.
    data, _ = access_request(codec.attribute(codec.NAS_IDENTIFIER, b"x" * 40))
    packet = codec.decode(data)
    offset = packet.message_authenticator_offset
    zeroed = data[:offset] + bytes(16) + data[offset + 16 :]
    assert data[offset : offset + 16] == hmac.new(SECRET, zeroed, "md5").digest()


@pytest.mark.parametrize("secret_length", [1, 13, 63, 64, 65, 200])
def test_hmac_md5_for_any_secret_length(secret_length: int) -> None:
    # Our HMAC hashes the padded keys once per secret; RFC 2104 hashes keys over 64 octets.
    secret = bytes(random.Random(secret_length).randbytes(secret_length))
    data, _ = access_request(secret=secret)
    packet = codec.decode(data)
    offset = packet.message_authenticator_offset
    zeroed = data[:offset] + bytes(16) + data[offset + 16 :]
    assert data[offset : offset + 16] == hmac.digest(secret, zeroed, "md5")
    assert codec.verify_message_authenticator(packet, secret)


def test_status_server_carries_a_verifiable_message_authenticator() -> None:
    # RFC 5997 §3: Status-Server MUST carry a Message-Authenticator.
    data = codec.encode_request(Code.STATUS_SERVER, 200, b"", SECRET)
    packet = codec.decode(data)
    assert packet.code == Code.STATUS_SERVER
    assert codec.verify_message_authenticator(packet, SECRET)


def test_reply_message_authenticator_uses_the_request_authenticator() -> None:
    data, authenticator = access_request()
    request = codec.decode(data)
    reply = codec.decode(
        codec.encode_reply(Code.ACCESS_REJECT, request.identifier, authenticator, b"", SECRET)
    )

    assert codec.verify_message_authenticator(reply, SECRET, request.authenticator)
    assert not codec.verify_message_authenticator(reply, SECRET, bytes(16))
    with pytest.raises(ValueError, match="not a request"):
        codec.verify_message_authenticator(reply, SECRET)
    assert codec.verify_response_authenticator(reply, SECRET, request.authenticator)
    assert not codec.verify_response_authenticator(reply, SECRET, bytes(16))


# -- accounting and dynamic authorization requests ------------------------------------------


@pytest.mark.parametrize(
    "code", [Code.ACCOUNTING_REQUEST, Code.COA_REQUEST, Code.DISCONNECT_REQUEST]
)
@pytest.mark.parametrize("with_ma", [True, False])
def test_hashed_request_authenticator_verifies(code: Code, with_ma: bool) -> None:
    body = codec.encode_attributes(
        [(codec.ACCT_STATUS_TYPE, u32(1)), (codec.ACCT_SESSION_ID, b"0001ABCD")]
    )
    data = codec.encode_request(code, 42, body, SECRET, message_authenticator=with_ma)
    packet = codec.decode(data)

    # RFC 2866 §3: MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret).
    assert packet.authenticator == hashlib.md5(data[:4] + bytes(16) + data[20:] + SECRET).digest()
    assert codec.verify_request_authenticator(packet, SECRET)
    assert not codec.verify_request_authenticator(packet, b"wrong")
    assert packet.has_message_authenticator is with_ma
    # RFC 5176 §3.5: the Message-Authenticator is computed with the Authenticator zeroed.
    assert codec.verify_message_authenticator(packet, SECRET) is with_ma

    tampered = codec.decode(data[:-1] + bytes((data[-1] ^ 1,)))
    assert not codec.verify_request_authenticator(tampered, SECRET)
    assert not codec.verify_message_authenticator(tampered, SECRET)


def test_request_authenticator_check_refuses_nonce_requests() -> None:
    with pytest.raises(ValueError, match="no hashed"):
        codec.verify_request_authenticator(codec.decode(RFC_7_1_REQUEST), RFC_SECRET)


def test_accounting_response_without_message_authenticator() -> None:
    body = codec.attribute(codec.ACCT_STATUS_TYPE, u32(2))
    request = codec.decode(codec.encode_request(Code.ACCOUNTING_REQUEST, 9, body, SECRET))
    data = codec.encode_reply(
        Code.ACCOUNTING_RESPONSE,
        request.identifier,
        request.authenticator,
        b"",
        SECRET,
        message_authenticator=False,
    )
    reply = codec.decode(data)
    assert len(data) == 20 and reply.attributes == []
    # RFC 2866 §3: MD5(Code + ID + Length + Request Authenticator + Attributes + Secret).
    assert codec.verify_response_authenticator(reply, SECRET, request.authenticator)


def test_encode_request_refuses_wrong_use() -> None:
    with pytest.raises(ValueError, match="computes its Request Authenticator"):
        codec.encode_request(Code.ACCOUNTING_REQUEST, 1, b"", SECRET, authenticator=bytes(16))
    with pytest.raises(ValueError, match="not a request"):
        codec.encode_request(Code.ACCESS_ACCEPT, 1, b"", SECRET)
    with pytest.raises(ValueError, match="16 octets"):
        codec.encode_request(Code.ACCESS_REQUEST, 1, b"", SECRET, authenticator=b"short")
    with pytest.raises(ValueError, match="4096"):
        codec.encode_request(Code.ACCESS_REQUEST, 1, codec.attribute(25, bytes(253)) * 17, SECRET)


def test_encode_request_round_trip() -> None:
    authenticator = codec.new_authenticator()
    body = codec.encode_attributes(
        [
            (codec.USER_NAME, b"bob@isp"),
            (codec.CHAP_PASSWORD, bytes(17)),
            (codec.NAS_PORT_ID, b"eth0.100"),
            (codec.PROXY_STATE, b"one"),
            (codec.PROXY_STATE, b"two"),
        ]
    )
    data = codec.encode_request(Code.ACCESS_REQUEST, 17, body, SECRET, authenticator=authenticator)
    packet = codec.decode(data)

    assert (packet.code, packet.identifier, packet.authenticator) == (1, 17, authenticator)
    assert packet.attributes[1:] == [
        (1, b"bob@isp"),
        (3, bytes(17)),
        (87, b"eth0.100"),
        (33, b"one"),
        (33, b"two"),
    ]
    assert packet.data == data
    assert codec.verify_message_authenticator(packet, SECRET)
    unsigned = codec.encode_request(
        Code.ACCESS_REQUEST, 1, body, SECRET, message_authenticator=False
    )
    assert not codec.decode(unsigned).has_message_authenticator


def test_new_authenticators_differ() -> None:
    assert len({codec.new_authenticator() for _ in range(100)}) == 100


# -- User-Password hiding ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 32, 100, 128])
def test_user_password_round_trip(size: int) -> None:
    plain = bytes(65 + i % 26 for i in range(size))
    authenticator = codec.new_authenticator()
    hidden = hiding.hide_user_password(plain, SECRET, authenticator)

    assert len(hidden) == max(16, -(-size // 16) * 16)
    assert hiding.decrypt_user_password(hidden, SECRET, authenticator) == plain


def test_user_password_keeps_inner_nuls_and_strips_only_trailing_ones() -> None:
    authenticator = codec.new_authenticator()
    hidden = hiding.hide_user_password(b"a\x00b\x00", SECRET, authenticator)
    assert hiding.decrypt_user_password(hidden, SECRET, authenticator) == b"a\x00b"


def test_user_password_decrypts_invalid_utf8_as_octets() -> None:
    authenticator = codec.new_authenticator()
    hidden = hiding.hide_user_password(b"\xff\xfe\xc3", SECRET, authenticator)
    assert hiding.decrypt_user_password(hidden, SECRET, authenticator) == b"\xff\xfe\xc3"


@pytest.mark.parametrize("size", [0, 8, 15, 17, 144])
def test_user_password_of_invalid_length_is_none(size: int) -> None:
    assert hiding.decrypt_user_password(bytes(size), SECRET, bytes(16)) is None


def test_user_password_over_128_octets_is_refused() -> None:
    with pytest.raises(ValueError, match="128"):
        hiding.hide_user_password(bytes(129), SECRET, bytes(16))


def test_user_password_agrees_with_pyrad(catalog: AttributeCatalog) -> None:
    request = AuthPacket(secret=SECRET, dict=catalog.pyrad_dictionary)
    hidden = request.PwCrypt("correct horse battery staple")
    assert request.authenticator is not None
    assert hiding.decrypt_user_password(hidden, SECRET, request.authenticator) == (
        b"correct horse battery staple"
    )
    ours = hiding.hide_user_password(b"pa55", SECRET, request.authenticator)
    assert request.PwDecrypt(ours) == "pa55"


# -- salt encryption -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 15, 16, 31, 32, 100, 239])
def test_salt_encryption_round_trip(size: int) -> None:
    plain = bytes(random.Random(size).randbytes(size))
    authenticator = codec.new_authenticator()
    value = hiding.salt_encrypt(plain, SECRET, authenticator, b"\x80\x01")

    assert value[:2] == b"\x80\x01"
    assert (len(value) - 2) % 16 == 0 and len(value) - 2 == -(-(size + 1) // 16) * 16
    assert hiding.salt_decrypt(value, SECRET, authenticator) == plain
    assert hiding.salt_decrypt(value, SECRET, bytes(16)) != plain


def test_salt_encryption_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="high bit"):
        hiding.salt_encrypt(b"x", SECRET, bytes(16), b"\x01\x02")
    with pytest.raises(ValueError, match="high bit"):
        hiding.salt_encrypt(b"x", SECRET, bytes(16), b"\x80")
    with pytest.raises(ValueError, match="239"):
        hiding.salt_encrypt(bytes(240), SECRET, bytes(16), b"\x80\x00")


@pytest.mark.parametrize(
    "value",
    [b"", b"\x80\x00" + bytes(15), b"\x80\x00" + bytes(17), b"\x00\x00" + bytes(16)],
    ids=["empty", "short", "not whole blocks", "salt without high bit"],
)
def test_salt_decrypt_of_invalid_value_is_none(value: bytes) -> None:
    assert hiding.salt_decrypt(value, SECRET, bytes(16)) is None


def test_salt_decrypt_with_impossible_length_octet_is_none() -> None:
    # A wrong key decrypts the length octet to noise; above 15 it cannot fit in one block.
    authenticator = bytes(16)
    for salt in range(0x8000, 0x8100):
        value = hiding.salt_encrypt(b"k" * 14, SECRET, authenticator, salt.to_bytes(2, "big"))
        wrong = hiding.salt_decrypt(value, b"other", authenticator)
        if wrong is None:
            return
    pytest.fail("no salt gave an out-of-range length octet")


def test_reply_salts_are_unique_within_a_packet(monkeypatch: pytest.MonkeyPatch) -> None:
    # A random source that repeats itself must not lead to two equal salts in one packet: the
    # three salts come from one draw of 6 octets, and a draw with a repeat is thrown away.
    draws = iter([b"\x00\x05\x80\x05\x00\x09", b"\x00\x05\x00\x09\x00\x0b"])
    monkeypatch.setattr(hiding.os, "urandom", lambda size: next(draws))
    hidden = [
        HiddenAttribute(codec.MS_MPPE_SEND_KEY, b"s" * 16, 2, vendor_id=codec.VENDOR_MICROSOFT),
        HiddenAttribute(codec.MS_MPPE_RECV_KEY, b"r" * 16, 2, vendor_id=codec.VENDOR_MICROSOFT),
        HiddenAttribute(codec.TUNNEL_PASSWORD, b"t", 2, tag=0),
    ]
    reply = codec.decode(codec.encode_reply(2, 1, bytes(16), b"", SECRET, hidden=hidden))
    send = reply.vendor(codec.VENDOR_MICROSOFT, codec.MS_MPPE_SEND_KEY)
    recv = reply.vendor(codec.VENDOR_MICROSOFT, codec.MS_MPPE_RECV_KEY)
    tunnel = reply.get(codec.TUNNEL_PASSWORD)
    assert send is not None and recv is not None and tunnel is not None
    assert [send[:2], recv[:2], tunnel[1:3]] == [b"\x80\x05", b"\x80\x09", b"\x80\x0b"]


# -- attribute builders, tags, vendors ----------------------------------------------------


def test_attribute_and_vendor_attribute_framing() -> None:
    assert codec.attribute(18, b"hi") == b"\x12\x04hi"
    assert codec.vendor_attribute(14988, 8, b"10M/10M") == (
        b"\x1a\x0f" + u32(14988) + b"\x08\x09" + b"10M/10M"
    )
    assert len(codec.attribute(25, bytes(253))) == 255
    assert len(codec.vendor_attribute(9, 1, bytes(247))) == 255


@pytest.mark.parametrize(
    "call",
    [
        lambda: codec.attribute(25, bytes(254)),
        lambda: codec.attribute(0, b"x"),
        lambda: codec.attribute(256, b"x"),
        lambda: codec.vendor_attribute(9, 1, bytes(248)),
        lambda: codec.vendor_attribute(1 << 24, 1, b"x"),
        lambda: codec.vendor_attribute(9, 0, b"x"),
    ],
)
def test_builders_refuse_what_does_not_fit(call: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError):
        call()


def test_encode_attribute_standard_and_vendor(catalog: AttributeCatalog) -> None:
    framed = catalog.get("Framed-IP-Address")
    rate = catalog.get("Mikrotik-Rate-Limit")
    assert framed is not None and rate is not None

    assert codec.encode_attribute(framed, encode_value(framed, "10.0.0.1")) == (
        b"\x08\x06\x0a\x00\x00\x01"
    )
    assert codec.encode_attribute(rate, b"50M/100M") == codec.vendor_attribute(
        14988, 8, b"50M/100M"
    )
    with pytest.raises(ValueError, match="no tag"):
        codec.encode_attribute(framed, b"\x0a\x00\x00\x01", tag=1)


@pytest.mark.parametrize(
    ("name", "text", "tag", "expected"),
    [
        # RFC 2868 §3.1: an integer's first octet is the tag, zero when unused.
        ("Tunnel-Type", "VLAN", 1, b"\x01\x00\x00\x0d"),
        ("Tunnel-Type", "L2TP", None, b"\x00\x00\x00\x03"),
        ("Tunnel-Medium-Type", "IEEE-802", 0x1F, b"\x1f\x00\x00\x06"),
        # RFC 2868 §3.x strings: the tag octet precedes the value when given.
        ("Tunnel-Private-Group-Id", "100", 5, b"\x05100"),
        ("Tunnel-Private-Group-Id", "100", None, b"100"),
        ("Tunnel-Private-Group-Id", "100", 0, b"100"),
        # An untagged string whose first octet looks like a tag gets a zero tag octet.
        ("Tunnel-Private-Group-Id", "0x0501", None, b"\x00\x05\x01"),
    ],
)
def test_encode_attribute_tags(
    catalog: AttributeCatalog, name: str, text: str, tag: int | None, expected: bytes
) -> None:
    spec = catalog.get(name)
    assert spec is not None and spec.has_tag
    if spec.type != "integer":
        spec = type(spec)(name=spec.name, code=spec.code, type="octets", has_tag=True)
    encoded = codec.encode_attribute(spec, encode_value(spec, text), tag)
    assert encoded == codec.attribute(spec.code, expected)


def test_encode_attribute_refuses_bad_tags_and_encrypted_specs(catalog: AttributeCatalog) -> None:
    tunnel_type = catalog.get("Tunnel-Type")
    group = catalog.get("Tunnel-Private-Group-Id")
    password = catalog.get("Tunnel-Password")
    assert tunnel_type is not None and group is not None and password is not None

    with pytest.raises(ValueError, match=r"outside 0\.\.31"):
        codec.encode_attribute(group, b"100", tag=0x20)
    with pytest.raises(ValueError, match="3 octets"):
        codec.encode_attribute(tunnel_type, b"\x01\x00\x00\x03")
    with pytest.raises(ValueError, match="3 octets"):
        codec.encode_attribute(tunnel_type, b"\x03")
    with pytest.raises(ValueError, match="HiddenAttribute"):
        codec.encode_attribute(password, b"secret")
    with pytest.raises(ValueError):
        codec.encode_attribute(group, bytes(253), tag=1)  # 254 with the tag


def test_vendor_lookup() -> None:
    two_in_one = (
        b"\x1a\x10"
        + u32(codec.VENDOR_MICROSOFT)
        + b"\x0b\x06abcd"  # MS-CHAP-Challenge (shortened)
        + b"\x1a\x04xy"  # MS-CHAP2-Success
    )
    body = (
        codec.vendor_attribute(14988, 8, b"1M/1M")
        + two_in_one
        + codec.vendor_attribute(codec.VENDOR_MICROSOFT, 26, b"second")
    )
    packet = codec.decode(raw_packet(2, body))

    assert packet.vendor(14988, 8) == b"1M/1M"
    assert packet.vendor(codec.VENDOR_MICROSOFT, codec.MS_CHAP_CHALLENGE) == b"abcd"
    assert packet.vendor(codec.VENDOR_MICROSOFT, codec.MS_CHAP2_SUCCESS) == b"xy"  # the first
    assert packet.vendor(14988, 9) is None
    assert packet.vendor(9, 1) is None
    assert codec.split_vendor_specific(two_in_one[2:]) == (311, [(11, b"abcd"), (26, b"xy")])


@pytest.mark.parametrize(
    "value",
    [
        u32(429) + b"\x00\x00\x00\x01" + b"data",  # USR style: 4-octet type, no length
        u32(9) + b"\x01\x09abc",  # sub-attribute runs past the VSA
        u32(9) + b"\x01\x01abc",  # sub-attribute length below 2
        u32(9) + b"\x01\x03a\x02",  # a lone trailing octet
        u32(9) + b"\x01",  # too short to hold a sub-attribute
        b"\x00\x00",  # not even a Vendor-Id
    ],
)
def test_vendor_specific_not_in_the_recommended_format_is_kept_raw(value: bytes) -> None:
    packet = codec.decode(raw_packet(2, codec.attribute(codec.VENDOR_SPECIFIC, value)))

    assert packet.get(codec.VENDOR_SPECIFIC) == value
    assert packet.vendor(int.from_bytes(value[:4].ljust(4, b"\0"), "big"), 1) is None
    assert codec.split_vendor_specific(value) is None


# -- hidden attributes ---------------------------------------------------------------------


def test_encode_hidden_forms() -> None:
    authenticator = codec.new_authenticator()
    salt = b"\x81\x23"

    tunnel = codec.encode_hidden(
        HiddenAttribute(codec.TUNNEL_PASSWORD, b"pw", 2, tag=3), SECRET, authenticator, salt=salt
    )
    assert tunnel[:5] == bytes((69, len(tunnel), 3)) + salt
    assert hiding.salt_decrypt(tunnel[3:], SECRET, authenticator) == b"pw"

    key = codec.encode_hidden(
        HiddenAttribute(codec.MS_MPPE_RECV_KEY, b"k" * 32, 2, vendor_id=311),
        SECRET,
        authenticator,
    )
    vsa = codec.split_vendor_specific(key[2:])
    assert vsa is not None and vsa[0] == 311 and vsa[1][0][0] == 17
    assert vsa[1][0][1][0] & 0x80
    assert hiding.salt_decrypt(vsa[1][0][1], SECRET, authenticator) == b"k" * 32

    mppe = codec.encode_hidden(
        HiddenAttribute(12, b"m" * 32, 1, vendor_id=311), SECRET, authenticator
    )
    vsa = codec.split_vendor_specific(mppe[2:])
    assert vsa is not None
    assert hiding.decrypt_user_password(vsa[1][0][1], SECRET, authenticator) == b"m" * 32


@pytest.mark.parametrize(
    "hidden",
    [
        HiddenAttribute(2, b"x", 1, tag=1),
        HiddenAttribute(69, b"x", 2, tag=32),
        HiddenAttribute(69, b"x", 3),
        HiddenAttribute(69, bytes(240), 2, tag=0),
        HiddenAttribute(12, bytes(129), 1, vendor_id=311),
    ],
)
def test_encode_hidden_refuses(hidden: HiddenAttribute) -> None:
    with pytest.raises(ValueError):
        codec.encode_hidden(hidden, SECRET, bytes(16))


@pytest.mark.parametrize(("encrypt", "tag"), [(1, None), (2, None), (2, 0), (2, 5)])
@pytest.mark.parametrize("vendor_id", [None, 311])
def test_hidden_size_is_what_encode_hidden_makes(
    encrypt: int, tag: int | None, vendor_id: int | None
) -> None:
    for size in range(0, 129 if encrypt == 1 else 240):
        hidden = HiddenAttribute(69, b"s" * size, encrypt, vendor_id, tag)
        encoded = codec.encode_hidden(hidden, SECRET, bytes(16))
        assert codec.hidden_size(hidden) == len(encoded), size


def test_attribute_size_counts_headers_tags_and_padding(catalog: AttributeCatalog) -> None:
    for name, text in [
        ("Session-Timeout", "3600"),
        ("Mikrotik-Rate-Limit", "10M/50M"),
        ("Tunnel-Private-Group-Id", "vlan-100"),
        ("Tunnel-Type", "VLAN"),
        ("Tunnel-Password", "tunnel-secret"),
    ]:
        spec = catalog.get(name)
        assert spec is not None, name
        value = encode_value(spec, text)
        if spec.encrypt:
            tag = 0 if spec.has_tag else None
            hidden = HiddenAttribute(spec.code, value, spec.encrypt, spec.vendor_id, tag)
            expected = len(codec.encode_hidden(hidden, SECRET, bytes(16)))
        else:
            expected = len(codec.encode_attribute(spec, value))
        assert codec.attribute_size(spec, value) == expected, name
    assert len(codec.encode_reply(2, 1, bytes(16), b"", SECRET)) == codec.REPLY_OVERHEAD


# -- replies -------------------------------------------------------------------------------


def test_reply_layout_message_authenticator_first_proxy_state_last() -> None:
    data, authenticator = access_request(
        codec.attribute(codec.PROXY_STATE, b"p1") + codec.attribute(codec.PROXY_STATE, b"p2")
    )
    request = codec.decode(data)
    reply_bytes = codec.encode_reply(
        Code.ACCESS_ACCEPT,
        request.identifier,
        request.authenticator,
        codec.attribute(codec.SESSION_TIMEOUT, u32(3600)),
        SECRET,
        proxy_states=request.get_all(codec.PROXY_STATE),
        hidden=[HiddenAttribute(codec.TUNNEL_PASSWORD, b"tp", 2, tag=1)],
    )
    reply = codec.decode(reply_bytes)

    assert [kind for kind, _ in reply.attributes] == [80, 27, 69, 33, 33]
    assert reply.get_all(codec.PROXY_STATE) == [b"p1", b"p2"]
    assert reply.identifier == request.identifier
    assert codec.verify_message_authenticator(reply, SECRET, authenticator)
    assert codec.verify_response_authenticator(reply, SECRET, authenticator)
    tunnel = reply.get(codec.TUNNEL_PASSWORD)
    assert tunnel is not None and tunnel[0] == 1
    assert hiding.salt_decrypt(tunnel[1:], SECRET, authenticator) == b"tp"


def test_reply_over_4096_octets_is_refused() -> None:
    # 15 full attributes and one of 233 octets: with the header and the Message-Authenticator
    # exactly 4096 octets.
    full = codec.attribute(codec.CLASS, bytes(253)) * 15 + codec.attribute(codec.CLASS, bytes(231))
    assert len(codec.encode_reply(2, 1, bytes(16), full, SECRET)) == 4096
    with pytest.raises(codec.PacketTooLarge, match="4096") as raised:
        codec.encode_reply(2, 1, bytes(16), full, SECRET, proxy_states=[b"x"])
    assert raised.value.size == 4099
    assert len(codec.encode_reply(2, 1, bytes(16), full, SECRET, message_authenticator=False)) == (
        4078
    )


def test_coa_ack_verifies_against_the_coa_request() -> None:
    request = codec.decode(
        codec.encode_request(Code.COA_REQUEST, 5, codec.attribute(1, b"bob"), SECRET)
    )
    ack = codec.decode(
        codec.encode_reply(Code.COA_ACK, request.identifier, request.authenticator, b"", SECRET)
    )
    assert codec.verify_response_authenticator(ack, SECRET, request.authenticator)
    assert codec.verify_message_authenticator(ack, SECRET, request.authenticator)


# -- another implementation reads us the same way ------------------------------------------


def test_pyrad_reads_our_reply_identically(catalog: AttributeCatalog) -> None:
    dictionary = catalog.pyrad_dictionary
    request = AuthPacket(code=1, id=77, secret=SECRET, dict=dictionary)
    request["User-Name"] = "bob"
    request["User-Password"] = request.PwCrypt("hello")
    request["Proxy-State"] = [b"state-1", b"state-2"]
    request.add_message_authenticator()
    request_bytes = request.RequestPacket()

    ours = codec.decode(request_bytes)
    assert codec.verify_message_authenticator(ours, SECRET)
    password = ours.get(codec.USER_PASSWORD)
    assert password is not None
    assert hiding.decrypt_user_password(password, SECRET, ours.authenticator) == b"hello"

    def encode(name: str, text: str, tag: int | None = None) -> bytes:
        spec = catalog.get(name)
        assert spec is not None
        return codec.encode_attribute(spec, encode_value(spec, text), tag)

    attributes = b"".join(
        [
            encode("Framed-IP-Address", "100.64.0.7"),
            encode("Session-Timeout", "86400"),
            encode("Reply-Message", "welcome, bob"),
            encode("Mikrotik-Rate-Limit", "50M/100M"),
            encode("Tunnel-Type", "VLAN", 1),
            encode("Tunnel-Medium-Type", "IEEE-802", 1),
            encode("Tunnel-Private-Group-Id", "100", 1),
        ]
    )
    hidden = [
        HiddenAttribute(codec.TUNNEL_PASSWORD, b"tunnel secret", 2, tag=1),
        HiddenAttribute(codec.MS_MPPE_SEND_KEY, bytes(range(32)), 2, vendor_id=311),
        HiddenAttribute(codec.MS_MPPE_RECV_KEY, bytes(range(32, 64)), 2, vendor_id=311),
    ]
    reply_bytes = codec.encode_reply(
        Code.ACCESS_ACCEPT,
        ours.identifier,
        ours.authenticator,
        attributes,
        SECRET,
        proxy_states=ours.get_all(codec.PROXY_STATE),
        hidden=hidden,
    )

    reply = Packet(packet=reply_bytes, secret=SECRET, dict=dictionary)
    reply.request_authenticator = request.authenticator  # for salt decryption
    # Response Authenticator, Message-Authenticator (required) and Proxy-State echo.
    assert request.VerifyReply(reply, reply_bytes, enforce_ma=True)
    assert reply.code == 2 and reply.id == 77
    assert next(iter(reply.keys())) == "Message-Authenticator"
    assert reply["Framed-IP-Address"] == ["100.64.0.7"]
    assert reply["Session-Timeout"] == [86400]
    assert reply["Reply-Message"] == ["welcome, bob"]
    assert reply["Mikrotik-Rate-Limit"] == ["50M/100M"]
    assert reply["Tunnel-Type"] == ["VLAN"]
    assert reply["Tunnel-Medium-Type"] == ["IEEE-802"]
    assert reply["Tunnel-Private-Group-Id"] == ["100"]
    assert reply["Tunnel-Password"] == ["tunnel secret"]
    assert reply["MS-MPPE-Send-Key"] == [bytes(range(32))]
    assert reply["MS-MPPE-Recv-Key"] == [bytes(range(32, 64))]
    assert reply["Proxy-State"] == [b"state-1", b"state-2"]
    # pyrad keeps the raw (tagged) octets underneath: our tags are where RFC 2868 puts them.
    assert collections.OrderedDict.__getitem__(reply, 64) == [b"\x01\x00\x00\x0d"]
    assert collections.OrderedDict.__getitem__(reply, 81) == [b"\x01100"]

    # A forged Message-Authenticator is caught by pyrad too.
    offset = codec.decode(reply_bytes).message_authenticator_offset
    forged = reply_bytes[:offset] + bytes(16) + reply_bytes[offset + 16 :]
    forged_reply = Packet(packet=forged, secret=SECRET, dict=dictionary)
    assert not request.VerifyReply(forged_reply, forged, enforce_ma=True)


def test_pyrad_reads_our_accounting_request(catalog: AttributeCatalog) -> None:
    from pyrad.packet import AcctPacket

    body = codec.encode_attributes(
        [(codec.ACCT_STATUS_TYPE, u32(3)), (codec.ACCT_SESSION_ID, b"s-1"), (1, b"bob")]
    )
    data = codec.encode_request(Code.ACCOUNTING_REQUEST, 3, body, SECRET)
    theirs = AcctPacket(packet=data, secret=SECRET, dict=catalog.pyrad_dictionary)
    assert theirs.VerifyAcctRequest()
    assert theirs.verify_message_authenticator()
    assert theirs["Acct-Status-Type"] == ["Interim-Update"]


# -- constants -------------------------------------------------------------------------------


def test_attribute_constants_match_the_dictionaries(catalog: AttributeCatalog) -> None:
    standard = {
        "User-Name": codec.USER_NAME,
        "User-Password": codec.USER_PASSWORD,
        "CHAP-Password": codec.CHAP_PASSWORD,
        "NAS-IP-Address": codec.NAS_IP_ADDRESS,
        "NAS-Port": codec.NAS_PORT,
        "Service-Type": codec.SERVICE_TYPE,
        "Framed-Protocol": codec.FRAMED_PROTOCOL,
        "Framed-IP-Address": codec.FRAMED_IP_ADDRESS,
        "Filter-Id": codec.FILTER_ID,
        "Reply-Message": codec.REPLY_MESSAGE,
        "State": codec.STATE,
        "Class": codec.CLASS,
        "Vendor-Specific": codec.VENDOR_SPECIFIC,
        "Session-Timeout": codec.SESSION_TIMEOUT,
        "Called-Station-Id": codec.CALLED_STATION_ID,
        "Calling-Station-Id": codec.CALLING_STATION_ID,
        "NAS-Identifier": codec.NAS_IDENTIFIER,
        "Proxy-State": codec.PROXY_STATE,
        "Acct-Status-Type": codec.ACCT_STATUS_TYPE,
        "Acct-Delay-Time": codec.ACCT_DELAY_TIME,
        "Acct-Input-Octets": codec.ACCT_INPUT_OCTETS,
        "Acct-Output-Octets": codec.ACCT_OUTPUT_OCTETS,
        "Acct-Session-Id": codec.ACCT_SESSION_ID,
        "Acct-Authentic": codec.ACCT_AUTHENTIC,
        "Acct-Session-Time": codec.ACCT_SESSION_TIME,
        "Acct-Input-Packets": codec.ACCT_INPUT_PACKETS,
        "Acct-Output-Packets": codec.ACCT_OUTPUT_PACKETS,
        "Acct-Terminate-Cause": codec.ACCT_TERMINATE_CAUSE,
        "Acct-Multi-Session-Id": codec.ACCT_MULTI_SESSION_ID,
        "Acct-Input-Gigawords": codec.ACCT_INPUT_GIGAWORDS,
        "Acct-Output-Gigawords": codec.ACCT_OUTPUT_GIGAWORDS,
        "Event-Timestamp": codec.EVENT_TIMESTAMP,
        "CHAP-Challenge": codec.CHAP_CHALLENGE,
        "NAS-Port-Type": codec.NAS_PORT_TYPE,
        "Tunnel-Password": codec.TUNNEL_PASSWORD,
        "EAP-Message": codec.EAP_MESSAGE,
        "Message-Authenticator": codec.MESSAGE_AUTHENTICATOR,
        "Acct-Interim-Interval": codec.ACCT_INTERIM_INTERVAL,
        "NAS-Port-Id": codec.NAS_PORT_ID,
        "Framed-Pool": codec.FRAMED_POOL,
        "NAS-IPv6-Address": codec.NAS_IPV6_ADDRESS,
        "Framed-IPv6-Prefix": codec.FRAMED_IPV6_PREFIX,
        "Error-Cause": codec.ERROR_CAUSE,
        "Delegated-IPv6-Prefix": codec.DELEGATED_IPV6_PREFIX,
        "Framed-IPv6-Address": codec.FRAMED_IPV6_ADDRESS,
    }
    microsoft = {
        "MS-CHAP-Error": codec.MS_CHAP_ERROR,
        "MS-MPPE-Encryption-Policy": codec.MS_MPPE_ENCRYPTION_POLICY,
        "MS-MPPE-Encryption-Types": codec.MS_MPPE_ENCRYPTION_TYPES,
        "MS-CHAP-Challenge": codec.MS_CHAP_CHALLENGE,
        "MS-MPPE-Send-Key": codec.MS_MPPE_SEND_KEY,
        "MS-MPPE-Recv-Key": codec.MS_MPPE_RECV_KEY,
        "MS-CHAP2-Response": codec.MS_CHAP2_RESPONSE,
        "MS-CHAP2-Success": codec.MS_CHAP2_SUCCESS,
    }
    for name, number in standard.items():
        spec = catalog.get(name)
        assert spec is not None, name
        assert (spec.code, spec.vendor_id) == (number, None), name
    for name, number in microsoft.items():
        spec = catalog.get(name)
        assert spec is not None, name
        assert (spec.code, spec.vendor_id) == (number, codec.VENDOR_MICROSOFT), name


def test_codes() -> None:
    assert [int(code) for code in Code] == [1, 2, 3, 4, 5, 11, 12, 13, 40, 41, 42, 43, 44, 45]
    assert Code(43) is Code.COA_REQUEST


# -- garbage in, MalformedPacket out -----------------------------------------------------------


def _seeds() -> list[bytes]:
    data, authenticator = access_request(
        codec.vendor_attribute(311, 11, bytes(16)) + codec.attribute(33, b"ps")
    )
    reply = codec.encode_reply(
        2,
        1,
        authenticator,
        codec.vendor_attribute(14988, 8, b"1M/1M"),
        SECRET,
        hidden=[HiddenAttribute(69, b"x", 2, tag=1)],
    )
    acct = codec.encode_request(4, 2, codec.attribute(44, b"abc"), SECRET)
    return [RFC_7_1_REQUEST, RFC_7_2_REQUEST, RFC_7_2_ACCEPT, data, reply, acct]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        if choice == 0 and buf:  # flip one octet
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice == 1 and len(buf) > 21:  # set an attribute length octet
            buf[rng.randrange(21, len(buf))] = rng.choice([0, 1, 2, 3, 18, 19, 255])
        elif choice == 2:  # truncate
            del buf[rng.randrange(len(buf) + 1) :]
        elif choice == 3:  # grow
            buf += rng.randbytes(rng.randrange(1, 40))
        elif choice == 4 and len(buf) >= 4:  # rewrite the Length field
            buf[2:4] = rng.choice([0, 19, 20, len(buf), len(buf) + 1, 4096, 4097, 65535]).to_bytes(
                2, "big"
            )
        elif choice == 5:  # splice in a Message-Authenticator
            at = rng.randrange(20, max(21, len(buf) + 1))
            buf[at:at] = b"\x50" + bytes((rng.choice([16, 17, 18, 19]),)) + bytes(16)
        else:  # random garbage of random size
            buf = bytearray(rng.randbytes(rng.choice([0, 5, 19, 20, 21, 64, 300, 4097])))
    return bytes(buf)


def test_decode_raises_only_malformed_packet_on_garbage() -> None:
    rng = random.Random(2865)
    seeds = _seeds()
    decoded = rejected = 0
    reasons: set[str] = set()
    for _ in range(5000):
        data = _mutate(rng, rng.choice(seeds))
        try:
            packet = codec.decode(data)
        except MalformedPacket as exc:
            rejected += 1
            reasons.add(exc.reason)
            continue
        decoded += 1
        # Whatever decodes is safe to query.
        assert 20 <= len(packet.data) <= 4096
        for kind, value in packet.attributes:
            if kind == codec.VENDOR_SPECIFIC:
                codec.split_vendor_specific(value)
        packet.vendor(311, 11)
        packet.get(codec.USER_PASSWORD)
        codec.verify_message_authenticator(packet, SECRET, bytes(16))
        codec.verify_response_authenticator(packet, SECRET, bytes(16))
        password = packet.get(codec.USER_PASSWORD)
        if password is not None:
            hiding.decrypt_user_password(password, SECRET, packet.authenticator)
            hiding.salt_decrypt(password, SECRET, packet.authenticator)
    # The loop exercised both outcomes and every framing rule.
    assert decoded > 500 and rejected > 500
    assert reasons >= {
        "too_short",
        "too_long",
        "bad_length",
        "length_mismatch",
        "attribute_too_short",
        "attribute_overrun",
        "bad_message_authenticator",
        "duplicate_message_authenticator",
    }


def test_encode_reply_refuses_a_wrong_authenticator_length() -> None:
    with pytest.raises(ValueError, match="16 octets"):
        codec.encode_reply(2, 1, bytes(15), b"", SECRET)


def test_md5_falls_back_to_hashlib(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> object:
        raise ImportError(name)

    monkeypatch.setattr(digest.importlib, "import_module", missing)
    constructor = digest._md5_constructor()
    assert constructor is hashlib.md5
    assert constructor(b"abc").digest() == digest.md5(b"abc")
