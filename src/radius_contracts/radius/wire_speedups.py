"""The optional C wire code (``_wire``, see _wire.c): loaded once, or None.

None when it was not built (no C compiler or Python headers at install time) or when
``RADIUS_CONTRACTS_PURE_PYTHON=1`` asks for the pure Python path, which the test suite runs
too; both paths give the same answers (tests/unit/radius/test_wire.py).
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["PURE_PYTHON_ENV", "active", "module"]

PURE_PYTHON_ENV = "RADIUS_CONTRACTS_PURE_PYTHON"


def _load() -> ModuleType | None:
    if os.environ.get(PURE_PYTHON_ENV) == "1":
        return None
    try:
        from radius_contracts.radius import _wire
    except ImportError:
        return None
    return _wire


_MODULE = _load()


def module() -> ModuleType | None:
    return _MODULE


def active() -> bool:
    """Whether packets take the C path (for the start-up log line and /metrics)."""
    return _MODULE is not None
