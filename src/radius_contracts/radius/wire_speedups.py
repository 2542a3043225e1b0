"""The optional C wire code (``_wire``, see _wire.c): loaded once, or None.

None when it was not built (no C compiler or Python headers at install time) or when
``RADIUS_CONTRACTS_PURE_PYTHON=1`` asks for the pure Python path, which the test suite runs
too; both paths give the same answers (tests/unit/radius/test_wire.py).
"""

from __future__ import annotations

import os
from typing import Protocol, cast

__all__ = ["PURE_PYTHON_ENV", "AccessFields", "AccountingFields", "Wire", "active", "module"]

PURE_PYTHON_ENV = "RADIUS_CONTRACTS_PURE_PYTHON"

AccessFields = tuple[
    int, bytes, int, str | None, bytes | None, bytes | None, bytes | None, str | None,
    str | None, int | None, str | None, bool, tuple[bytes, ...], int, bytes | None, bytes | None,
]  # fmt: skip
"""What parse_access returns for an Access-Request it handles: identifier, authenticator,
Message-Authenticator (1 right, -1 wrong, 0 none), User-Name, decrypted User-Password,
CHAP-Password, CHAP challenge, Calling- and Called-Station-Id, NAS-Port, NAS-Port-Id,
EAP-Message present, the Proxy-States and the octets their echo adds, MS-CHAP-Challenge and
MS-CHAP2-Response."""

AccountingFields = tuple[
    int, bytes, int, str | None, str | None, int, int | None, int | None, int | None,
    int | None, int | None, int | None, str | None, bytes | None, str | None, bytes | None,
    str | None, str | None, int | None, str | None, str | None, str | None, int | None,
    tuple[bytes, ...],
]  # fmt: skip
"""What parse_accounting returns for an authentic Accounting-Request it handles: identifier,
authenticator, then AccountingRequest's fields from status_type to terminate_cause (the two
IPv6 prefixes as raw attribute values), then the Proxy-States."""


class Wire(Protocol):
    """The functions _wire.c provides (signatures as in _wire.pyi)."""

    def md5(self, data: bytes, /) -> bytes: ...
    def hmac_md5(self, key: bytes, /, *parts: bytes) -> bytes: ...
    def decrypt_password(
        self, value: bytes, secret: bytes, authenticator: bytes, /
    ) -> bytes | None: ...
    def salt_encrypt(
        self, plain: bytes, secret: bytes, authenticator: bytes, salt: bytes, /
    ) -> bytes: ...
    def parse_access(self, data: bytes, secret: bytes, /) -> AccessFields | None: ...
    def parse_accounting(self, data: bytes, secret: bytes, /) -> AccountingFields | None: ...
    def reply(
        self,
        code: int,
        identifier: int,
        request_authenticator: bytes,
        attributes: bytes,
        secret: bytes,
        proxy_states: tuple[bytes, ...],
        message_authenticator: bool = True,
        /,
    ) -> bytes: ...


def _load() -> Wire | None:
    if os.environ.get(PURE_PYTHON_ENV) == "1":
        return None
    try:
        from radius_contracts.radius import _wire
    except ImportError:
        return None
    return cast(Wire, _wire)


_MODULE = _load()


def module() -> Wire | None:
    return _MODULE


def active() -> bool:
    """Whether packets take the C path (for the start-up log line)."""
    return _MODULE is not None
