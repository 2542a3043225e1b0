"""A small blocking RADIUS client for tests: what a NAS sends, over a real UDP socket.

radclient is the reference client; this one exists for what radclient cannot do: MS-CHAPv2
with checkable keys, a chosen source address (127.0.0.x stands for another NAS), raw and
broken datagrams, and retransmits with the same Identifier and authenticator.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass

from radius_contracts import testauth
from radius_contracts.radius import codec
from radius_contracts.radius.dictionary import AttributeCatalog, encode_value
from radius_contracts.settings import default_dictionary

CATALOG = AttributeCatalog.load(default_dictionary())


def attr(name: str, value: str | bytes) -> bytes:
    """One encoded attribute by dictionary name (text values go through the dictionary)."""
    spec = CATALOG.get(name)
    assert spec is not None, name
    if isinstance(value, str):
        value = encode_value(spec, value)
    return codec.encode_attribute(spec, value)


@dataclass
class Reply:
    packet: codec.Packet
    request_authenticator: bytes

    @property
    def code(self) -> int:
        return self.packet.code

    @property
    def accepted(self) -> bool:
        return self.packet.code == codec.Code.ACCESS_ACCEPT

    def values(self) -> dict[str, list[bytes]]:
        """Attribute values by dictionary name, vendor attributes unpacked."""
        found: dict[str, list[bytes]] = {}
        for kind, value in self.packet.attributes:
            if kind == codec.VENDOR_SPECIFIC:
                split = codec.split_vendor_specific(value)
                assert split is not None
                vendor_id, subs = split
                for sub_type, sub_value in subs:
                    spec = CATALOG.by_code(sub_type, vendor_id)
                    name = spec.name if spec else f"{vendor_id}:{sub_type}"
                    found.setdefault(name, []).append(sub_value)
                continue
            spec = CATALOG.by_code(kind)
            found.setdefault(spec.name if spec else str(kind), []).append(value)
        return found

    def text(self, name: str) -> str | None:
        values = self.values().get(name)
        return values[0].decode() if values else None


class RadiusClient:
    """Sends to 127.0.0.1:``port`` from ``source`` (any 127.0.0.0/8 address)."""

    def __init__(
        self, port: int, secret: str | bytes, *, source: str = "127.0.0.1", timeout: float = 3.0
    ) -> None:
        self.port = port
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.identifier = int.from_bytes(os.urandom(1), "big")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RadiusClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def next_id(self) -> int:
        self.identifier = (self.identifier + 1) % 256
        return self.identifier

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def receive(self, timeout: float | None = None) -> bytes | None:
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            data, _addr = self.sock.recvfrom(4096)
        except TimeoutError:
            return None
        return data

    def exchange(self, request: bytes, timeout: float | None = None) -> Reply | None:
        """Send ``request``; the verified reply with the same Identifier, or None on timeout."""
        self.send_raw(request)
        while True:
            data = self.receive(timeout)
            if data is None:
                return None
            packet = codec.decode(data)
            if packet.identifier != request[1]:
                continue  # a late answer to an earlier request
            authenticator = request[4:20]  # what the reply's authenticators are built on
            assert codec.verify_response_authenticator(packet, self.secret, authenticator)
            if packet.has_message_authenticator:
                assert codec.verify_message_authenticator(packet, self.secret, authenticator)
            return Reply(packet, authenticator)

    def access_request(
        self,
        user: str,
        password: str | None = None,
        *extra: bytes,
        chap: bool = False,
        message_authenticator: bool = True,
    ) -> bytes:
        """An Access-Request packet with PAP (or CHAP) credentials and ``extra`` attributes.

        CHAP here uses the Request Authenticator as its challenge (RFC 2865 §5.3, no
        CHAP-Challenge), the form test-auth's builder does not send.
        """
        if password is None or not chap:
            return testauth.access_request(
                self.next_id(),
                self.secret,
                user,
                password,
                *extra,
                message_authenticator=message_authenticator,
            ).data
        authenticator = codec.new_authenticator()
        ident = os.urandom(1)
        response = hashlib.md5(ident + password.encode() + authenticator).digest()
        body = [
            codec.attribute(codec.USER_NAME, user.encode()),
            codec.attribute(codec.CHAP_PASSWORD, ident + response),
            *extra,
        ]
        return codec.encode_request(
            codec.Code.ACCESS_REQUEST,
            self.next_id(),
            b"".join(body),
            self.secret,
            authenticator=authenticator,
            message_authenticator=message_authenticator,
        )

    def mschapv2_request(
        self, user: str, password: str, *extra: bytes
    ) -> tuple[bytes, bytes, bytes, bytes]:
        """(packet, authenticator challenge, peer challenge, NT-Response) for MS-CHAPv2."""
        request = testauth.access_request(
            self.next_id(), self.secret, user, password, *extra, method="mschapv2"
        )
        return request.data, request.auth_challenge, request.peer_challenge, request.nt_response

    def status_server(self) -> bytes:
        return codec.encode_request(codec.Code.STATUS_SERVER, self.next_id(), b"", self.secret)

    def accounting_request(self, *attributes: bytes, message_authenticator: bool = False) -> bytes:
        """An Accounting-Request with the RFC 2866 §3 Request Authenticator."""
        return codec.encode_request(
            codec.Code.ACCOUNTING_REQUEST,
            self.next_id(),
            b"".join(attributes),
            self.secret,
            message_authenticator=message_authenticator,
        )
