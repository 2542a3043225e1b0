"""Field types and base models shared by every resource."""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

MAX_INT32 = 2**31 - 1
MAX_JSON_DEPTH = 32
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, CR, LF allowed
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _printable(value: str) -> str:
    # NUL cannot be stored by PostgreSQL and control characters have no business in names;
    # refusing them here gives the caller a 422 naming the field instead of a storage error.
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _multiline(value: str) -> str:
    # Free text may span lines, but NUL (which PostgreSQL cannot store) and the other control
    # characters are refused like in names.
    if _CONTROL_IN_TEXT.search(value):
        raise ValueError("must not contain control characters other than tab and newline")
    return value


def _plain_json(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse what json.loads lets through but the databases or the response cannot hold.

    NaN/Infinity are not JSON (PostgreSQL's json type rejects them), a lone surrogate cannot be
    encoded as UTF-8, and deep nesting overflows the response serializer.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"must not nest deeper than {MAX_JSON_DEPTH} levels")
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("NaN and Infinity are not JSON numbers")
        elif isinstance(item, str) and _SURROGATE.search(item):
            raise ValueError("strings must be valid Unicode (no lone surrogates)")
    return value


Printable = AfterValidator(_printable)
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Printable
]
Text253 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253), Printable
]
Description = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_multiline)]
Id = Annotated[int, Field(ge=1, le=MAX_INT32)]
Port = Annotated[int, Field(ge=1, le=65535)]
VendorId = Annotated[int, Field(ge=0, le=2**24 - 1, description="IANA enterprise number")]
CustomKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
CustomFields = Annotated[
    dict[CustomKey, Any],
    AfterValidator(_plain_json),
    Field(description="Free-form values; templates reach them as {custom.<key>}."),
]


# The messages below say what is wrong without quoting the value: a 422 never echoes input
# (ipaddress's own messages do), however harmless the field.


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError("is not an IP address") from None


def _ip_or_network(value: str) -> str:
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    try:
        return _network(value)
    except ValueError as exc:
        raise ValueError(f"is not an IP address, and {exc}") from None


def _network(value: str) -> str:
    text = value.strip()
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError:
        pass
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError("is not a CIDR network (e.g. 100.64.0.0/22, 2001:db8::/48)") from None
    raise ValueError("is not a CIDR network: host bits are set (give the network address)")


IpOrNetwork = Annotated[str, StringConstraints(max_length=64), AfterValidator(_ip_or_network)]
Network = Annotated[str, StringConstraints(max_length=64), AfterValidator(_network)]
IpAddress = Annotated[str, StringConstraints(max_length=64), AfterValidator(_ip_address)]


class Input(BaseModel):
    """Request bodies refuse unknown fields, so a typo is a 422 instead of a silent no-op."""

    model_config = ConfigDict(extra="forbid")

    def service_values(self) -> dict[str, Any]:
        """What a create passes to its service: every field, the schema's defaults filled in.

        A resource whose service owns its defaults passes only the fields sent instead.
        """
        return self.model_dump()


class Patch(Input):
    """PATCH bodies: every field optional, but a field that cannot be empty may not be null."""

    not_null: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in sorted(cls.not_null):
                if key in data and data[key] is None:
                    raise ValueError(f"{key} cannot be null")
        return data

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # Fields in not_null are optional but not nullable: say so in the OpenAPI description,
        # which would otherwise offer null for every optional field.
        json_schema = handler.resolve_ref_schema(handler(core_schema))
        for key in cls.not_null:
            field = json_schema.get("properties", {}).get(key)
            if not field or "anyOf" not in field:
                continue
            branches = [b for b in field["anyOf"] if b != {"type": "null"}]
            field.pop("default", None)
            if len(branches) == 1:
                del field["anyOf"]
                field.update(branches[0])
            else:
                field["anyOf"] = branches
        return json_schema


class ListQuery(Input):
    """Query parameters of a list endpoint; subclasses add the filters."""

    sort: Annotated[
        str | None,
        StringConstraints(pattern=r"^-?[a-z_]{1,32}$"),
        Field(description="Field to sort by, prefixed with '-' for descending, e.g. -created_at."),
    ] = None
    limit: int = Field(default=50, ge=1, le=1000, description="Page size.")
    offset: int = Field(default=0, ge=0, le=MAX_INT32, description="Items to skip.")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AuditedOutput(Output):
    created_at: datetime
    created_by: str | None
    created_via: str | None
    updated_at: datetime
    updated_by: str | None
    updated_via: str | None


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int = Field(description="Matching items, over all pages.")
    limit: int
    offset: int


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    field: str | None = Field(default=None, description="The offending input, e.g. config.username")
    errors: list[dict[str, Any]] | None = None
