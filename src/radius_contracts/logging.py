"""Logging for stdout/journald: one line per event, text or JSON."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

from radius_contracts.log_context import ContextFilter
from radius_contracts.radius.request_context import DatagramFilter
from radius_contracts.settings import LoggingSettings

# Record attributes that are not fields of the event (uvicorn adds color_message: the
# message again, with terminal escapes).
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# Libraries whose chatter below WARNING is no use to an operator, or worse: aiosqlite's DEBUG
# lines print every call it runs with its arguments, i.e. SQL with bound values (contract
# passwords, NAS secrets). They stay at WARNING whatever the daemon's own level.
_QUIET_LIBRARIES = ("aiosqlite", "asyncpg", "sqlalchemy")
# APScheduler says "Running job …" and "Job … executed successfully" at INFO for every turn of
# every job: dozens of lines a minute from an idle daemon. A job's run is DEBUG; the jobs
# themselves log at INFO what they did, when they did something.
_JOB_RUN_LOGGERS = ("apscheduler.executors.default", "apscheduler.scheduler")


class JobRunsAtDebug(logging.Filter):
    """Turns a scheduler logger's INFO records into DEBUG ones, dropped unless DEBUG is on.

    A logger filter: it sees the record after the logger's level check (the scheduler's
    loggers inherit INFO) and before any handler, so the line is gone or DEBUG everywhere.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra= fields (request ids and the like) are kept as keys.

    json.dumps escapes newlines, so a message or traceback never breaks the line; the
    traceback goes in ``exc``.
    """

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
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        return json.dumps(event, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: [request id] message`` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        request_id = record.__dict__.get("request_id")
        if request_id is None:
            return line
        # The marker goes right before the message, after "logger: ".
        head = len(line) - len(record.message)
        return f"{line[:head]}[{request_id}] {line[head:]}"


def configure(settings: LoggingSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    # On the handler, not a logger: records of every logger (ours, uvicorn's, libraries')
    # get the request they were made for.
    handler.addFilter(ContextFilter())
    handler.addFilter(DatagramFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # Python warnings go through the same handler (and format) instead of raw stderr.
    logging.captureWarnings(True)
    # Each HTTP request is an event worth a line at INFO (api.request_log writes it), but
    # not uvicorn's error chatter.
    logging.getLogger("uvicorn.error").setLevel(max(logging.INFO, root.level))
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in _JOB_RUN_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, JobRunsAtDebug)]:
            logger.removeFilter(old)  # configure runs again at every reload
        logger.addFilter(JobRunsAtDebug())


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
