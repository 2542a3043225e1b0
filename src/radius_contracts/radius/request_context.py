"""The RADIUS datagram a log line is about: its request id, NAS, Identifier and User-Name.

One is made per datagram and set as the current log context while the datagram is handled
(and inherited by any task it starts). It only keeps references; the id is taken and the
User-Name decoded when a line is first logged, so requests that log nothing (nearly all of
them below DEBUG) pay for an object and a context variable, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable

from radius_contracts.log_context import new_request_id
from radius_contracts.radius import codec
from radius_contracts.radius.clients import ClientTable

# Codes named in log lines; others are shown as numbers.
_CODE_NAMES = {code.value: code.name.replace("_", "-").title() for code in codec.Code}


class DatagramContext:
    """Log fields for one received datagram, rendered on first use."""

    __slots__ = ("_clients", "_fields", "addr", "data")

    def __init__(
        self, data: bytes, addr: tuple[str | object, ...], clients: Callable[[], ClientTable]
    ) -> None:
        self.data = data
        self.addr = addr
        self._clients = clients
        self._fields: dict[str, object] | None = None

    def log_fields(self) -> dict[str, object]:
        fields = self._fields
        if fields is None:
            fields = self._fields = self._render()
        return fields

    def _render(self) -> dict[str, object]:
        data = self.data
        source = str(self.addr[0])
        fields: dict[str, object] = {"request_id": new_request_id(), "nas_address": source}
        client = self._clients().lookup(source)
        if client is not None and client.name:
            fields["nas"] = client.name
        if len(data) >= 2:
            fields["radius_code"] = _CODE_NAMES.get(data[0], data[0])
            fields["radius_id"] = data[1]
        try:
            user_name = codec.decode(data).get(codec.USER_NAME)
        except codec.MalformedPacket:
            user_name = None
        if user_name is not None:
            # Only the User-Name: never User-Password or CHAP/MS-CHAP material.
            fields["user_name"] = user_name.decode("utf-8", "replace")
        return fields
