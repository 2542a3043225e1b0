"""Request ids and the request a log line is about.

An HTTP request being handled is put in ``current`` for the time it is handled;
:class:`ContextFilter` copies its fields into every log record made meanwhile, so a line logged
deep inside the services still says which request it was about. RADIUS datagrams have a
leaner context of their own (radius.request_context), as cheap as the hot path needs.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from contextvars import ContextVar
from typing import Protocol

# Ids are unique per process; the prefix tells processes (and restarts) apart, so ids from
# several nodes can share one log index.
_PREFIX = secrets.token_hex(3)
_serials = itertools.count(1)


def new_request_id() -> str:
    """A fresh id such as ``3fa9c1-1a2``: the process prefix, then a counter in hex."""
    return f"{_PREFIX}-{next(_serials):x}"


class LogContext(Protocol):
    """What is being handled; ``log_fields`` is called only when a line is logged."""

    def log_fields(self) -> dict[str, object]: ...


current: ContextVar[LogContext | None] = ContextVar("radius_contracts_log_context", default=None)


class ContextFilter(logging.Filter):
    """Adds the current request's fields to each record (an explicit ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current.get()
        if context is not None:
            fields = record.__dict__
            for key, value in context.log_fields().items():
                if key not in fields:
                    fields[key] = value
        return True
