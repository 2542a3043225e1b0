"""A NAS's Dynamic Authorization server for tests (RFC 5176): it really listens on UDP.

It answers CoA and Disconnect-Requests with ACK, NAK (with an Error-Cause) or nothing, as a
test sets it, and keeps every request it received for the test to look at.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Literal

from radius_contracts.radius import codec

Mode = Literal["ack", "nak", "silent"]

_ACK = {codec.Code.COA_REQUEST: codec.Code.COA_ACK,
        codec.Code.DISCONNECT_REQUEST: codec.Code.DISCONNECT_ACK}  # fmt: skip
_NAK = {codec.Code.COA_REQUEST: codec.Code.COA_NAK,
        codec.Code.DISCONNECT_REQUEST: codec.Code.DISCONNECT_NAK}  # fmt: skip


@dataclass
class CoaServer:
    secret: bytes
    mode: Mode = "ack"
    error_cause: int = 503  # Session-Context-Not-Found
    ignore_first: int = 0  # answer only from this many + 1 copies of a request on
    reply_secret: bytes | None = None  # sign replies with another secret (a forgery)
    received: list[bytes] = field(default_factory=list)
    host: str = "127.0.0.1"  # any 127.0.0.0/8 address: the NAS's own
    # Per request kind, overriding ``mode`` (e.g. NAK CoA-Requests but ACK Disconnects).
    coa_mode: Mode | None = None
    disconnect_mode: Mode | None = None

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.host, 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._seen: dict[bytes, int] = {}
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()

    def __enter__(self) -> CoaServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def packets(self) -> list[codec.Packet]:
        return [codec.decode(data) for data in self.received]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.received.append(data)
            packet = codec.decode(data)
            copies = self._seen[data] = self._seen.get(data, 0) + 1
            mode = self.coa_mode if packet.code == codec.Code.COA_REQUEST else self.disconnect_mode
            mode = mode or self.mode
            if mode == "silent" or copies <= self.ignore_first:
                continue
            if mode == "ack":
                code, attributes = _ACK[codec.Code(packet.code)], b""
            else:
                code = _NAK[codec.Code(packet.code)]
                attributes = codec.attribute(codec.ERROR_CAUSE, self.error_cause.to_bytes(4, "big"))
            reply = codec.encode_reply(
                code, packet.identifier, packet.authenticator, attributes,
                self.reply_secret or self.secret,
            )  # fmt: skip
            self.sock.sendto(reply, addr)
