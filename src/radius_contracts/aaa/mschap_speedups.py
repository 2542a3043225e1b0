"""The optional C MS-CHAPv2 check (``_mschap``, see _mschap.c): loaded once, or None.

None when it was not built (no C compiler or Python headers at install time) or when
``RADIUS_CONTRACTS_PURE_PYTHON=1`` asks for the pure Python path (aaa/mschap.py); both give
the same answers (tests/unit/aaa/test_mschap_speedups.py).
"""

from __future__ import annotations

from typing import Protocol, cast

from radius_contracts.radius.wire_speedups import load_optional

__all__ = ["MsChap", "active", "module"]


class MsChap(Protocol):
    """The functions _mschap.c provides (signatures as in _mschap.pyi)."""

    def check(
        self,
        password: str,
        user_name: bytes,
        authenticator_challenge: bytes,
        ms_chap2_response: bytes,
        /,
    ) -> tuple[bytes, bytes, bytes] | None: ...
    def md4(self, data: bytes, /) -> bytes: ...
    def sha1(self, data: bytes, /) -> bytes: ...
    def des_encrypt(self, key7: bytes, block: bytes, /) -> bytes: ...
    def nt_password_hash(self, password: str, /) -> bytes: ...


_MODULE = cast("MsChap | None", load_optional("radius_contracts.aaa._mschap"))


def module() -> MsChap | None:
    return _MODULE


def active() -> bool:
    """Whether MS-CHAPv2 checks take the C path (for the start-up log line)."""
    return _MODULE is not None
