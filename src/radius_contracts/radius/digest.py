"""MD5 and HMAC-MD5 for packets: the C wire code's when it is built, else CPython's own.

MD5 is what RFC 2865/2866/2868/5176 prescribe for authenticators and hiding, and HMAC-MD5
(RFC 2104) what RFC 3579 §3.2 prescribes for Message-Authenticator: the protocol's security
rests on the shared secret, and we cannot choose another hash.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from collections.abc import Callable
from typing import Final, Protocol

from radius_contracts.radius import wire_speedups

__all__ = ["hmac_md5", "md5"]


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def copy(self) -> _Hash: ...


def _md5_constructor() -> Callable[[bytes], _Hash]:
    # CPython's own MD5 (module _md5) is about twice as fast as OpenSSL's for packet-sized
    # inputs here, because OpenSSL 3 looks the algorithm up again for every new hash object.
    # It is an implementation detail of CPython, so fall back to hashlib when it is missing.
    try:
        module = importlib.import_module("_md5")
    except ImportError:
        return hashlib.md5
    constructor: Callable[[bytes], _Hash] = module.md5
    return constructor


_new_md5: Final = _md5_constructor()


def _py_md5(data: bytes) -> bytes:
    # MD5 is what RFC 2865/2866/2868/5176 prescribe for authenticators and hiding; the
    # protocol's security rests on the shared secret, and we cannot choose another hash.
    return _new_md5(data).digest()


@functools.lru_cache(maxsize=4096)
def _hmac_pads(secret: bytes) -> tuple[_Hash, _Hash]:
    # RFC 2104 §2: HMAC(K, text) = H(K XOR opad, H(K XOR ipad, text)), a key longer than the
    # 64-octet block hashed first. Hashing the two padded keys once per secret and copying
    # the states saves two compression rounds per packet; with OpenSSL 3, hmac.digest() costs
    # about four times this (it builds a fresh EVP context per call).
    key = _py_md5(secret) if len(secret) > 64 else secret
    key = key.ljust(64, b"\x00")
    inner = _new_md5(bytes(octet ^ 0x36 for octet in key))
    outer = _new_md5(bytes(octet ^ 0x5C for octet in key))
    return inner, outer


def _py_hmac_md5(secret: bytes, *parts: bytes) -> bytes:
    inner_pad, outer_pad = _hmac_pads(secret)
    inner = inner_pad.copy()
    for part in parts:
        inner.update(part)
    outer = outer_pad.copy()
    outer.update(inner.digest())
    return outer.digest()


_WIRE = wire_speedups.module()
# The C wire code computes the same digests without a Python object per step.
md5: Final[Callable[[bytes], bytes]] = _WIRE.md5 if _WIRE is not None else _py_md5
"""MD5 of one string: the C wire code's, else CPython's own (no hash object per call)."""
hmac_md5: Final[Callable[..., bytes]] = _WIRE.hmac_md5 if _WIRE is not None else _py_hmac_md5
"""HMAC-MD5 of the concatenated parts under a secret (the padded keys hashed once per secret)."""
