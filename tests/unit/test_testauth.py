"""test-auth's request builder and reply printer, without a server."""

from __future__ import annotations

import hashlib

from radius_contracts import testauth
from radius_contracts.radius import codec
from radius_contracts.radius.dictionary import AttributeCatalog
from radius_contracts.settings import default_dictionary

CATALOG = AttributeCatalog.load(default_dictionary())
SECRET = b"s3cret"


def reply(*attributes: bytes) -> codec.Packet:
    data = codec.encode_reply(codec.Code.ACCESS_ACCEPT, 7, bytes(16), b"".join(attributes), SECRET)
    return codec.decode(data)


def test_reply_lines_show_each_type_as_an_operator_reads_it() -> None:
    packet = reply(
        codec.attribute(codec.SERVICE_TYPE, (2).to_bytes(4, "big")),
        codec.attribute(codec.FRAMED_IP_ADDRESS, bytes((100, 64, 0, 9))),
        codec.attribute(
            codec.DELEGATED_IPV6_PREFIX, bytes((0, 56)) + bytes.fromhex("20010db8aa") + bytes(2)
        ),
        codec.attribute(codec.REPLY_MESSAGE, b"welcome"),
        codec.attribute(64, bytes((1, 0, 0, 13))),  # Tunnel-Type:1 = VLAN
        codec.attribute(codec.CLASS, b"\x00\xff"),
        codec.vendor_attribute(14988, 8, b"10M/50M"),
        codec.vendor_attribute(99999, 1, b"\x01\x02"),
        codec.attribute(200, b"\xab"),
    )
    assert testauth.reply_lines(packet, CATALOG) == [
        "  Service-Type = Framed-User",
        "  Framed-IP-Address = 100.64.0.9",
        "  Delegated-IPv6-Prefix = 2001:db8:aa00::/56",
        "  Reply-Message = welcome",
        "  Tunnel-Type:1 = VLAN",
        "  Class = 0x00ff",
        "  Mikrotik-Rate-Limit = 10M/50M",
        "  Vendor-99999-Attr-1 = 0x0102",
        "  Attr-200 = 0xab",
    ]


def test_chap_request_carries_its_own_challenge_and_message_authenticator() -> None:
    request = testauth.access_request(5, SECRET, "ana", "pw", method="chap")
    packet = codec.decode(request.data)
    chap, challenge = packet.get(codec.CHAP_PASSWORD), packet.get(codec.CHAP_CHALLENGE)
    assert chap is not None and challenge is not None and len(challenge) == 16
    assert chap[1:] == hashlib.md5(chap[:1] + b"pw" + challenge).digest()
    assert codec.verify_message_authenticator(packet, SECRET)
    assert packet.identifier == request.identifier == 5
