"""The values that cross between the wire layer and the AAA handler.

The handler sees decoded, decrypted request fields and answers with a decision whose reply
attributes are already encoded (the index caches them per contract and layout). It never sees
datagrams, transports or NAS secrets: attributes that must be encrypted with the secret and the
Request Authenticator travel as :class:`HiddenAttribute` in clear and are encrypted by the codec.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    source: str  # source IP of the datagram
    user_name: str | None = None
    password: bytes | None = None
    chap_password: bytes | None = None  # CHAP Ident (1 octet) + response (16 octets)
    chap_challenge: bytes | None = None
    ms_chap_challenge: bytes | None = None  # MS-CHAP-Challenge, 16 octets for MS-CHAPv2
    ms_chap2_response: bytes | None = None  # MS-CHAP2-Response, 50 octets (RFC 2548 §2.3.2)
    calling_station_id: str | None = None
    called_station_id: str | None = None
    nas_port: int | None = None
    nas_port_id: str | None = None
    eap: bool = False  # an EAP-Message was present (not supported: rejected)
    proxied: bool = False  # Proxy-State present: the reply must echo it (RFC 2865 §5.33)


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
