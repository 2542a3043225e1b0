"""Hiding attribute values: User-Password style (RFC 2865 §5.2) and salted (RFC 2868 §3.5,
RFC 2548 §2.4.2), each block keyed with MD5 over the shared secret (radius.digest)."""

from __future__ import annotations

import os

from radius_contracts.radius import wire_speedups
from radius_contracts.radius.digest import md5

__all__ = [
    "decrypt_user_password",
    "hide_user_password",
    "new_salt",
    "new_salts",
    "salt_decrypt",
    "salt_encrypt",
]

_WIRE = wire_speedups.module()


def hide_user_password(plain: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Hide ``plain`` as RFC 2865 §5.2 describes (User-Password, encrypt=1 attributes).

    Raises ValueError for more than 128 octets.
    """
    if len(plain) > 128:
        raise ValueError(f"{len(plain)} octets, RFC 2865 §5.2 allows 128")
    # RFC 2865 §5.2: "The password is first padded at the end with nulls to a multiple of
    # 16 octets." An empty one still takes a block: the attribute is 16..128 octets.
    padded = plain + bytes(-len(plain) % 16) if plain else bytes(16)
    return _chain_encrypt(padded, secret, authenticator)


def decrypt_user_password(value: bytes, secret: bytes, authenticator: bytes) -> bytes | None:
    """Reverse RFC 2865 §5.2 hiding; None if the length is not 16..128 in steps of 16.

    Only trailing NULs (the padding) are removed; the result is octets, not text.
    """
    if _WIRE is not None:
        return _WIRE.decrypt_password(value, secret, authenticator)
    size = len(value)
    if size < 16 or size > 128 or size % 16:
        return None
    # Every key block is MD5(secret + previous ciphertext block), and the ciphertext is what
    # we hold, so the whole keystream is known up front and one XOR does all blocks.
    stream = md5(secret + authenticator)
    for start in range(16, size, 16):
        stream += md5(secret + value[start - 16 : start])
    plain = (int.from_bytes(value, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
    return plain.rstrip(b"\x00")


def salt_encrypt(plain: bytes, secret: bytes, authenticator: bytes, salt: bytes) -> bytes:
    """Encrypt with the salted scheme of RFC 2868 §3.5 / RFC 2548 §2.4.2; returns salt + data.

    ``authenticator`` is the Request Authenticator of the request being answered. The salt is
    two octets with the high bit set. Raises ValueError if the result would not fit an
    attribute (``plain`` over 239 octets) or the salt is invalid.
    """
    if _WIRE is not None:
        return _WIRE.salt_encrypt(bytes(plain), secret, authenticator, salt)
    return _py_salt_encrypt(plain, secret, authenticator, salt)


def _py_salt_encrypt(plain: bytes, secret: bytes, authenticator: bytes, salt: bytes) -> bytes:
    if len(salt) != 2 or not salt[0] & 0x80:
        raise ValueError("the salt is two octets with the high bit set (RFC 2868 §3.5)")
    if len(authenticator) != 16:
        raise ValueError("a Request Authenticator is 16 octets")
    if len(plain) > 239:
        # 1 length octet + 239 = 240 = 15 blocks; with the 2 salt octets and a tag that is
        # 243 octets, and a 16th block would pass the 253-octet value limit.
        raise ValueError(f"{len(plain)} octets, at most 239 fit when salt-encrypted")
    # RFC 2868 §3.5: the plaintext is a one-octet length of the data, the data, and zero
    # padding to a multiple of 16 octets.
    padded = bytes((len(plain),)) + plain
    padded += bytes(-len(padded) % 16)
    # RFC 2868 §3.5: b(1) = MD5(S + R + A), where A is the salt.
    return salt + _chain_encrypt(padded, secret, authenticator + salt)


def salt_decrypt(value: bytes, secret: bytes, authenticator: bytes) -> bytes | None:
    """Reverse :func:`salt_encrypt` (``value`` starts with the salt, no tag); None if invalid."""
    size = len(value) - 2
    if size < 16 or size % 16 or not value[0] & 0x80:
        return None
    cipher = value[2:]
    stream = md5(secret + authenticator + value[:2])
    for start in range(16, size, 16):
        stream += md5(secret + cipher[start - 16 : start])
    plain = (int.from_bytes(cipher, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
    length = plain[0]
    if length > size - 1:
        return None
    return plain[1 : 1 + length]


def _chain_encrypt(padded: bytes, secret: bytes, first: bytes) -> bytes:
    # RFC 2865 §5.2 / RFC 2868 §3.5: c(i) = p(i) xor MD5(S + c(i-1)), the first block keyed
    # on MD5(S + first). Each key needs the previous ciphertext block, so block by block.
    blocks = []
    size = len(padded)
    key = md5(secret + first)
    for start in range(0, size, 16):
        block = (
            int.from_bytes(padded[start : start + 16], "big") ^ int.from_bytes(key, "big")
        ).to_bytes(16, "big")
        blocks.append(block)
        if start + 16 < size:
            key = md5(secret + block)
    return b"".join(blocks)


def new_salt(used: set[int]) -> bytes:
    # RFC 2868 §3.5 and RFC 2548 §2.4.2 alike: the most significant bit of the Salt MUST be
    # set, and "The contents of each Salt field in a given Access-Accept packet MUST be
    # unique" (equal salts would give equal keystreams). One set covers all of a packet.
    while True:
        salt = int.from_bytes(os.urandom(2), "big") | 0x8000
        if salt not in used:
            used.add(salt)
            return salt.to_bytes(2, "big")


def new_salts(count: int) -> list[bytes]:
    """``count`` different salts as :func:`new_salt` makes them, from one getrandom call
    (a system call per salt cost more than the rest of encrypting an MPPE key)."""
    while True:
        raw = os.urandom(2 * count)
        salts = [bytes((raw[i] | 0x80, raw[i + 1])) for i in range(0, 2 * count, 2)]
        if len(set(salts)) == count:  # a repeat (1 in 32,768 for two): draw them all again
            return salts
