"""The optional C wire code gives exactly what the pure Python codec gives.

Random and crafted packets, mutated a byte at a time: whenever ``_wire.parse_access`` or
``_wire.parse_accounting`` answers, its fields are what ``codec.decode`` and the listener's
Python path make of the packet; when it
declines (None), the Python path is the one that runs, so declining is always safe. Skipped
when the extension was not built (the pure Python path is then the only one).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random

import pytest

from radius_contracts import testauth
from radius_contracts.radius import codec, fields, hiding, wire_speedups
from radius_contracts.radius.messages import HiddenAttribute

_wire = wire_speedups.module()
pytestmark = pytest.mark.skipif(_wire is None, reason="the C wire code is not built")

SECRET = b"wire-test-secret-1"


def test_md5_and_hmac_md5_match_hashlib() -> None:
    assert _wire is not None
    rng = random.Random(1)
    for size in [*range(130), 1000, 4096]:
        data = rng.randbytes(size)
        assert _wire.md5(data) == hashlib.md5(data).digest(), size
    for key_size in (0, 1, 16, 63, 64, 65, 200):
        key = rng.randbytes(key_size)
        parts = [rng.randbytes(rng.randrange(0, 300)) for _ in range(rng.randrange(0, 4))]
        expected = hmac.new(key, b"".join(parts), "md5").digest()
        assert _wire.hmac_md5(key, *parts) == expected


def test_decrypt_password_matches_the_codec() -> None:
    assert _wire is not None
    rng = random.Random(2)
    authenticator = rng.randbytes(16)
    for plain in (b"", b"a", b"x" * 15, b"x" * 16, b"y" * 17, b"z" * 128, b"pw\x00\x00"):
        hidden = hiding.hide_user_password(plain, SECRET, authenticator)
        expected = hiding.decrypt_user_password(hidden, SECRET, authenticator)
        assert _wire.decrypt_password(hidden, SECRET, authenticator) == expected
    for size in (0, 15, 17, 144):  # not a User-Password length
        assert _wire.decrypt_password(bytes(size), SECRET, authenticator) is None


def _reference(data: bytes, secret: bytes) -> tuple[object, ...] | None:
    """What the listener's Python path makes of ``data`` (None: it would not get there)."""
    try:
        packet = codec.decode(data)
    except codec.MalformedPacket:
        return None
    if packet.code != codec.Code.ACCESS_REQUEST:
        return None
    ma = 0
    if packet.has_message_authenticator:
        ma = 1 if codec.verify_message_authenticator(packet, secret) else -1
    first: dict[int, bytes] = {}
    for kind, value in packet.attributes:
        first.setdefault(kind, value)
    password = first.get(codec.USER_PASSWORD)
    if password is not None and ma >= 0:
        password = hiding.decrypt_user_password(password, secret, packet.authenticator)
        if password is None:
            return None
    elif ma < 0:
        password = None
    chap, challenge = first.get(codec.CHAP_PASSWORD), first.get(codec.CHAP_CHALLENGE)
    if chap is not None and challenge is None:
        challenge = packet.authenticator

    def text(kind: int) -> str | None:
        value = first.get(kind)
        return None if value is None else value.decode("utf-8", "replace")

    port = first.get(codec.NAS_PORT)
    return (
        packet.identifier,
        packet.authenticator,
        ma,
        text(codec.USER_NAME),
        password,
        chap,
        challenge,
        text(codec.CALLING_STATION_ID),
        text(codec.CALLED_STATION_ID),
        int.from_bytes(port, "big") if port is not None and len(port) == 4 else None,
        text(codec.NAS_PORT_ID),
        codec.EAP_MESSAGE in first,
        tuple(packet.get_all(codec.PROXY_STATE)),
        sum(len(state) + 2 for state in packet.get_all(codec.PROXY_STATE)),
        packet.vendor(codec.VENDOR_MICROSOFT, codec.MS_CHAP_CHALLENGE),
        packet.vendor(codec.VENDOR_MICROSOFT, codec.MS_CHAP2_RESPONSE),
    )


def _packets(rng: random.Random) -> list[bytes]:
    station = codec.attribute(codec.CALLING_STATION_ID, b"02-00-00-AA-BB-CC")
    port = codec.attribute(codec.NAS_PORT, (70000).to_bytes(4, "big"))
    port_id = codec.attribute(codec.NAS_PORT_ID, "ünï-port".encode())
    proxy = codec.attribute(codec.PROXY_STATE, b"state-1") + codec.attribute(33, b"state-2")
    made = [
        testauth.access_request(1, SECRET, "ana@fiber", "secret-pw", station).data,
        testauth.access_request(2, SECRET, "bob", "x" * 40, port, port_id).data,
        testauth.access_request(3, SECRET, "chap-user", "pw", method="chap").data,
        testauth.access_request(4, SECRET, "no-ma", "pw", message_authenticator=False).data,
        testauth.access_request(5, SECRET, "proxied", "pw", proxy, station).data,
        testauth.access_request(6, SECRET, "eap", None, codec.attribute(79, b"\x02")).data,
        testauth.access_request(7, SECRET, "mschap", "pw", method="mschapv2").data,
        testauth.access_request(8, b"another-secret", "wrong-secret", "pw").data,
        # A User-Name that is not UTF-8: replacement characters on both paths.
        codec.encode_request(
            codec.Code.ACCESS_REQUEST, 9, codec.attribute(codec.USER_NAME, b"\xff\xfe-x"), SECRET
        ),
        codec.encode_request(codec.Code.ACCOUNTING_REQUEST, 10, station, SECRET),
    ]
    made.append(made[0] + b"padding beyond the Length field")
    return made


def test_parse_access_agrees_with_the_python_path_on_good_and_mutated_packets() -> None:
    assert _wire is not None
    rng = random.Random(3)
    handled = 0
    for data in _packets(rng):
        candidates = [data]
        for _ in range(300):  # one byte changed, or the packet cut short
            mutated = bytearray(data)
            if rng.random() < 0.2:
                mutated = mutated[: rng.randrange(0, len(mutated))]
            elif mutated:
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            candidates.append(bytes(mutated))
        for candidate in candidates:
            fast = _wire.parse_access(candidate, SECRET)
            if fast is None:
                continue  # the Python path decides
            handled += 1
            assert fast == _reference(candidate, SECRET), candidate.hex()
    assert handled > 500


def test_parse_access_takes_the_common_requests_and_leaves_the_rest() -> None:
    assert _wire is not None
    packets = _packets(random.Random(4))
    taken = [_wire.parse_access(data, SECRET) is not None for data in packets]
    # PAP, CHAP, without Message-Authenticator, proxied, EAP, MS-CHAPv2, a wrong secret (-1),
    # bad UTF-8, padding: handled. An Accounting-Request: not.
    assert taken == [True, True, True, True, True, True, True, True, True, False, True]
    mschapv2 = _wire.parse_access(packets[6], SECRET)
    assert mschapv2 is not None
    assert mschapv2[14] is not None and len(mschapv2[14]) == 16  # MS-CHAP-Challenge
    assert mschapv2[15] is not None and len(mschapv2[15]) == 50  # MS-CHAP2-Response
    wrong = _wire.parse_access(packets[7], SECRET)
    assert wrong is not None and wrong[2] == -1 and wrong[4] is None


def test_reply_matches_encode_reply() -> None:
    assert _wire is not None
    rng = random.Random(5)
    for _ in range(200):
        authenticator = rng.randbytes(16)
        attributes = b"".join(
            codec.attribute(rng.randrange(1, 200), rng.randbytes(rng.randrange(1, 40)))
            for _ in range(rng.randrange(0, 8))
        )
        states = tuple(rng.randbytes(rng.randrange(1, 60)) for _ in range(rng.randrange(0, 3)))
        code, identifier = rng.choice((2, 3)), rng.randrange(256)
        expected = codec.encode_reply(
            code, identifier, authenticator, attributes, SECRET, proxy_states=states
        )
        assert _wire.reply(code, identifier, authenticator, attributes, SECRET, states) == expected


def test_reply_refuses_what_encode_reply_refuses() -> None:
    assert _wire is not None
    with pytest.raises(ValueError, match="4096"):
        _wire.reply(2, 1, bytes(16), bytes(4060), SECRET, ())
    with pytest.raises(ValueError, match="16 octets"):
        _wire.reply(2, 1, bytes(15), b"", SECRET, ())
    with pytest.raises(ValueError, match="Proxy-State"):
        _wire.reply(2, 1, bytes(16), b"", SECRET, (b"",))
    assert os.environ.get("RADIUS_CONTRACTS_PURE_PYTHON") != "1"


def _accounting_packets() -> list[bytes]:
    """Accounting-Requests as NAS send them: every field the handler reads, some twice."""

    def integer(kind: int, value: int) -> bytes:
        return codec.attribute(kind, value.to_bytes(4, "big"))

    def text(kind: int, value: str) -> bytes:
        return codec.attribute(kind, value.encode())

    session = text(codec.ACCT_SESSION_ID, "8100000A") + text(codec.USER_NAME, "ana@fiber")
    nas = codec.attribute(codec.NAS_IP_ADDRESS, bytes((10, 0, 0, 1))) + text(
        codec.NAS_IDENTIFIER, "bras-1"
    )
    counters = (
        integer(codec.ACCT_INPUT_OCTETS, 123_456) + integer(codec.ACCT_INPUT_GIGAWORDS, 5)
        + integer(codec.ACCT_OUTPUT_OCTETS, 4_000_000_000) + integer(codec.ACCT_INPUT_PACKETS, 77)
        + integer(codec.ACCT_OUTPUT_PACKETS, 88) + integer(codec.ACCT_SESSION_TIME, 600)
    )  # fmt: skip
    framed_prefix = bytes((0, 64)) + bytes.fromhex("20010db8000100ff")
    delegated_prefix = bytes((0, 56)) + bytes.fromhex("20010db8aa00")
    v6 = (
        codec.attribute(codec.FRAMED_IPV6_PREFIX, framed_prefix)
        + codec.attribute(codec.DELEGATED_IPV6_PREFIX, delegated_prefix)
        + codec.attribute(codec.FRAMED_IPV6_ADDRESS, bytes.fromhex("20010db8" + "00" * 11 + "01"))
        + codec.attribute(codec.NAS_IPV6_ADDRESS, bytes.fromhex("fd00" + "00" * 13 + "02"))
    )  # fmt: skip
    line = (
        text(codec.CALLING_STATION_ID, "02:00:00:aa:bb:cc") + text(codec.CALLED_STATION_ID, "pppoe")
        + integer(codec.NAS_PORT, 15) + text(codec.NAS_PORT_ID, "ünï-port")
        + codec.attribute(codec.FRAMED_IP_ADDRESS, bytes((100, 64, 0, 9)))
        + integer(codec.EVENT_TIMESTAMP, 1_700_000_000) + integer(codec.ACCT_DELAY_TIME, 3)
    )  # fmt: skip
    proxy = codec.attribute(codec.PROXY_STATE, b"state-1") + codec.attribute(33, b"state-2")
    vendor = codec.attribute(codec.VENDOR_SPECIFIC, bytes.fromhex("00003a8c") + b"\x08\x06abcd")

    def request(identifier: int, attributes: bytes, signed: bool = False) -> bytes:
        return codec.encode_request(
            codec.Code.ACCOUNTING_REQUEST, identifier, attributes, SECRET,
            message_authenticator=signed,
        )  # fmt: skip

    return [
        request(1, integer(codec.ACCT_STATUS_TYPE, 1) + session + nas + line),  # Start
        request(2, integer(codec.ACCT_STATUS_TYPE, 3) + session + nas + counters + vendor),
        request(
            3,
            integer(codec.ACCT_STATUS_TYPE, 2)
            + session
            + counters
            + integer(codec.ACCT_TERMINATE_CAUSE, 1)
            + proxy,
            signed=True,
        ),
        request(4, integer(codec.ACCT_STATUS_TYPE, 3) + session + v6 + line + session),
        request(5, integer(codec.ACCT_STATUS_TYPE, 7) + nas),  # Accounting-On: no session
        request(6, session + nas),  # no Acct-Status-Type
        request(7, integer(codec.ACCT_STATUS_TYPE, 1) + nas),  # a Start without a session id
        codec.encode_request(
            codec.Code.ACCOUNTING_REQUEST,
            8,
            integer(codec.ACCT_STATUS_TYPE, 1) + session,
            b"another-secret",
        ),
        # A User-Name that is not UTF-8, an address of the wrong size, a 2-octet integer.
        request(
            9,
            integer(codec.ACCT_STATUS_TYPE, 3)
            + session[:-11]
            + codec.attribute(codec.USER_NAME, b"\xff\xfe-x")
            + codec.attribute(codec.FRAMED_IP_ADDRESS, b"\x01\x02\x03")
            + codec.attribute(codec.ACCT_SESSION_TIME, b"\x00\x07"),
        ),
    ]


def _accounting_reference(data: bytes) -> tuple[object, ...] | None:
    """What the listener's Python path makes of an Accounting-Request (None: it drops it)."""
    try:
        packet = codec.decode(data)
    except codec.MalformedPacket:
        return None
    if packet.code != codec.Code.ACCOUNTING_REQUEST:
        return None
    if not codec.verify_request_authenticator(packet, SECRET):
        return None
    if packet.has_message_authenticator and not codec.verify_message_authenticator(packet, SECRET):
        return None
    request = fields.accounting_request(packet, 7)
    if request is None:
        return None
    return (packet.identifier, packet.authenticator, request, packet.get_all(codec.PROXY_STATE))


def _resigned(data: bytes) -> bytes:
    """``data`` with the Request Authenticator computed afresh (RFC 2866 §3), so a mutation
    reaches the parser instead of failing the authenticator check first."""
    if len(data) < 20:
        return data
    length = int.from_bytes(data[2:4], "big")
    body = data[20:length] if 20 <= length <= len(data) else data[20:]
    digest = hashlib.md5(data[:4] + bytes(16) + body + SECRET).digest()
    return data[:4] + digest + data[20:]


def test_parse_accounting_agrees_with_the_python_path_on_good_and_mutated_packets() -> None:
    assert _wire is not None
    rng = random.Random(6)
    handled = 0
    for data in _accounting_packets():
        candidates = [data]
        for _ in range(300):  # one byte changed or the packet cut short, then signed again
            mutated = bytearray(data)
            if rng.random() < 0.2:
                mutated = mutated[: rng.randrange(0, len(mutated))]
            else:
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            candidates.append(bytes(mutated))
            candidates.append(_resigned(bytes(mutated)))
        for candidate in candidates:
            fast = _wire.parse_accounting(candidate, SECRET)
            if fast is None:
                continue  # the Python path decides
            handled += 1
            request = fields.accounting_request_from_wire(fast, 7)
            assert (fast[0], fast[1], request, list(fast[23])) == _accounting_reference(
                candidate
            ), candidate.hex()
    assert handled > 500


def test_parse_accounting_takes_authentic_requests_and_leaves_the_rest() -> None:
    assert _wire is not None
    packets = _accounting_packets()
    taken = [_wire.parse_accounting(data, SECRET) is not None for data in packets]
    # Start, Interim with Gigawords and a Vendor-Specific, a signed Stop with Proxy-States,
    # IPv6, Accounting-On: handled. No status, a Start without a session id, the wrong
    # secret: declined, and the Python path drops them too. Odd values: handled.
    assert taken == [True, True, True, True, True, False, False, False, True]
    for data, took in zip(packets, taken, strict=True):
        assert took == (_accounting_reference(data) is not None)
    interim = _wire.parse_accounting(packets[1], SECRET)
    assert interim is not None and interim[8] == (5 << 32) + 123_456
    assert interim[9] == 4_000_000_000
    # A Message-Authenticator that is wrong (the secret is right): declined.
    signed = bytearray(packets[2])
    at = bytes(signed).index(bytes((codec.MESSAGE_AUTHENTICATOR, 18)))
    signed[at + 2] ^= 1
    assert _wire.parse_accounting(_resigned(bytes(signed)), SECRET) is None
    assert _wire.parse_access(packets[0], SECRET) is None  # each parser only its own code


def test_accounting_response_matches_encode_reply() -> None:
    assert _wire is not None
    rng = random.Random(7)
    for _ in range(100):
        authenticator = rng.randbytes(16)
        states = tuple(rng.randbytes(rng.randrange(1, 60)) for _ in range(rng.randrange(0, 3)))
        identifier = rng.randrange(256)
        expected = codec.encode_reply(
            codec.Code.ACCOUNTING_RESPONSE, identifier, authenticator, b"", SECRET,
            proxy_states=states, message_authenticator=False,
        )  # fmt: skip
        made = _wire.reply(
            codec.Code.ACCOUNTING_RESPONSE, identifier, authenticator, b"", SECRET, states, False
        )
        assert made == expected


def test_salt_encrypt_matches_the_python_code() -> None:
    assert _wire is not None
    rng = random.Random(6)
    for size in range(240):
        plain, authenticator = rng.randbytes(size), rng.randbytes(16)
        salt = bytes((rng.randrange(0x80, 0x100), rng.randrange(256)))
        expected = hiding._py_salt_encrypt(plain, SECRET, authenticator, salt)
        assert _wire.salt_encrypt(plain, SECRET, authenticator, salt) == expected, size
        assert hiding.salt_decrypt(expected, SECRET, authenticator) == plain
    for bad in ((bytes(240), b"\x80\x00", 16), (b"x", b"\x7f\x00", 16), (b"x", b"\x80", 16),
                (b"x", b"\x80\x00", 15)):  # fmt: skip
        plain, salt, size = bad
        for encrypt in (_wire.salt_encrypt, hiding._py_salt_encrypt):
            with pytest.raises(ValueError):
                encrypt(plain, SECRET, bytes(size), salt)


def test_reply_with_hidden_attributes_as_the_listener_builds_it() -> None:
    # protocol._answer_access hands the C reply the plain attributes followed by the hidden
    # ones (codec.encode_hidden_attributes); encode_reply(hidden=...) gives the same packet but
    # for the random salts, so compare what a NAS reads from both.
    assert _wire is not None
    rng = random.Random(7)
    for _ in range(100):
        authenticator = rng.randbytes(16)
        kind = rng.choice([1, 11, 18, 25, 27, 85])  # not 26, 33 or 80: those are checked below
        attributes = codec.attribute(kind, rng.randbytes(rng.randrange(1, 30)))
        hidden = (
            HiddenAttribute(codec.MS_MPPE_SEND_KEY, rng.randbytes(16), 2, codec.VENDOR_MICROSOFT),
            HiddenAttribute(codec.MS_MPPE_RECV_KEY, rng.randbytes(16), 2, codec.VENDOR_MICROSOFT),
        )
        states = tuple(rng.randbytes(rng.randrange(1, 40)) for _ in range(rng.randrange(0, 3)))
        hidden_octets = codec.encode_hidden_attributes(hidden, SECRET, authenticator)
        fast = _wire.reply(2, 7, authenticator, attributes + hidden_octets, SECRET, states)
        slow = codec.encode_reply(
            2, 7, authenticator, attributes, SECRET, proxy_states=states, hidden=hidden
        )
        assert len(fast) == len(slow)
        readings = []
        for data in (fast, slow):
            packet = codec.decode(data)
            assert codec.verify_response_authenticator(packet, SECRET, authenticator)
            assert codec.verify_message_authenticator(packet, SECRET, authenticator)
            seen: list[tuple[int, bytes | None]] = []
            for kind, value in packet.attributes:
                if kind == codec.VENDOR_SPECIFIC:
                    split = codec.split_vendor_specific(value)
                    assert split is not None
                    [(sub_type, sub_value)] = split[1]
                    seen.append((sub_type, hiding.salt_decrypt(sub_value, SECRET, authenticator)))
                elif kind != codec.MESSAGE_AUTHENTICATOR:
                    seen.append((kind, value))
            readings.append(seen)
        assert readings[0] == readings[1]
        keys = [(item.code, item.value) for item in hidden]
        assert readings[0][1:3] == keys  # after the plain attribute, before the Proxy-States


def test_parse_access_reads_ms_chap_as_packet_vendor_does() -> None:
    assert _wire is not None
    ms, name = codec.VENDOR_MICROSOFT, codec.attribute(codec.USER_NAME, b"ms-user")
    challenge = codec.vendor_attribute(ms, codec.MS_CHAP_CHALLENGE, b"c" * 16)
    response = codec.vendor_attribute(ms, codec.MS_CHAP2_RESPONSE, b"r" * 50)
    other_vendor = codec.vendor_attribute(14988, codec.MS_CHAP_CHALLENGE, b"not-microsoft")
    # A Microsoft value that does not split into sub-attributes: skipped whole.
    broken = codec.attribute(codec.VENDOR_SPECIFIC, ms.to_bytes(4, "big") + b"\x0b\x12cc")
    both = codec.attribute(
        codec.VENDOR_SPECIFIC,
        ms.to_bytes(4, "big") + b"\x0b\x12" + b"C" * 16 + b"\x19\x34" + b"R" * 50,
    )
    empty = codec.attribute(codec.VENDOR_SPECIFIC, ms.to_bytes(4, "big") + b"\x0b\x02")
    short = codec.attribute(codec.VENDOR_SPECIFIC, b"\x00\x00\x01")
    bodies = [
        other_vendor + challenge + response,
        broken + both + challenge,
        challenge + both + response,
        empty + response + challenge,
        short + challenge,
        other_vendor,
    ]
    for body in bodies:
        data = codec.encode_request(codec.Code.ACCESS_REQUEST, 1, name + body, SECRET)
        fast = _wire.parse_access(data, SECRET)
        assert fast is not None and fast == _reference(data, SECRET), body.hex()
    first = _wire.parse_access(
        codec.encode_request(codec.Code.ACCESS_REQUEST, 1, name + bodies[1], SECRET), SECRET
    )
    assert first is not None and (first[14], first[15]) == (b"C" * 16, b"R" * 50)
