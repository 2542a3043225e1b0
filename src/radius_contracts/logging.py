"""Logging for stdout/journald: one line per event, text or JSON."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

from radius_contracts.settings import LoggingSettings

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra= fields are kept as keys."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        event.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


def configure(settings: LoggingSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # Each HTTP request is an event worth a line at INFO, but not uvicorn's error chatter.
    logging.getLogger("uvicorn.error").setLevel(max(logging.INFO, root.level))


class RateLimitedLog:
    """Warnings at most once per ``every`` seconds per key, with a count of those held back.

    Floods (a misconfigured NAS, a database that is down for an hour) must not flood the
    journal; the next line that gets through says how many were suppressed.
    """

    __slots__ = ("_every", "_last", "_logger", "_suppressed")

    def __init__(self, logger: logging.Logger, every: float = 60.0) -> None:
        self._logger = logger
        self._every = every
        self._last: dict[object, float] = {}
        self._suppressed: dict[object, int] = {}

    def warning(self, key: object, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -self._every) < self._every:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        if len(self._last) > 10_000:  # keys can come from the network: stay bounded
            self._last.clear()
            self._suppressed.clear()
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        self._logger.warning(message, *args)
