"""/openapi.json says what validation takes: speeds, addresses and networks have a pattern or a
format, and everything that pattern or format allows gets through validation.

Integrators generate clients from the description and schemathesis fuzzes from it; where it
said "string" they sent strings that were refused (issue 17).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter

from formats import IPV4_NETWORK, IPV6_NETWORK
from radius_contracts.api.schemas import catalogue, contracts
from radius_contracts.api.schemas.common import (
    PRINTABLE_PATTERN,
    IpAddress,
    IpOrNetwork,
    Name,
    Network,
)
from radius_contracts.api.schemas.contracts import (
    MAC_PATTERN,
    SPEED_PATTERN,
    Ipv4,
    Ipv6Prefix,
    Mac,
    Speed,
)

SPEEDS = TypeAdapter(Speed)
NETWORKS = TypeAdapter(Network)
ADDRESSES = TypeAdapter(IpAddress)
NAS_ADDRESSES = TypeAdapter(IpOrNetwork)


@settings(max_examples=300)
@given(st.from_regex(SPEED_PATTERN, fullmatch=True))
def test_every_speed_the_pattern_allows_is_taken(speed: str) -> None:
    assert SPEEDS.validate_python(speed) == speed


def test_the_speed_pattern_allows_the_usual_ones_and_not_the_refused() -> None:
    for speed in ("512k", "50M", "1G", "1.5M", "2000000", "0.5k", "10m"):
        assert re.fullmatch(SPEED_PATTERN, speed), speed
    for speed in ("1.0005k", "fast", "50 Mbps", "1e6", "-1M", "1.5", "٢M"):
        assert not re.fullmatch(SPEED_PATTERN, speed), speed


@settings(max_examples=300)
@given(st.from_regex(MAC_PATTERN, fullmatch=True))
def test_every_mac_the_pattern_allows_is_taken(mac: str) -> None:
    assert TypeAdapter(Mac).validate_python(mac) == ":".join(
        mac.replace(":", "").replace("-", "").replace(".", "").lower()[i : i + 2]
        for i in range(0, 12, 2)
    )


@settings(max_examples=500)
@given(st.from_regex(PRINTABLE_PATTERN, fullmatch=True).filter(lambda s: len(s.strip()) <= 100))
def test_every_name_the_pattern_allows_is_taken(name: str) -> None:
    assert TypeAdapter(Name).validate_python(name) == name.strip()


@settings(max_examples=300)
@given(st.one_of(IPV4_NETWORK, IPV6_NETWORK))
def test_every_network_of_the_formats_is_taken(network: str) -> None:
    assert NETWORKS.validate_python(network) == network
    assert NAS_ADDRESSES.validate_python(network) == network


@settings(max_examples=300)
@given(st.ip_addresses())
def test_every_address_of_the_formats_is_taken(address: Any) -> None:
    assert ADDRESSES.validate_python(str(address)) == str(address)
    assert NAS_ADDRESSES.validate_python(str(address)) == str(address)


@given(IPV6_NETWORK)
def test_an_ipv6_prefix_field_takes_ipv6_networks(network: str) -> None:
    assert TypeAdapter(Ipv6Prefix).validate_python(network) == network


@given(st.ip_addresses(v=4))
def test_an_ipv4_field_takes_ipv4_addresses(address: Any) -> None:
    assert TypeAdapter(Ipv4).validate_python(str(address)) == str(address)


def _strings(model: type[BaseModel], names: set[str]) -> dict[str, Any]:
    schema = model.model_json_schema()
    found = {name: schema["properties"][name] for name in names if name in schema["properties"]}
    assert found.keys() == names, model
    return found


def test_the_six_operations_describe_their_strings() -> None:
    """NAS and pool create, pool update, connection settings, the upsert: no bare strings."""
    config = {"min_upload", "max_upload", "min_download", "max_download", "ipv4", "ipv6",
              "delegated_ipv6_prefix"}  # fmt: skip
    fields = [
        (contracts.ConnectionConfig, config),
        (contracts.ConnectionConfigPatch, config),
        (catalogue.NasCreate, {"address", "coa_address"}),
        (catalogue.PoolCreate, {"ranges"}),
        (catalogue.PoolUpdate, {"ranges"}),
    ]
    for model, names in fields:
        for name, schema in _strings(model, names).items():
            text = json.dumps(schema)
            assert '"format"' in text or '"pattern"' in text, f"{model.__name__}.{name}"
