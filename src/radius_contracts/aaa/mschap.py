"""MS-CHAPv2 (RFC 2759 §8) and its MPPE key derivation (RFC 3079 §3.4), for both ends.

The server checks a peer's NT-Response and answers with the Authenticator Response and the MPPE
keys; tests and the ``test-auth`` CLI play the peer with the same primitives. Names follow the
RFC pseudocode so each function can be read next to its section.

Cost: with pycryptodome, MD4 and building a DES key schedule cost ~13 µs each while one DES
block costs ~7 µs, so a check that started from the cleartext password every time would spend
~80 µs on work that depends on the password alone. :func:`prepare_password` does that work
once per password (bounded LRU cache) and keeps the three DES key schedules; a check then costs
one SHA-1 and three DES blocks.

This is the pure Python path. When the C check (aaa/_mschap.c, through
:mod:`radius_contracts.aaa.mschap_speedups`) is built, :func:`authenticate.check_mschapv2` uses
it instead: it does the whole server side in a few microseconds and keeps nothing per password.
"""

# MD4, SHA-1 and single DES are what RFC 2759 and RFC 3079 specify; nothing else interoperates.
# ruff: noqa: S303, S304, S324

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from Crypto.Cipher import DES
from Crypto.Hash import MD4

__all__ = [
    "PreparedPassword",
    "asymmetric_start_key",
    "authenticator_response",
    "challenge_hash",
    "challenge_response",
    "des_key",
    "generate_authenticator_response",
    "generate_nt_response",
    "hash_nt_password_hash",
    "master_key",
    "mppe_keys_128",
    "nt_password_hash",
    "prepare_password",
]

# RFC 2759 §8.7 Magic1 (39 octets) and Magic2 (41 octets).
_MAGIC_SIGNING = b"Magic server to client signing constant"
_MAGIC_PAD = b"Pad to make it do more than one iteration"

# RFC 3079 §3.4 Magic1 (27 octets), Magic2 and Magic3 (84 octets each), SHSpad1/SHSpad2.
_MAGIC_MASTER_KEY = b"This is the MPPE Master Key"
_MAGIC_CLIENT_SEND = (
    b"On the client side, this is the send key; on the server side, it is the receive key."
)
_MAGIC_CLIENT_RECEIVE = (
    b"On the client side, this is the receive key; on the server side, it is the send key."
)
_SHS_PAD1 = bytes(40)
_SHS_PAD2 = b"\xf2" * 40

# 7 key bits -> one DES key octet: the bits shifted left and the low bit set for odd parity.
# RFC 2759 §8.6: DES ignores the parity bits, so any value would do; setting them makes the
# keys equal the parity-corrected ones of RFC 2759 §9.3 and keeps strict DES engines happy.
_WITH_PARITY = bytes((bits << 1) | (bin(bits).count("1") + 1) % 2 for bits in range(128))

# How many prepared passwords to keep: an entry (hashes plus three DES key schedules) takes
# ~2.2 KiB of memory, so the cache stays under 10 MiB; a miss costs ~60 µs more than a hit.
PREPARED_CACHE_SIZE = 4096


def nt_password_hash(password: str) -> bytes:
    """RFC 2759 §8.3 NtPasswordHash: MD4 of the password in UTF-16LE ("unicode-char").

    ``surrogatepass`` keeps a lone surrogate as the code unit Windows would hash instead of
    raising; characters outside the BMP become surrogate pairs, as in Windows.
    """
    return MD4.new(password.encode("utf-16-le", "surrogatepass")).digest()


def hash_nt_password_hash(password_hash: bytes) -> bytes:
    """RFC 2759 §8.4 HashNtPasswordHash: MD4 of the 16-octet PasswordHash."""
    return MD4.new(password_hash).digest()


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: bytes) -> bytes:
    """RFC 2759 §8.2 ChallengeHash: the first 8 octets of SHA-1(peer, authenticator, name).

    ``username`` is the name as the peer sent it (the RADIUS User-Name). §8.2: "Only the user
    name (as presented by the peer and excluding any prepended domain name) is used", so a
    Windows ``DOMAIN\\user`` is hashed as ``user``. Both ends strip here, so the peer helpers
    below and the server agree whatever form of the name they are given.
    """
    _domain, separator, name = username.partition(b"\\")
    if separator:
        username = name
    return hashlib.sha1(peer_challenge + authenticator_challenge + username).digest()[:8]


def des_key(key7: bytes) -> bytes:
    """Spread a 7-octet (56-bit) key over 8 octets with odd parity (RFC 2759 §8.6, §9.3)."""
    bits = int.from_bytes(key7, "big")
    return bytes(_WITH_PARITY[(bits >> shift) & 0x7F] for shift in range(49, -1, -7))


def _des_encryptors(password_hash: bytes) -> tuple[Callable[[bytes], bytes], ...]:
    """The three DES-ECB encryptors of §8.5, keyed from PasswordHash zero-padded to 21 octets."""
    z_password_hash = password_hash + bytes(5)
    encryptors: list[Callable[[bytes], bytes]] = []
    for start in (0, 7, 14):
        cipher = DES.new(des_key(z_password_hash[start : start + 7]), DES.MODE_ECB)
        encryptors.append(cipher.encrypt)
    return tuple(encryptors)


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    """RFC 2759 §8.5 ChallengeResponse: 24 octets, three DES encryptions of the challenge."""
    if len(challenge) != 8 or len(password_hash) != 16:
        raise ValueError("ChallengeResponse takes an 8-octet challenge and a 16-octet hash")
    return b"".join(encrypt(challenge) for encrypt in _des_encryptors(password_hash))


def generate_nt_response(
    authenticator_challenge: bytes, peer_challenge: bytes, username: bytes, password: str
) -> bytes:
    """RFC 2759 §8.1 GenerateNTResponse: what the peer sends as NT-Response (24 octets)."""
    challenge = challenge_hash(peer_challenge, authenticator_challenge, username)
    return challenge_response(challenge, nt_password_hash(password))


def authenticator_response(password_hash_hash: bytes, nt_response: bytes, challenge: bytes) -> str:
    """The digest part of RFC 2759 §8.7, from PasswordHashHash and the 8-octet ChallengeHash.

    Split out so the server, which already holds both, does not hash them again.
    """
    digest = hashlib.sha1(password_hash_hash + nt_response + _MAGIC_SIGNING).digest()
    digest = hashlib.sha1(digest + challenge + _MAGIC_PAD).digest()
    return "S=" + digest.hex().upper()


def generate_authenticator_response(
    password: str | bytes,
    nt_response: bytes,
    peer_challenge: bytes,
    authenticator_challenge: bytes,
    username: bytes,
) -> str:
    """RFC 2759 §8.7 GenerateAuthenticatorResponse: ``"S="`` and 40 uppercase hex digits.

    ``password`` is the cleartext password, or (as ``bytes``) its 16-octet NtPasswordHash.
    The peer compares the result with the one in the Success packet (§8.8).
    """
    password_hash = nt_password_hash(password) if isinstance(password, str) else password
    challenge = challenge_hash(peer_challenge, authenticator_challenge, username)
    return authenticator_response(hash_nt_password_hash(password_hash), nt_response, challenge)


def master_key(password_hash_hash: bytes, nt_response: bytes) -> bytes:
    """RFC 3079 §3.4 GetMasterKey: the first 16 octets of SHA-1(hash hash, NT-Response, Magic1)."""
    return hashlib.sha1(password_hash_hash + nt_response + _MAGIC_MASTER_KEY).digest()[:16]


def asymmetric_start_key(master: bytes, length: int, is_send: bool, is_server: bool) -> bytes:
    """RFC 3079 §3.4 GetAsymmetricStartKey: a ``length``-octet start key (8 or 16).

    The magic string names the direction, not the side: the server's send key is the client's
    receive key (Magic3, "on the server side, it is the send key") and vice versa (Magic2).
    """
    if length not in (8, 16):
        raise ValueError("MPPE start keys are 8 (40/56-bit) or 16 (128-bit) octets")
    client_to_server = is_send != is_server  # client sends, or server receives
    magic = _MAGIC_CLIENT_SEND if client_to_server else _MAGIC_CLIENT_RECEIVE
    return hashlib.sha1(master + _SHS_PAD1 + magic + _SHS_PAD2).digest()[:length]


def mppe_keys_128(password_hash: bytes, nt_response: bytes) -> tuple[bytes, bytes]:
    """The 128-bit MPPE start keys as ``(send_key, recv_key)`` from the server's point of view.

    RFC 2548 §2.4.2: MS-MPPE-Send-Key is "for encrypting packets sent from the NAS to the
    remote host", §2.4.3: MS-MPPE-Recv-Key for packets "received by the NAS from the remote
    host". The NAS is the server end of the link, so Send-Key is GetAsymmetricStartKey(IsSend,
    IsServer) (Magic3), the SendStartKey128 of RFC 3079 §3.5.3, and Recv-Key uses Magic2.
    """
    master = master_key(hash_nt_password_hash(password_hash), nt_response)
    return _server_keys(master)


def _server_keys(master: bytes) -> tuple[bytes, bytes]:
    send = asymmetric_start_key(master, 16, is_send=True, is_server=True)
    receive = asymmetric_start_key(master, 16, is_send=False, is_server=True)
    return send, receive


@dataclass(frozen=True, slots=True, repr=False)
class PreparedPassword:
    """Everything the server derives from a password alone, built once per password.

    ``repr`` is off: the hashes are password equivalents (anyone holding PasswordHash can
    answer any challenge) and must not reach logs.
    """

    password_hash: bytes
    password_hash_hash: bytes
    _encryptors: tuple[Callable[[bytes], bytes], ...]

    def challenge_response(self, challenge: bytes) -> bytes:
        """§8.5 ChallengeResponse with the key schedules made once (challenge: 8 octets)."""
        first, second, third = self._encryptors
        return first(challenge) + second(challenge) + third(challenge)

    def authenticator_response(self, nt_response: bytes, challenge: bytes) -> str:
        """§8.7 for this password, given the NT-Response and the 8-octet ChallengeHash."""
        return authenticator_response(self.password_hash_hash, nt_response, challenge)

    def mppe_keys_128(self, nt_response: bytes) -> tuple[bytes, bytes]:
        """Server ``(send_key, recv_key)``, as :func:`mppe_keys_128`."""
        return _server_keys(master_key(self.password_hash_hash, nt_response))


@lru_cache(maxsize=PREPARED_CACHE_SIZE)
def prepare_password(password: str) -> PreparedPassword:
    """The hashes and DES key schedules of ``password``, cached (see the module docstring).

    The authorization index may call this when it loads a contract so that even the first
    MS-CHAPv2 request of a subscriber costs what later ones cost.
    """
    password_hash = nt_password_hash(password)
    return PreparedPassword(
        password_hash=password_hash,
        password_hash_hash=hash_nt_password_hash(password_hash),
        _encryptors=_des_encryptors(password_hash),
    )
