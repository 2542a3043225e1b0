"""The optional C wire code (``_wire``, see _wire.c): loaded once, or None.

None when it was not built (no C compiler or Python headers at install time) or when
``RADIUS_CONTRACTS_PURE_PYTHON=1`` asks for the pure Python path, which the test suite runs
too; both paths give the same answers (tests/unit/radius/test_wire.py).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Protocol, cast

__all__ = [
    "PURE_PYTHON_ENV",
    "AccessFields",
    "AccountingFields",
    "Wire",
    "active",
    "load_optional",
    "module",
]

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


def load_optional(name: str) -> ModuleType | None:
    """The optional C module ``name`` (e.g. "radius_contracts.radius._wire"), or None: it was
    not built, or ``RADIUS_CONTRACTS_PURE_PYTHON=1`` asks for the pure Python path."""
    if os.environ.get(PURE_PYTHON_ENV) == "1":
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_MODULE = cast("Wire | None", load_optional("radius_contracts.radius._wire"))


def module() -> Wire | None:
    return _MODULE


def active() -> bool:
    """Whether packets take the C path (for the start-up log line)."""
    return _MODULE is not None
