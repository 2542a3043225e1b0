"""Log formats, request ids and the context filter, on real logging records."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pydantic
import pytest

from radius_contracts import log_context
from radius_contracts.api import problems
from radius_contracts.api.request_log import sane_request_id
from radius_contracts.db.engine import redacted_url
from radius_contracts.logging import JsonFormatter, TextFormatter
from radius_contracts.radius import codec, hiding, request_context
from radius_contracts.radius.clients import ClientTable, NasClient


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(log_context.ContextFilter())
    logger = logging.getLogger("test.logging")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield stream, handler
    logger.removeHandler(handler)


class Fixed:
    def __init__(self, **fields: object) -> None:
        self.fields = fields

    def log_fields(self) -> dict[str, object]:
        return self.fields


def test_json_lines_stay_one_line_with_newlines_and_tracebacks(captured) -> None:
    stream, handler = captured
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.logging")
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        logger.exception("failed:\n%s", "second line", extra={"user_name": "a\nb"})
    [line] = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["msg"] == "failed:\nsecond line" and event["user_name"] == "a\nb"
    assert "ValueError: line one\nline two" in event["exc"] and event["level"] == "error"


def test_context_fields_are_added_and_explicit_extra_wins(captured) -> None:
    stream, handler = captured
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.logging")
    token = log_context.current.set(Fixed(request_id="r-1", nas="bng-1"))
    try:
        logger.info("first")
        logger.info("second", extra={"nas": "explicit"})
    finally:
        log_context.current.reset(token)
    logger.info("outside")
    first, second, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["request_id"], first["nas"]) == ("r-1", "bng-1")
    assert (second["request_id"], second["nas"]) == ("r-1", "explicit")
    assert "request_id" not in outside


def test_text_format_puts_the_request_id_before_the_message(captured) -> None:
    stream, handler = captured
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger("test.logging")
    logger.warning("with id", extra={"request_id": "abc-1"})
    logger.warning("without")
    with_id, without = stream.getvalue().splitlines()
    assert with_id.endswith(" WARNING test.logging: [abc-1] with id")
    assert without.endswith(" WARNING test.logging: without")


def test_datagram_fields_are_rendered_once_and_never_the_password(captured) -> None:
    stream, handler = captured
    handler.setFormatter(JsonFormatter())
    handler.addFilter(request_context.DatagramFilter())
    secret = b"nas-secret"
    table = ClientTable([("127.0.0.1", NasClient(7, secret, True, "bng-1"))])
    attributes = codec.attribute(codec.USER_NAME, b"ana") + codec.attribute(
        codec.USER_PASSWORD, hiding.hide_user_password(b"pw-123", secret, bytes(16))
    )
    data = codec.encode_request(
        codec.Code.ACCESS_REQUEST, 42, attributes, secret, authenticator=bytes(16)
    )
    logger = logging.getLogger("test.logging")
    token = request_context.current.set((data, ("127.0.0.1", 5000), lambda: table))
    try:
        logger.info("first line")
        logger.info("second line")
    finally:
        request_context.current.reset(token)
    token = request_context.current.set((b"\x01", ("10.9.9.9", 1), lambda: table))
    try:
        logger.info("another datagram")
    finally:
        request_context.current.reset(token)
    first, second, other = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["request_id"] == second["request_id"] != other["request_id"]
    assert first["nas"] == "bng-1" and first["nas_address"] == "127.0.0.1"
    assert (first["radius_code"], first["radius_id"], first["user_name"]) == (
        "Access-Request", 42, "ana",
    )  # fmt: skip
    assert str(first["request_id"]).count("-") == 1 and "nas" not in other
    assert "pw-123" not in stream.getvalue() and "nas-secret" not in stream.getvalue()


def test_secret_fields_stay_out_of_reprs() -> None:
    assert "nas-secret" not in repr(NasClient(1, b"nas-secret", True, "bng-1"))


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("billing-7781", "billing-7781"),
        ("4b1f0f3c-2a7e-4c55-9f00-8c6a6f1b2d11", "4b1f0f3c-2a7e-4c55-9f00-8c6a6f1b2d11"),
        ("a" * 128, "a" * 128),
        ("a" * 129, None),
        ("has space", None),
        ("line\nbreak", None),
        ("-leading-dash", None),
        ("", None),
        (None, None),
    ],
)
def test_only_sane_request_ids_are_taken(given: str | None, used: str | None) -> None:
    assert sane_request_id(given) == used


def test_database_urls_are_logged_without_their_password() -> None:
    assert redacted_url("postgresql+asyncpg://rc:s3cret@db:5432/rc") == (
        "postgresql+asyncpg://rc:***@db:5432/rc"
    )
    assert redacted_url("sqlite+aiosqlite:////var/lib/rc/rc.db") == (
        "sqlite+aiosqlite:////var/lib/rc/rc.db"
    )


def test_validation_errors_are_logged_without_their_input() -> None:
    class Config(pydantic.BaseModel):
        password: int

    try:
        Config.model_validate({"password": "hunter2-secret"})
    except pydantic.ValidationError as exc:
        assert "hunter2-secret" in str(exc)  # what logging the exception as it is would print
        errors = problems._validation_errors(exc)
    assert errors is not None and errors[0]["loc"] == ("password",)
    assert "hunter2-secret" not in repr(errors)
    assert problems._validation_errors(ValueError("other")) is None
