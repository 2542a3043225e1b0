"""A contract's fields: what a new contract gets for those left out, and the API shape as columns.

The defaults live here and nowhere else. Every path that creates a contract (POST, the
by-external upsert, a bulk upsert, the FreeRADIUS import) fills what it was not given through
``new_contract``; replacing the whole connection config fills the config through
``new_config``. Updates (PATCH, the upsert of an existing contract) fill nothing: a field left
out keeps its value. A field sent as null is stored as null wherever null is allowed
(``simultaneous_use: null`` is unlimited), so "left out" and "null" never mean the same.
The API schemas show these values as their OpenAPI defaults; the ORM columns have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from radius_contracts.domain import ContractStatus

__all__ = [
    "CONFIG_FIELDS",
    "CUSTOMER_FIELDS",
    "config_defaults",
    "contract_defaults",
    "customer_defaults",
    "field_name",
    "flatten",
    "in_zone",
    "new_config",
    "new_contract",
]

CONFIG_FIELDS = (
    "username",
    "password",
    "min_upload",
    "max_upload",
    "min_download",
    "max_download",
    "pool_name_ipv4",
    "ipv4",
    "pool_name_ipv6",
    "ipv6",
    "delegated_ipv6_prefix",
    "mac",
    "simultaneous_use",
)
CUSTOMER_FIELDS = {
    "external_id": "customer_external_id",
    "name": "customer_name",
    "custom_fields": "customer_custom_fields",
}
# Nested objects: a value given for one is merged into its defaults, not put in their place.
_NESTED = ("config", "customer")


def config_defaults() -> dict[str, Any]:
    """Every config field but ``username`` (required), as a new contract gets it."""
    defaults: dict[str, Any] = dict.fromkeys(CONFIG_FIELDS[1:])
    # One session at a time unless the contract says otherwise: a shared password should
    # not log in from everywhere at once. null (unlimited) must be asked for.
    defaults["simultaneous_use"] = 1
    return defaults


def customer_defaults() -> dict[str, Any]:
    return {"external_id": None, "name": None, "custom_fields": {}}


def contract_defaults() -> dict[str, Any]:
    """Every field but ``number`` and ``config.username`` (required), in the API's shape.

    Fresh objects on every call: callers may change the dicts and lists they get.
    """
    return {
        "status": ContractStatus.ACTIVE.value,
        "start_date": None,
        "end_date": None,
        "auto_extend": False,
        "customer": customer_defaults(),
        "custom_fields": {},
        "external_refs": [],
        "plan_id": None,
        "billing_day": None,
        "config": config_defaults(),
    }


def new_contract(given: Mapping[str, Any]) -> dict[str, Any]:
    """The contract to create from ``given`` (API shape): every field left out defaulted,
    inside ``config`` and ``customer`` too."""
    values = contract_defaults()
    for key, value in given.items():
        if key in _NESTED and isinstance(value, Mapping):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return values


def new_config(given: Mapping[str, Any]) -> dict[str, Any]:
    """A whole connection config from ``given``: what it leaves out as a new contract has it."""
    return {**config_defaults(), **given}


def in_zone(data: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    """``start_date``/``end_date`` sent as date-times become their date in the ISP's zone.

    A billing system's ``2024-12-26T00:00:00+00:00`` is the evening of the 25th in Brazil;
    a date-time without an offset is taken as the ISP's local time, so its date as written.
    """
    values = dict(data)
    for key in ("start_date", "end_date"):
        value = values.get(key)
        if isinstance(value, datetime):
            values[key] = (value.astimezone(zone) if value.tzinfo else value).date()
    return values


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """API shape (nested ``config`` and ``customer``) → column names."""
    flat = {k: v for k, v in data.items() if k not in _NESTED}
    for key, value in (data.get("config") or {}).items():
        flat[key] = value
        if key == "username":
            flat["username_key"] = value.lower()
    for key, value in (data.get("customer") or {}).items():
        flat[CUSTOMER_FIELDS[key]] = value
    return flat


def field_name(column: str) -> str:
    """Column name → the JSON path an API client sent (for error messages)."""
    if column in CONFIG_FIELDS:
        return f"config.{column}"
    for key, name in CUSTOMER_FIELDS.items():
        if name == column:
            return f"customer.{key}"
    return column
