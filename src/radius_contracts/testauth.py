"""``radius-contracts test-auth``: send one Access-Request, as a NAS would, and show the reply.

The operator's first debugging tool, like FreeRADIUS's ``radtest``. It works against any RADIUS
server. Requests always carry a Message-Authenticator (BlastRADIUS, CVE-2024-3596), so a server
that requires one answers; replies are checked (Response Authenticator, Message-Authenticator)
before anything in them is believed.

The request builders are plain functions so the test suite's client builds the same packets.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from radius_contracts.aaa import mschap
from radius_contracts.radius import codec, hiding
from radius_contracts.radius.dictionary import AttributeCatalog, AttributeSpec

Method = Literal["pap", "chap", "mschapv2"]

EXIT_ACCEPT = 0
EXIT_REJECT = 1  # also an Access-Challenge: the server answered, but did not accept
EXIT_TROUBLE = 2  # no answer, a reply that fails its checks, or a usage error

_NAMES: dict[int, str] = {
    codec.Code.ACCESS_ACCEPT: "Access-Accept",
    codec.Code.ACCESS_REJECT: "Access-Reject",
    codec.Code.ACCESS_CHALLENGE: "Access-Challenge",
}
_INTEGER_TYPES = {"byte": 1, "short": 2, "integer": 4, "signed": 4, "integer64": 8}


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """An encoded Access-Request and what checking its reply needs."""

    data: bytes
    # MS-CHAPv2 only: what the peer computed, to check MS-CHAP2-Success and MPPE keys with.
    auth_challenge: bytes = b""
    peer_challenge: bytes = b""
    nt_response: bytes = b""

    @property
    def authenticator(self) -> bytes:
        """The Request Authenticator, which both reply authenticators are computed over."""
        return self.data[4:20]

    @property
    def identifier(self) -> int:
        return self.data[1]


def access_request(
    identifier: int,
    secret: bytes,
    user: str,
    password: str | None,
    *extra: bytes,
    method: Method = "pap",
    message_authenticator: bool = True,
) -> AccessRequest:
    """An Access-Request with User-Name, ``method`` credentials and ``extra`` attributes.

    CHAP sends its own CHAP-Challenge (RFC 2865 §5.40 lets the Request Authenticator serve, but
    a separate challenge is what most NASes send). MS-CHAPv2 follows RFC 2548 §2.3.2.
    """
    authenticator = codec.new_authenticator()
    body = [codec.attribute(codec.USER_NAME, user.encode())]
    result = AccessRequest(b"")
    if password is not None and method == "pap":
        hidden = hiding.hide_user_password(password.encode(), secret, authenticator)
        body.append(codec.attribute(codec.USER_PASSWORD, hidden))
    elif password is not None and method == "chap":
        # RFC 1994 §4.1 / RFC 2865 §5.3: MD5(CHAP Ident + secret + challenge).
        ident, challenge = os.urandom(1), os.urandom(16)
        response = hashlib.md5(ident + password.encode() + challenge).digest()  # noqa: S324
        body.append(codec.attribute(codec.CHAP_PASSWORD, ident + response))
        body.append(codec.attribute(codec.CHAP_CHALLENGE, challenge))
    elif password is not None:
        auth_challenge, peer_challenge = os.urandom(16), os.urandom(16)
        # RFC 2759 §8.2: the challenge hash covers the user name without a Windows domain.
        name = user.rsplit("\\", 1)[-1].encode()
        nt_response = mschap.generate_nt_response(auth_challenge, peer_challenge, name, password)
        # RFC 2548 §2.3.2: Ident, Flags, Peer-Challenge, 8 reserved zero octets, NT-Response.
        response = os.urandom(1) + b"\0" + peer_challenge + bytes(8) + nt_response
        body.append(
            codec.vendor_attribute(codec.VENDOR_MICROSOFT, codec.MS_CHAP_CHALLENGE, auth_challenge)
        )
        body.append(
            codec.vendor_attribute(codec.VENDOR_MICROSOFT, codec.MS_CHAP2_RESPONSE, response)
        )
        result = AccessRequest(b"", auth_challenge, peer_challenge, nt_response)
    body.extend(extra)
    data = codec.encode_request(
        codec.Code.ACCESS_REQUEST,
        identifier,
        b"".join(body),
        secret,
        authenticator=authenticator,
        message_authenticator=message_authenticator,
    )
    return AccessRequest(data, result.auth_challenge, result.peer_challenge, result.nt_response)


def nas_address_attribute(address: str) -> bytes:
    """NAS-IP-Address, or NAS-IPv6-Address for an IPv6 address; ValueError if not an address."""
    parsed = ipaddress.ip_address(address)
    kind = codec.NAS_IP_ADDRESS if parsed.version == 4 else codec.NAS_IPV6_ADDRESS
    return codec.attribute(kind, parsed.packed)


# -- the exchange -------------------------------------------------------------------------------


class NoAnswer(Exception):
    """Nothing came back within the timeout, retransmits included."""


class BadReply(Exception):
    """A reply that fails its authenticator checks or cannot be decoded."""


@dataclass(frozen=True, slots=True)
class Answer:
    packet: codec.Packet
    round_trip: float  # seconds, from the send the reply answered (the last one)


def exchange(
    request: AccessRequest,
    secret: bytes,
    server: str,
    port: int,
    *,
    source: str | None = None,
    timeout: float = 3.0,
    retries: int = 2,
) -> Answer:
    """Send ``request``, retransmitting the same packet ``retries`` times; the verified reply.

    Raises NoAnswer, BadReply, or OSError when the address cannot be used.
    """
    family, _type, _proto, _name, address = socket.getaddrinfo(
        server, port, type=socket.SOCK_DGRAM
    )[0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if source is not None:
            sock.bind((source, 0))
        for _attempt in range(retries + 1):
            sent = time.monotonic()
            sock.sendto(request.data, address)
            deadline = sent + timeout
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data, _sender = sock.recvfrom(codec.MAX_PACKET)
                except TimeoutError:
                    break
                received = time.monotonic()
                try:
                    packet = codec.decode(data)
                except codec.MalformedPacket as exc:
                    raise BadReply(f"malformed reply: {exc}") from None
                if packet.identifier != request.identifier:
                    continue  # not ours: a late answer to someone else's request
                _verify(packet, secret, request.authenticator)
                return Answer(packet, received - sent)
    raise NoAnswer


def _verify(packet: codec.Packet, secret: bytes, request_authenticator: bytes) -> None:
    if not codec.verify_response_authenticator(packet, secret, request_authenticator):
        raise BadReply("the reply's Response Authenticator is wrong (a different secret?)")
    if packet.has_message_authenticator and not codec.verify_message_authenticator(
        packet, secret, request_authenticator
    ):
        raise BadReply("the reply's Message-Authenticator is wrong")


# -- showing the reply --------------------------------------------------------------------------


def reply_lines(packet: codec.Packet, catalog: AttributeCatalog) -> list[str]:
    """``Name = value`` for each reply attribute, vendor attributes unpacked, in wire order.

    The Message-Authenticator is left out: it has been checked, and its value means nothing.
    """
    lines: list[str] = []
    for kind, value in packet.attributes:
        if kind == codec.MESSAGE_AUTHENTICATOR:
            continue
        split = codec.split_vendor_specific(value) if kind == codec.VENDOR_SPECIFIC else None
        if split is None:
            spec = catalog.by_code(kind)
            lines.append(_line(spec, f"Attr-{kind}", value))
            continue
        vendor_id, subs = split
        for sub_type, sub_value in subs:
            spec = catalog.by_code(sub_type, vendor_id)
            lines.append(_line(spec, f"Vendor-{vendor_id}-Attr-{sub_type}", sub_value))
    return lines


def _line(spec: AttributeSpec | None, unknown: str, value: bytes) -> str:
    if spec is None:
        return f"  {unknown} = 0x{value.hex()}"
    name = spec.name
    if spec.has_tag and value and value[0] <= 0x1F:
        # RFC 2868 §3: a tag octet 0x01-0x1F leads the value (the first octet of an integer).
        name = f"{name}:{value[0]}"
        value = value[1:] if spec.type not in _INTEGER_TYPES else bytes(1) + value[1:]
    return f"  {name} = {show_value(spec, value)}"


def show_value(spec: AttributeSpec, value: bytes) -> str:
    """``value`` as text by ``spec``'s type; anything unexpected as 0x hex, never an error."""
    try:
        if spec.encrypt:
            pass  # hidden with the secret: its octets are all there is to show
        elif spec.type == "string":
            text = value.decode()
            if text.isprintable():
                return text
        elif spec.type in _INTEGER_TYPES and len(value) == _INTEGER_TYPES[spec.type]:
            number = int.from_bytes(value, "big", signed=spec.type == "signed")
            named = [name for name, code in spec.values.items() if code == number]
            return named[0] if named else str(number)
        elif spec.type == "date" and len(value) == 4:
            moment = datetime.fromtimestamp(int.from_bytes(value, "big"), UTC)
            return moment.isoformat()
        elif spec.type in ("ipaddr", "ipv6addr") or (
            spec.type == "combo-ip" and len(value) in (4, 16)
        ):
            return str(ipaddress.ip_address(value))
        elif spec.type == "ipv6prefix" and 2 <= len(value) <= 18:
            length = value[1]
            network = ipaddress.IPv6Address(value[2:].ljust(16, b"\0"))
            return f"{network}/{length}"
    except ValueError:
        pass
    return f"0x{value.hex()}"


# -- the command --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    user: str
    password: str
    secret: bytes
    server: str
    port: int
    method: Method
    nas_ip: str
    source: str | None
    calling_station_id: str | None
    timeout: float
    retries: int


def run(options: Options, catalog: AttributeCatalog, say: Callable[[str], None]) -> int:
    """Do one test authentication, telling ``say`` line by line; the exit code.

    Never says the secret: operators paste this output into tickets.
    """
    extra = [nas_address_attribute(options.nas_ip)]
    if options.calling_station_id:
        extra.append(codec.attribute(codec.CALLING_STATION_ID, options.calling_station_id.encode()))
    request = access_request(
        int.from_bytes(os.urandom(1), "big"),
        options.secret,
        options.user,
        options.password,
        *extra,
        method=options.method,
    )
    where = f"{options.server} port {options.port}"
    say(f"Sent Access-Request for {options.user!r} ({options.method}) to {where}")
    try:
        answer = exchange(
            request,
            options.secret,
            options.server,
            options.port,
            source=options.source,
            timeout=options.timeout,
            retries=options.retries,
        )
    except NoAnswer:
        tries = options.retries + 1
        say(
            f"No answer from {where} after {tries} tries, {options.timeout:g} s each. "
            "Is the server running there? Is the secret right? Is a NAS with this "
            "host's address (or --source) configured on the server? Servers drop "
            "requests from unknown NASes, and with a wrong secret, without a word."
        )
        return EXIT_TROUBLE
    except BadReply as exc:
        say(f"Bad reply from {where}: {exc}")
        return EXIT_TROUBLE
    packet = answer.packet
    name = _NAMES.get(packet.code)
    if name is None:
        say(f"Unexpected reply code {packet.code} from {where}")
        return EXIT_TROUBLE
    say(f"{name} from {where} in {answer.round_trip * 1000:.1f} ms")
    for line in reply_lines(packet, catalog):
        say(line)
    if not packet.has_message_authenticator:
        say("warning: the reply has no Message-Authenticator (BlastRADIUS, CVE-2024-3596)")
    if options.method == "mschapv2" and packet.code == codec.Code.ACCESS_ACCEPT:
        say(_mschap_success_check(packet, request, options))
    return EXIT_ACCEPT if packet.code == codec.Code.ACCESS_ACCEPT else EXIT_REJECT


def _mschap_success_check(packet: codec.Packet, request: AccessRequest, options: Options) -> str:
    """Whether MS-CHAP2-Success proves the server knows the password (RFC 2759 §8.7)."""
    success = packet.vendor(codec.VENDOR_MICROSOFT, codec.MS_CHAP2_SUCCESS)
    if success is None:
        return "warning: the Access-Accept has no MS-CHAP2-Success"
    expected = mschap.generate_authenticator_response(
        options.password,
        request.nt_response,
        request.peer_challenge,
        request.auth_challenge,
        options.user.rsplit("\\", 1)[-1].encode(),
    )
    if success[1:].decode(errors="replace").startswith(expected):
        return "MS-CHAP2-Success verified: the server knows the password"
    return "warning: MS-CHAP2-Success does not match; the server may not know the password"
