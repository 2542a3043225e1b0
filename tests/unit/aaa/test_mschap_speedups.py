"""The optional C MS-CHAPv2 check gives exactly what the pure Python one gives.

Known answers first (RFC 1320 §A.5, FIPS 180-4's "abc", RFC 2759 §9, RFC 3079 §3.5), then
random inputs against the Python twins: pycryptodome's MD4 and DES, hashlib's SHA-1 and
aaa/mschap.py for the whole check.
"""

from __future__ import annotations

import hashlib
import os
import random

import pytest
from Crypto.Cipher import DES
from Crypto.Hash import MD4

from radius_contracts.aaa import authenticate, mschap, mschap_speedups

_c = mschap_speedups.module()
pytestmark = pytest.mark.skipif(_c is None, reason="the C MS-CHAPv2 check is not built")


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# RFC 2759 §9.2 (and RFC 3079 §3.5.3 for the keys); the same values as test_mschap.py.
USER = b"User"
PASSWORD = "clientPass"
AUTHENTICATOR_CHALLENGE = h("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = h("21402324255E262A28295F2B3A337C7E")
PASSWORD_HASH = h("44EBBA8D5312B8D611474411F56989AE")
NT_RESPONSE = h("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
AUTHENTICATOR_RESPONSE = b"S=407A5589115FD0D6209F510FE9C04566932CDA56"
SEND_KEY = h("8B7CDC149B993A1BA118CB153F56DCCB")
RECV_KEY = h("D5F0E9521E3EA9589645E86051C82226")
RESPONSE = bytes([0x2A, 0]) + PEER_CHALLENGE + bytes(8) + NT_RESPONSE


def test_md4_known_answers() -> None:
    assert _c is not None
    # RFC 1320 §A.5 test suite.
    suite = {
        b"": "31d6cfe0d16ae931b73c59d7e0c089c0",
        b"a": "bde52cb31de33e46245e05fbdbd6fb24",
        b"abc": "a448017aaf21d8525fc10ae87aa6729d",
        b"message digest": "d9130a8164549fe818874806e1c7014b",
        b"abcdefghijklmnopqrstuvwxyz": "d79e1c308aa5bbcdeea8ed63df412da9",
        b"12345678901234567890123456789012345678901234567890123456789012345678901234567890": (
            "e33b4ddc9c38f2199c3e7b164fcc0536"
        ),
    }
    for data, digest in suite.items():
        assert _c.md4(data).hex() == digest, data


def test_sha1_known_answer() -> None:
    assert _c is not None
    assert _c.sha1(b"abc").hex() == "a9993e364706816aba3e25717850c26c9cd0d89d"  # FIPS 180-4


@pytest.mark.parametrize("size", [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 300])
def test_hashes_match_their_python_twins_at_every_padding_boundary(size: int) -> None:
    assert _c is not None
    data = os.urandom(size)
    assert _c.md4(data) == MD4.new(data).digest()
    assert _c.sha1(data) == hashlib.sha1(data).digest()


def test_des_matches_pycryptodome_on_the_rfc_keys_and_random_ones() -> None:
    assert _c is not None
    # RFC 2759 §9.3: the 7-octet thirds of NtPasswordHash("MyPw") become these DES keys.
    password_hash = h("FC156AF7EDCD6C0EDDE3337D427F4EAC")
    for key7, key8 in (
        (password_hash[:7], "FD0B5B5E7F6E34D9"),
        (password_hash[7:14], "0E6E796737EA08FE"),
    ):
        block = os.urandom(8)
        assert _c.des_encrypt(key7, block) == DES.new(h(key8), DES.MODE_ECB).encrypt(block)
    rng = random.Random(2759)
    for _ in range(2000):
        key7, block = rng.randbytes(7), rng.randbytes(8)
        expected = DES.new(mschap.des_key(key7), DES.MODE_ECB).encrypt(block)
        assert _c.des_encrypt(key7, block) == expected, (key7.hex(), block.hex())


def test_rfc2759_sample_through_the_c_check() -> None:
    assert _c is not None
    assert _c.nt_password_hash(PASSWORD) == PASSWORD_HASH
    challenge = mschap.challenge_hash(PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER)
    thirds = (PASSWORD_HASH + bytes(5))[0:7], PASSWORD_HASH[7:14], (PASSWORD_HASH + bytes(5))[14:21]
    assert b"".join(_c.des_encrypt(third, challenge) for third in thirds) == NT_RESPONSE
    found = _c.check(PASSWORD, USER, AUTHENTICATOR_CHALLENGE, RESPONSE)
    assert found == (AUTHENTICATOR_RESPONSE, SEND_KEY, RECV_KEY)
    # RFC 2759 §8.2: a prepended Windows domain is not hashed.
    assert _c.check(PASSWORD, b"EXAMPLE\\User", AUTHENTICATOR_CHALLENGE, RESPONSE) == found


def test_the_c_check_refuses_any_change_to_what_is_signed() -> None:
    assert _c is not None
    assert _c.check("clientpass", USER, AUTHENTICATOR_CHALLENGE, RESPONSE) is None
    assert _c.check(PASSWORD, b"user", AUTHENTICATOR_CHALLENGE, RESPONSE) is None
    assert _c.check(PASSWORD, USER, bytes(16), RESPONSE) is None
    for octet in [*range(2, 18), *range(26, 50)]:  # Peer-Challenge and NT-Response
        flipped = bytearray(RESPONSE)
        flipped[octet] ^= 0x01
        assert _c.check(PASSWORD, USER, AUTHENTICATOR_CHALLENGE, bytes(flipped)) is None, octet


def test_the_c_check_refuses_bad_arguments() -> None:
    assert _c is not None
    with pytest.raises(ValueError, match="16 octets"):
        _c.check(PASSWORD, USER, AUTHENTICATOR_CHALLENGE[:15], RESPONSE)
    with pytest.raises(ValueError, match="50 octets"):
        _c.check(PASSWORD, USER, AUTHENTICATOR_CHALLENGE, RESPONSE + b"\x00")
    with pytest.raises(TypeError, match="str"):
        _c.check(PASSWORD.encode(), USER, AUTHENTICATOR_CHALLENGE, RESPONSE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        _c.check(PASSWORD, "User", AUTHENTICATOR_CHALLENGE, RESPONSE)  # type: ignore[arg-type]


def _random_password(rng: random.Random) -> str:
    # ASCII, Latin-1, the BMP, astral characters (surrogate pairs in UTF-16) and a lone
    # surrogate; lengths across MD4's 64-octet block boundaries (32 UTF-16 code units).
    alphabet = "abcXYZ019 !\\éß€中\U0001f600\ud800"
    return "".join(
        rng.choice(alphabet) for _ in range(rng.choice([0, 1, 8, 27, 28, 31, 32, 33, 64, 100]))
    )


def _random_name(rng: random.Random) -> bytes:
    name = rng.randbytes(rng.randrange(0, 80))
    if rng.random() < 0.3:
        name = b"DOMAIN\\" + name
    return name


def test_the_c_check_agrees_with_python_on_random_logins() -> None:
    assert _c is not None
    rng = random.Random(3079)
    for _ in range(300):
        password = _random_password(rng)
        name = _random_name(rng)
        user_name = name.decode("utf-8", "surrogateescape")
        authenticator_challenge, peer_challenge = rng.randbytes(16), rng.randbytes(16)
        nt_response = mschap.generate_nt_response(
            authenticator_challenge, peer_challenge, name, password
        )
        response = rng.randbytes(2) + peer_challenge + rng.randbytes(8) + nt_response
        python = authenticate.check_mschapv2(
            user_name, authenticator_challenge, response, password, fast=None
        )
        fast = authenticate.check_mschapv2(
            user_name, authenticator_challenge, response, password, fast=_c
        )
        assert python is not None and fast is not None, (password, name)
        assert (fast.success, fast.send_key, fast.recv_key) == (
            python.success,
            python.send_key,
            python.recv_key,
        )
        assert _c.nt_password_hash(password) == mschap.nt_password_hash(password)
        # Someone else's password, or a random NT-Response: both refuse.
        other = _random_password(rng) + "x"
        for args in (
            (user_name, authenticator_challenge, response, other),
            (user_name, authenticator_challenge, response[:26] + rng.randbytes(24), password),
        ):
            assert authenticate.check_mschapv2(*args, fast=None) is None
            assert authenticate.check_mschapv2(*args, fast=_c) is None


def test_the_daemon_takes_the_c_check_unless_told_not_to() -> None:
    # scripts/test.sh runs some tests again with RADIUS_CONTRACTS_PURE_PYTHON=1; this module is
    # skipped there, and here the C check must be the one authenticate uses by default.
    assert os.environ.get("RADIUS_CONTRACTS_PURE_PYTHON") != "1"
    assert authenticate._FAST is _c
