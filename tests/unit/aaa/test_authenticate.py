"""PAP, CHAP and MS-CHAPv2 checks against a contract's cleartext password."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import pytest

from radius_contracts.aaa import authenticate, mschap, mschap_speedups
from radius_contracts.aaa.authenticate import MsChapV2Result, check_chap, check_mschapv2, check_pap

DUMMY = authenticate._DUMMY_PASSWORD
NON_ASCII = "Pässwörd €😀"


# --- PAP -------------------------------------------------------------------------------------


def test_pap_accepts_the_password() -> None:
    assert check_pap(b"clientPass", "clientPass")


@pytest.mark.parametrize("given", [b"clientpass", b"clientPas", b"clientPass!", b"", b"\x00"])
def test_pap_rejects_anything_else(given: bytes) -> None:
    assert not check_pap(given, "clientPass")


def test_pap_compares_utf8_octets() -> None:
    assert check_pap(NON_ASCII.encode("utf-8"), NON_ASCII)
    assert not check_pap("Pässwörd".encode("latin-1"), "Pässwörd")


def test_pap_unknown_user_fails_even_with_the_dummy_password() -> None:
    assert not check_pap(b"clientPass", None)
    assert not check_pap(DUMMY.encode(), None)


# --- CHAP ------------------------------------------------------------------------------------


def chap_password(ident: int, secret: bytes, challenge: bytes) -> bytes:
    """What the peer sends (RFC 1994 §4.1): Identifier + MD5(Identifier + secret + challenge)."""
    return bytes([ident]) + hashlib.md5(bytes([ident]) + secret + challenge).digest()


CHALLENGE = bytes(range(16))


def test_chap_accepts_the_password() -> None:
    assert check_chap(chap_password(7, b"clientPass", CHALLENGE), CHALLENGE, "clientPass")


def test_chap_takes_a_chap_challenge_of_any_length() -> None:
    challenge = b"a CHAP-Challenge of 27 octets"
    assert check_chap(chap_password(0, b"s3cret", challenge), challenge, "s3cret")


def test_chap_rejects_a_wrong_password_challenge_or_identifier() -> None:
    good = chap_password(7, b"clientPass", CHALLENGE)
    assert not check_chap(chap_password(7, b"clientpass", CHALLENGE), CHALLENGE, "clientPass")
    assert not check_chap(good, bytes(16), "clientPass")
    assert not check_chap(bytes([8]) + good[1:], CHALLENGE, "clientPass")


@pytest.mark.parametrize("length", [0, 1, 16, 18])
def test_chap_rejects_a_chap_password_of_the_wrong_length(length: int) -> None:
    good = chap_password(7, b"clientPass", CHALLENGE)
    malformed = (good + bytes(2))[:length]
    assert not check_chap(malformed, CHALLENGE, "clientPass")


def test_chap_all_zero_input_never_matches_even_for_the_dummy() -> None:
    # A malformed CHAP-Password is replaced by 17 zero octets; that must not match anything.
    assert not check_chap(bytes(17), CHALLENGE, DUMMY)


def test_chap_hashes_utf8_octets() -> None:
    response = chap_password(1, NON_ASCII.encode("utf-8"), CHALLENGE)
    assert check_chap(response, CHALLENGE, NON_ASCII)
    latin1 = chap_password(1, "Pässwörd".encode("latin-1"), CHALLENGE)
    assert not check_chap(latin1, CHALLENGE, "Pässwörd")


def test_chap_unknown_user_fails_even_with_the_dummy_password() -> None:
    assert not check_chap(chap_password(7, DUMMY.encode(), CHALLENGE), CHALLENGE, None)


# --- MS-CHAPv2 -------------------------------------------------------------------------------

# RFC 2759 §9.2 sample data; the expected keys are those of test_mschap.
AUTHENTICATOR_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
AUTHENTICATOR_RESPONSE = b"S=407A5589115FD0D6209F510FE9C04566932CDA56"
SEND_KEY = bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")
RECV_KEY = bytes.fromhex("D5F0E9521E3EA9589645E86051C82226")


# Every MS-CHAPv2 test runs on the C check (aaa/_mschap.c) when it is built and on the pure
# Python one; the daemon takes the first it has.
Check = Callable[[str, bytes, bytes, str | None], MsChapV2Result | None]
_IMPLEMENTATIONS = {"python": None, "c": mschap_speedups.module()}


@pytest.fixture(params=sorted(_IMPLEMENTATIONS))
def check(request: pytest.FixtureRequest) -> Check:
    fast = _IMPLEMENTATIONS[request.param]
    if request.param == "c" and fast is None:
        pytest.skip("the C MS-CHAPv2 check is not built")
    return functools.partial(check_mschapv2, fast=fast)


def ms_chap2_response(
    user: bytes,
    password: str,
    *,
    ident: int = 0x2A,
    flags: int = 0,
    reserved: bytes = bytes(8),
    authenticator_challenge: bytes = AUTHENTICATOR_CHALLENGE,
) -> bytes:
    """The peer's MS-CHAP2-Response value (RFC 2548 §2.3.2)."""
    nt_response = mschap.generate_nt_response(
        authenticator_challenge, PEER_CHALLENGE, user, password
    )
    return bytes([ident, flags]) + PEER_CHALLENGE + reserved + nt_response


def test_mschapv2_accepts_the_rfc_sample(check: Check) -> None:
    result = check(
        "User", AUTHENTICATOR_CHALLENGE, ms_chap2_response(b"User", "clientPass"), "clientPass"
    )
    assert result is not None
    assert result.success == b"\x2a" + AUTHENTICATOR_RESPONSE  # MS-CHAP2-Success, 43 octets
    assert result.send_key == SEND_KEY
    assert result.recv_key == RECV_KEY
    assert SEND_KEY.hex() not in repr(result).lower()


def test_mschapv2_ignores_flags_and_reserved(check: Check) -> None:
    response = ms_chap2_response(b"User", "clientPass", flags=1, reserved=b"\xff" * 8)
    assert check("User", AUTHENTICATOR_CHALLENGE, response, "clientPass") is not None


def test_mschapv2_rejects_a_wrong_password_user_name_or_challenge(check: Check) -> None:
    response = ms_chap2_response(b"User", "clientPass")
    assert check("User", AUTHENTICATOR_CHALLENGE, response, "clientpass") is None
    assert check("user", AUTHENTICATOR_CHALLENGE, response, "clientPass") is None
    assert check("User", bytes(16), response, "clientPass") is None


def test_mschapv2_unknown_user_fails_even_with_the_dummy_password(check: Check) -> None:
    response = ms_chap2_response(b"User", DUMMY)
    assert check("User", AUTHENTICATOR_CHALLENGE, response, None) is None


@pytest.mark.parametrize(
    ("challenge_length", "response_length"), [(15, 50), (17, 50), (16, 49), (16, 51), (0, 0)]
)
def test_mschapv2_rejects_wrong_lengths(
    check: Check, challenge_length: int, response_length: int
) -> None:
    challenge = (AUTHENTICATOR_CHALLENGE + bytes(1))[:challenge_length]
    response = (ms_chap2_response(b"User", "clientPass") + bytes(1))[:response_length]
    assert check("User", challenge, response, "clientPass") is None


def test_mschapv2_all_zero_input_never_matches_even_for_the_dummy(check: Check) -> None:
    assert check("User", bytes(16), bytes(50), DUMMY) is None


def test_mschapv2_strips_a_windows_domain_from_the_user_name(check: Check) -> None:
    # RFC 2759 §8.2: the peer hashes "User" although it sends "EXAMPLE\User" as User-Name.
    response = ms_chap2_response(b"User", "clientPass")
    result = check("EXAMPLE\\User", AUTHENTICATOR_CHALLENGE, response, "clientPass")
    assert result is not None
    assert result.success == b"\x2a" + AUTHENTICATOR_RESPONSE
    # A peer that hands the full name to the primitives gets the same answer.
    response = ms_chap2_response(b"EXAMPLE\\User", "clientPass")
    assert check("User", AUTHENTICATOR_CHALLENGE, response, "clientPass") is not None


def test_mschapv2_non_ascii_password_and_user_name(check: Check) -> None:
    user = "José"
    response = ms_chap2_response(user.encode("utf-8"), NON_ASCII)
    result = check(user, AUTHENTICATOR_CHALLENGE, response, NON_ASCII)
    assert result is not None
    keys = mschap.mppe_keys_128(mschap.nt_password_hash(NON_ASCII), response[26:])
    assert (result.send_key, result.recv_key) == keys
    assert check(user, AUTHENTICATOR_CHALLENGE, response, "Pässwörd €") is None


def test_mschapv2_user_name_octets_survive_surrogateescape(check: Check) -> None:
    # A User-Name that is not UTF-8, decoded by the codec with surrogateescape.
    raw = b"caf\xe9"
    response = ms_chap2_response(raw, "clientPass")
    user = raw.decode("utf-8", "surrogateescape")
    assert check(user, AUTHENTICATOR_CHALLENGE, response, "clientPass") is not None
