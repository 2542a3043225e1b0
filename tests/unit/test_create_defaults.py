"""The defaults the API documents are the ones every other way of creating a row applies."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from radius_contracts.api.schemas import catalogue
from radius_contracts.api.schemas.contracts import ConnectionConfig, ContractCreate
from radius_contracts.db import models
from radius_contracts.services.contract_fields import new_config, new_contract


def test_contract_schema_defaults_are_the_services() -> None:
    """POST's schema shows (and once applied) its own defaults: they must be the service's."""
    given = {"number": "C-1", "config": {"username": "u"}}
    documented = ContractCreate.model_validate(given).model_dump()
    assert documented == new_contract(given)
    assert ConnectionConfig(username="u").model_dump() == new_config({"username": "u"})


def test_new_contract_keeps_nulls_and_nested_fields_sent() -> None:
    made = new_contract({"config": {"username": "u", "simultaneous_use": None}, "customer": {}})
    assert made["config"]["simultaneous_use"] is None  # null: unlimited, asked for
    assert made["config"]["password"] is None and made["customer"]["custom_fields"] == {}
    assert new_contract({"config": {"username": "u"}})["config"]["simultaneous_use"] == 1
    first, second = new_contract({}), new_contract({})
    first["custom_fields"]["x"] = 1
    assert second["custom_fields"] == {}  # fresh objects each time


def _column_default(column: Any) -> Any:
    if column.default is None:
        return PydanticUndefined
    value = column.default.arg
    return value(None) if callable(value) else value


@pytest.mark.parametrize(
    ("schema", "model"),
    [
        (catalogue.ManufacturerCreate, models.Manufacturer),
        (catalogue.PopCreate, models.Pop),
        (catalogue.NasCreate, models.Nas),
        (catalogue.AttributeCreate, models.RadiusAttribute),
        (catalogue.LayoutCreate, models.Layout),
        (catalogue.PoolCreate, models.Pool),
    ],
)
def test_create_schema_defaults_match_the_table(schema: type[BaseModel], model: Any) -> None:
    """POST applies the schema's defaults; the FreeRADIUS import and the first-run seed create
    through the services, where the table's column defaults apply: both must agree."""
    columns = model.__table__.c
    for name, field in schema.model_fields.items():
        if name not in columns or columns[name].default is None:
            continue
        default = field.get_default(call_default_factory=True)
        assert default == _column_default(columns[name]), f"{schema.__name__}.{name}"
