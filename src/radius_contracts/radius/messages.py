"""The values that cross between the wire layer and the AAA handler.

The handler sees decoded, decrypted request fields and answers with a decision whose reply
attributes are already encoded (the index caches them per contract and layout). It never sees
datagrams, transports or NAS secrets: attributes that must be encrypted with the secret and the
Request Authenticator travel as :class:`HiddenAttribute` in clear and are encrypted by the codec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AuthMethod = Literal["pap", "chap", "mschapv2", "mac"]


@dataclass(slots=True)
class AccessRequest:
    """An Access-Request as the handler sees it (built once per packet, so not frozen).

    ``password`` is the User-Password after RFC 2865 §5.2 decryption with trailing NULs
    removed; ``chap_challenge`` is CHAP-Challenge or, without one, the Request Authenticator
    (RFC 1994 via RFC 2865 §2.2); MS-CHAP fields are the raw vendor-311 attribute values.
    """

    nas_id: int
    user_name: str | None = None
    # Credentials stay out of reprs (which end up in logs).
    password: bytes | None = field(default=None, repr=False)
    # CHAP Ident (1 octet) + response (16 octets)
    chap_password: bytes | None = field(default=None, repr=False)
    chap_challenge: bytes | None = None
    ms_chap_challenge: bytes | None = None  # MS-CHAP-Challenge, 16 octets for MS-CHAPv2
    # MS-CHAP2-Response, 50 octets (RFC 2548 §2.3.2)
    ms_chap2_response: bytes | None = field(default=None, repr=False)
    calling_station_id: str | None = None
    called_station_id: str | None = None
    nas_port: int | None = None
    nas_port_id: str | None = None
    eap: bool = False  # an EAP-Message was present (not supported: rejected)
    # Octets of the request's Proxy-State attributes (headers included): the listener echoes
    # them in the reply (RFC 2865 §5.33), so they count against its 4096 octets.
    proxy_state_size: int = 0
    # Identifier and Request Authenticator, set for CHAP requests (the challenge check needs
    # them): a NAS's retransmit repeats both (RFC 5080 §2.2.2), a new request changes one.
    identifier: int = 0
    authenticator: bytes = b""


@dataclass(frozen=True, slots=True)
class HiddenAttribute:
    """A reply attribute the codec encrypts with the NAS secret and Request Authenticator.

    ``encrypt`` follows the dictionary flag: 1 is User-Password style (RFC 2865 §5.2), 2 is
    the salted form of RFC 2868 §3.5 / RFC 2548 §2.4.2 (Tunnel-Password, MS-MPPE keys).
    ``tag`` is only written for attributes that have one (Tunnel-Password).
    """

    code: int
    value: bytes
    encrypt: int
    vendor_id: int | None = None
    tag: int | None = None


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """What to answer: Accept or Reject, why, and the encoded reply attributes.

    ``attributes`` holds complete attributes (headers included) in wire order, without
    Message-Authenticator and Proxy-State, which the codec adds. ``reason`` is a short phrase
    for the auth log and, on a Reject, the Reply-Message when that is enabled.
    """

    accept: bool
    reason: str
    attributes: bytes = b""
    hidden: tuple[HiddenAttribute, ...] = ()
    method: AuthMethod | None = None
    contract_id: int | None = None


# Acct-Status-Type values (RFC 2866 §5.1, RFC 2869 §5.4 for Interim-Update).
ACCT_START = 1
ACCT_STOP = 2
ACCT_INTERIM = 3
ACCT_ON = 7
ACCT_OFF = 8


@dataclass(slots=True)
class AccountingRequest:
    """An Accounting-Request as the accounting handler sees it.

    Octet counters already combine the Gigawords attributes into 64-bit values (RFC 2869
    §5.1-5.2). IPv6 prefixes are in ``address/length`` form (RFC 3162 §2.3, RFC 4818).
    ``delay`` is Acct-Delay-Time (RFC 2866 §5.2): how long the NAS has been trying to send it.
    """

    nas_id: int
    status_type: int
    acct_session_id: str | None = None
    user_name: str | None = None
    delay: int = 0
    event_timestamp: int | None = None  # Event-Timestamp (RFC 2869 §5.3), Unix seconds
    session_time: int | None = None
    input_octets: int | None = None
    output_octets: int | None = None
    input_packets: int | None = None
    output_packets: int | None = None
    framed_ip: str | None = None
    framed_ipv6_prefix: str | None = None
    framed_ipv6_address: str | None = None
    delegated_ipv6_prefix: str | None = None
    calling_station_id: str | None = None
    called_station_id: str | None = None
    nas_port: int | None = None
    nas_port_id: str | None = None
    nas_ip_address: str | None = None
    nas_identifier: str | None = None
    terminate_cause: int | None = None
