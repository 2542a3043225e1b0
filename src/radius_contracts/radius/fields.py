"""Attribute values as the handlers read them: text, integers, counters, addresses, prefixes.

The listeners build their requests (messages.AccessRequest, messages.AccountingRequest) from
these, on the pure Python path from a decoded packet and on the C path from what
``_wire.parse_accounting`` returns; both give the same request (tests/unit/radius/test_wire.py).
"""

from __future__ import annotations

import ipaddress
import socket

from radius_contracts.radius import codec
from radius_contracts.radius.messages import AccountingRequest
from radius_contracts.radius.wire_speedups import AccountingFields

# Status types that describe one session and so need its Acct-Session-Id.
SESSION_STATUS_TYPES = frozenset({1, 2, 3})


def text_or_none(value: bytes | None) -> str | None:
    # RADIUS "text" should be UTF-8 (RFC 2865 §5); anything else is kept visible, not dropped.
    return None if value is None else value.decode("utf-8", "replace")


def integer_or_none(value: bytes | None) -> int | None:
    return int.from_bytes(value, "big") if value is not None and len(value) == 4 else None


def first_values(packet: codec.Packet) -> dict[int, bytes]:
    """The first value of each attribute type, in one pass: every field the handlers read is
    then a dict read (this runs for every request, so it is written for speed)."""
    first: dict[int, bytes] = {}
    for kind, value in packet.attributes:
        if kind not in first:
            first[kind] = value
    return first


def proxy_state_size(packet: codec.Packet) -> int:
    """Octets the Proxy-State echo adds to the reply (RFC 2865 §5.33: every one, unchanged)."""
    size, proxy_state = 0, codec.PROXY_STATE
    for kind, value in packet.attributes:  # a plain loop costs half of sum() over a genexpr
        if kind == proxy_state:
            size += len(value) + 2
    return size


def counter64(low: bytes | None, high: bytes | None) -> int | None:
    # RFC 2869 §5.1-5.2: Gigawords count how often the 32-bit counter wrapped.
    octets, gigawords = integer_or_none(low), integer_or_none(high)
    if octets is None and gigawords is None:
        return None
    return ((gigawords or 0) << 32) + (octets or 0)


def address_or_none(value: bytes | None) -> str | None:
    if value is None:
        return None
    if len(value) == 4:
        return socket.inet_ntop(socket.AF_INET, value)
    if len(value) == 16:
        return socket.inet_ntop(socket.AF_INET6, value)
    return None


def prefix_or_none(value: bytes | None) -> str | None:
    """An IPv6 prefix attribute (RFC 3162 §2.3): reserved, length, then the prefix bits."""
    if value is None or not 2 <= len(value) <= 18 or value[1] > 128:
        return None
    try:
        network = ipaddress.IPv6Network((value[2:].ljust(16, b"\0"), value[1]), strict=False)
    except ValueError:
        return None
    return str(network)


def accounting_request(packet: codec.Packet, nas_id: int) -> AccountingRequest | None:
    """The accounting handler's view; None without a status type or a needed session id."""
    get = first_values(packet).get
    status = integer_or_none(get(codec.ACCT_STATUS_TYPE))
    session_id = text_or_none(get(codec.ACCT_SESSION_ID))
    if status is None:
        return None
    if session_id is None and status in SESSION_STATUS_TYPES:
        return None  # RFC 2866 §5.5: Acct-Session-Id MUST be in every Accounting-Request
    nas_ip = get(codec.NAS_IP_ADDRESS)
    if nas_ip is None:
        nas_ip = get(codec.NAS_IPV6_ADDRESS)
    return AccountingRequest(
        nas_id=nas_id,
        status_type=status,
        acct_session_id=session_id,
        user_name=text_or_none(get(codec.USER_NAME)),
        delay=integer_or_none(get(codec.ACCT_DELAY_TIME)) or 0,
        event_timestamp=integer_or_none(get(codec.EVENT_TIMESTAMP)),
        session_time=integer_or_none(get(codec.ACCT_SESSION_TIME)),
        input_octets=counter64(get(codec.ACCT_INPUT_OCTETS), get(codec.ACCT_INPUT_GIGAWORDS)),
        output_octets=counter64(get(codec.ACCT_OUTPUT_OCTETS), get(codec.ACCT_OUTPUT_GIGAWORDS)),
        input_packets=integer_or_none(get(codec.ACCT_INPUT_PACKETS)),
        output_packets=integer_or_none(get(codec.ACCT_OUTPUT_PACKETS)),
        framed_ip=address_or_none(get(codec.FRAMED_IP_ADDRESS)),
        framed_ipv6_prefix=prefix_or_none(get(codec.FRAMED_IPV6_PREFIX)),
        framed_ipv6_address=address_or_none(get(codec.FRAMED_IPV6_ADDRESS)),
        delegated_ipv6_prefix=prefix_or_none(get(codec.DELEGATED_IPV6_PREFIX)),
        calling_station_id=text_or_none(get(codec.CALLING_STATION_ID)),
        called_station_id=text_or_none(get(codec.CALLED_STATION_ID)),
        nas_port=integer_or_none(get(codec.NAS_PORT)),
        nas_port_id=text_or_none(get(codec.NAS_PORT_ID)),
        nas_ip_address=address_or_none(nas_ip),
        nas_identifier=text_or_none(get(codec.NAS_IDENTIFIER)),
        terminate_cause=integer_or_none(get(codec.ACCT_TERMINATE_CAUSE)),
    )


def accounting_request_from_wire(fields: AccountingFields, nas_id: int) -> AccountingRequest:
    """The same request from what ``_wire.parse_accounting`` returned (which already refused
    what :func:`accounting_request` answers None for)."""
    (_identifier, _authenticator, status, session_id, user_name, delay, event_timestamp,
     session_time, input_octets, output_octets, input_packets, output_packets, framed_ip,
     framed_ipv6_prefix, framed_ipv6_address, delegated_ipv6_prefix, calling, called,
     nas_port, nas_port_id, nas_ip, nas_identifier, terminate_cause, _states) = fields  # fmt: skip
    return AccountingRequest(
        nas_id, status, session_id, user_name, delay, event_timestamp, session_time,
        input_octets, output_octets, input_packets, output_packets, framed_ip,
        None if framed_ipv6_prefix is None else prefix_or_none(framed_ipv6_prefix),
        framed_ipv6_address,
        None if delegated_ipv6_prefix is None else prefix_or_none(delegated_ipv6_prefix),
        calling, called, nas_port, nas_port_id, nas_ip, nas_identifier, terminate_cause,
    )  # fmt: skip
