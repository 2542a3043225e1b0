"""A small blocking RadSec (RFC 6614) client for tests: RADIUS packets over one TLS connection.

It builds packets like :class:`radius_client.RadiusClient` (same methods) and sends them as a
NAS does over TLS: each packet as is on the stream, replies read back by their Length field.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from radius_client import RadiusClient
from radius_contracts.radius import codec


def client_context(
    pki: Path,
    cert: str = "nas",
    *,
    ca: str = "ca",
    alpn: list[str] | None = None,
    maximum: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """TLS 1.2+ client context presenting ``cert`` and trusting the server's CA, offering the
    ALPN names ``alpn`` (RFC 9765: "radius/1.1", "radius/1.0") and at most TLS ``maximum``."""
    context = ssl.create_default_context(cafile=str(pki / f"{ca}.pem"))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if maximum is not None:
        context.maximum_version = maximum
    if alpn:
        context.set_alpn_protocols(alpn)
    context.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return context


def radius11(code: int, token: bytes, attributes: bytes) -> bytes:
    """A RADIUS/1.1 packet (RFC 9765 §4.1): Reserved-1 zero, the Token, twelve zero octets."""
    length = 20 + len(attributes)
    return bytes((code, 0)) + length.to_bytes(2, "big") + token + bytes(12) + attributes


def as_radius11(packet: bytes, token: bytes) -> bytes:
    """A RADIUS/1.0 ``packet`` made by :class:`RadiusClient` as RADIUS/1.1: its attributes
    without the Message-Authenticator (none of them may be hidden, e.g. User-Password)."""
    decoded = codec.decode(packet)
    attributes = b"".join(
        codec.attribute(kind, value)
        for kind, value in decoded.attributes
        if kind != codec.MESSAGE_AUTHENTICATOR
    )
    return radius11(decoded.code, token, attributes)


class RadsecClient(RadiusClient):
    """Connects to 127.0.0.1:``port`` from ``source`` and does the TLS handshake."""

    def __init__(
        self,
        port: int,
        context: ssl.SSLContext,
        *,
        secret: bytes = b"radsec",
        source: str = "127.0.0.1",
        timeout: float = 5.0,
    ) -> None:
        self.port = port
        self.secret = secret
        self.identifier = 0
        raw = socket.create_connection(("127.0.0.1", port), timeout, source_address=(source, 0))
        try:
            self.sock = context.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self.sock.settimeout(timeout)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
        return data

    def receive(self, timeout: float | None = None) -> bytes | None:
        """One packet, framed by its Length (RFC 6614 §2.5); None on timeout."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            header = self._read(4)
            assert header is not None
            length = int.from_bytes(header[2:4], "big")
            assert codec.MIN_PACKET <= length <= codec.MAX_PACKET, length
            rest = self._read(length - 4)
            assert rest is not None
        except TimeoutError:
            return None
        return header + rest

    def exchange11(self, frame: bytes, timeout: float | None = None) -> codec.Packet | None:
        """Send a RADIUS/1.1 ``frame``; the reply with its Token, or None on timeout."""
        self.send_raw(frame)
        while True:
            data = self.receive(timeout)
            if data is None:
                return None
            if data[4:8] == frame[4:8]:
                return codec.decode(data)

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """Whether the server ends the connection (EOF, reset or a TLS alert) within
        ``timeout``, reading and discarding anything that comes before."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(4096):
                pass
        except TimeoutError:
            return False
        except (ssl.SSLError, OSError):
            return True
        return True


@contextmanager
def disconnect_asked(api: httpx.Client, user: str) -> Iterator[list[httpx.Response]]:
    """Ask the API, from a thread, to disconnect ``user``'s one online session and wait for
    the outcome; the block plays the NAS. Yields the list that holds the API's answer once
    the block has ended."""
    [online] = api.get("/api/v1/sessions", params={"username": user}).json()["items"]
    outcome: list[httpx.Response] = []
    asking = threading.Thread(
        target=lambda: outcome.append(
            api.post(f"/api/v1/sessions/{online['id']}/disconnect", params={"wait": True})
        )
    )
    asking.start()
    try:
        yield outcome
    finally:
        asking.join(15)
