"""Credential checks of an Access-Request against a contract's cleartext password.

Every check is constant-time in what it compares, and a request for an unknown user (password
None) or with malformed credential attributes does the same hashing work as one for a known
user, against :data:`_DUMMY_PASSWORD`, then fails: response time must not tell an attacker
which user names exist (DESIGN §3). Contract passwords are ``str`` and are compared as the
octets a client sends: UTF-8 for PAP and CHAP, UTF-16LE inside the NT hash for MS-CHAPv2.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from radius_contracts.aaa import mschap, mschap_speedups
from radius_contracts.radius import digest

__all__ = ["MsChapV2Result", "check_chap", "check_mschapv2", "check_pap"]

# Stands in for the password of an unknown user so that path costs what a known user costs.
# It never authenticates anyone: every check also requires a real password (not None).
_DUMMY_PASSWORD = "radius-contracts: no such user"  # noqa: S105

_CHAP_PASSWORD_LEN = 17  # RFC 2865 §5.3: CHAP Ident (1 octet) + Response (16 octets)
_MS_CHAP_CHALLENGE_LEN = 16  # RFC 2548 §2.3.2: 16 octets for MS-CHAPv2
_MS_CHAP2_RESPONSE_LEN = 50  # RFC 2548 §2.3.2: Ident, Flags, Peer-Challenge, Reserved, Response

# Stand-ins for malformed attributes: the right length, so the checks run in full and fail.
_DUMMY_CHAP_PASSWORD = bytes(_CHAP_PASSWORD_LEN)
_DUMMY_MS_CHAP_CHALLENGE = bytes(_MS_CHAP_CHALLENGE_LEN)
_DUMMY_MS_CHAP2_RESPONSE = bytes(_MS_CHAP2_RESPONSE_LEN)

# The C MS-CHAPv2 check, or None: pure Python (see aaa.mschap_speedups).
_FAST = mschap_speedups.module()


def _octets(password: str) -> bytes:
    # surrogatepass: a stored password with a lone surrogate fails to match instead of raising
    # in the middle of an Access-Request.
    return password.encode("utf-8", "surrogatepass")


def check_pap(given: bytes, password: str | None) -> bool:
    """PAP: ``given`` is the decrypted User-Password, its RFC 2865 §5.2 NUL padding removed.

    ``compare_digest`` does not stop at the first differing octet, and with ``given`` second
    its running time follows the length of what the caller sent, not of the stored password.
    (Hashing both sides first would hide lengths too, but costs more than the rest of an
    Access-Request: OpenSSL 3 makes every new hash object expensive.)
    """
    secret = _DUMMY_PASSWORD if password is None else password
    matches = hmac.compare_digest(_octets(secret), given)
    return matches and password is not None


def check_chap(chap_password: bytes, challenge: bytes, password: str | None) -> bool:
    """CHAP (RFC 1994 §4.1, RFC 2865 §2.2 and §5.3).

    ``chap_password`` is the CHAP-Password value, the CHAP Identifier and the 16-octet Response
    MD5(Identifier + secret + challenge); ``challenge`` is CHAP-Challenge or, when the request
    has none, its Request Authenticator (RFC 2865 §2.2).
    """
    well_formed = len(chap_password) == _CHAP_PASSWORD_LEN
    if not well_formed:
        chap_password = _DUMMY_CHAP_PASSWORD
    secret = _DUMMY_PASSWORD if password is None else password
    ident, response = chap_password[:1], chap_password[1:]
    # MD5 is what RFC 1994 specifies; nothing else would interoperate. digest.md5: no hash
    # object per call (OpenSSL 3 makes each new one costly).
    expected = digest.md5(ident + _octets(secret) + challenge)
    matches = hmac.compare_digest(expected, response)
    return matches and well_formed and password is not None


@dataclass(frozen=True, slots=True, repr=False)
class MsChapV2Result:
    """A successful MS-CHAPv2 check: what the Access-Accept must carry.

    ``success`` is the MS-CHAP2-Success value (RFC 2548 §2.3.3): the Ident of the
    MS-CHAP2-Response and the 42-octet ``S=...`` Authenticator Response (RFC 2759 §8.7).
    ``send_key`` and ``recv_key`` are the 16-octet MS-MPPE-Send-Key and MS-MPPE-Recv-Key values
    before the codec salt-encrypts them (RFC 2548 §2.4.2-2.4.3), from the NAS's point of
    view. ``repr`` is off because the keys are secrets.
    """

    success: bytes
    send_key: bytes
    recv_key: bytes


def check_mschapv2(
    user_name: str,
    ms_chap_challenge: bytes,
    ms_chap2_response: bytes,
    password: str | None,
    *,
    fast: mschap_speedups.MsChap | None = _FAST,
) -> MsChapV2Result | None:
    """MS-CHAPv2 over RADIUS (RFC 2548 §2.3.2, RFC 2759 §8): the result, or None on failure.

    ``ms_chap2_response`` is the 50-octet MS-CHAP2-Response value: Ident (1), Flags (1),
    Peer-Challenge (16), Reserved (8), NT-Response (24). ``user_name`` is the User-Name as
    sent; :func:`mschap.challenge_hash` drops a ``DOMAIN\\`` prefix as RFC 2759 §8.2 says.
    Flags and Reserved are not checked: they carry nothing the check depends on.

    ``fast`` is the C check (aaa/_mschap.c), None for the pure Python one; both give the same
    answers. The C check derives everything from the password on every call, in a few
    microseconds, so the first login of a user after a restart costs what later ones do.
    """
    well_formed = (
        len(ms_chap_challenge) == _MS_CHAP_CHALLENGE_LEN
        and len(ms_chap2_response) == _MS_CHAP2_RESPONSE_LEN
    )
    if not well_formed:
        ms_chap_challenge, ms_chap2_response = _DUMMY_MS_CHAP_CHALLENGE, _DUMMY_MS_CHAP2_RESPONSE
    secret = _DUMMY_PASSWORD if password is None else password
    ident = ms_chap2_response[:1]
    # surrogateescape gives back the octets of a User-Name that was not valid UTF-8, if the
    # codec decoded it that way; the hash must see what the peer hashed.
    username = user_name.encode("utf-8", "surrogateescape")
    if fast is not None:
        # bytes(): the C code takes exactly bytes (a memoryview or bytearray would not do).
        found = fast.check(secret, username, bytes(ms_chap_challenge), bytes(ms_chap2_response))
        if found is None or not (well_formed and password is not None):
            return None
        signed, send_key, recv_key = found  # signed: the "S=..." Authenticator Response
        return MsChapV2Result(success=ident + signed, send_key=send_key, recv_key=recv_key)
    prepared = mschap.prepare_password(secret)
    peer_challenge = ms_chap2_response[2:18]
    nt_response = ms_chap2_response[26:50]
    challenge = mschap.challenge_hash(peer_challenge, ms_chap_challenge, username)
    matches = hmac.compare_digest(prepared.challenge_response(challenge), nt_response)
    if not (matches and well_formed and password is not None):
        return None
    send_key, recv_key = prepared.mppe_keys_128(nt_response)
    authenticator_response = prepared.authenticator_response(nt_response, challenge)
    return MsChapV2Result(
        success=ident + authenticator_response.encode("ascii"),
        send_key=send_key,
        recv_key=recv_key,
    )
