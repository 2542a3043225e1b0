"""The RADIUS datagram a log line is about: its request id, NAS, Identifier and User-Name.

While a datagram is handled (and in any task it starts) ``current`` holds a plain tuple of
what arrived: setting it is all the hot path pays, a few hundred ns of the ~60 µs a request
costs. :class:`DatagramFilter` renders the fields only when a line is logged: the request id is
taken then, the User-Name decoded then, and both remembered for the datagram's later lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar

from radius_contracts.log_context import new_request_id
from radius_contracts.radius import codec
from radius_contracts.radius.clients import ClientTable

# (datagram, source address, the NAS table as the listener sees it)
Datagram = tuple[bytes, tuple[str | object, ...], Callable[[], ClientTable]]

current: ContextVar[Datagram | None] = ContextVar("radius_datagram", default=None)

# Codes named in log lines; others are shown as numbers.
_CODE_NAMES = {code.value: code.name.replace("_", "-").title() for code in codec.Code}
# Fields already rendered, by datagram, so every line about one datagram has the same id.
# Holding the tuple keeps its id() from being reused while it is remembered.
_rendered: dict[int, tuple[Datagram, dict[str, object]]] = {}
_REMEMBERED = 1024


def log_fields(datagram: Datagram) -> dict[str, object]:
    """The log fields of ``datagram``; the same dict (and id) for every line about it."""
    key = id(datagram)
    memo = _rendered.get(key)
    if memo is not None and memo[0] is datagram:
        return memo[1]
    if len(_rendered) >= _REMEMBERED:
        _rendered.clear()  # datagrams logged about long ago; a late line gets a new id
    fields = _render(*datagram)
    _rendered[key] = (datagram, fields)
    return fields


def _render(
    data: bytes, addr: tuple[str | object, ...], clients: Callable[[], ClientTable]
) -> dict[str, object]:
    source = str(addr[0])
    fields: dict[str, object] = {"request_id": new_request_id(), "nas_address": source}
    client = clients().lookup(source)
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


class DatagramFilter(logging.Filter):
    """Adds the current datagram's fields to each record (an explicit ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        datagram = current.get()
        if datagram is not None:
            fields = record.__dict__
            for key, value in log_fields(datagram).items():
                if key not in fields:
                    fields[key] = value
        return True
