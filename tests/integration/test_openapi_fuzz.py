"""Property-based fuzzing of the management API against its own OpenAPI description.

schemathesis reads ``/openapi.json`` from a running daemon (SQLite and PostgreSQL) and sends
generated requests, valid and invalid, with the admin token. Every response must:

- not be a 5xx (``not_a_server_error``);
- use a status code the operation declares (``status_code_conformance``);
- use a declared content type (``content_type_conformance``);
- match the declared response schema (``response_schema_conformance``).

Generation is derandomized (same requests on every run) and bounded by ``MAX_EXAMPLES`` per
operation. In half of the request bodies, the values the schema only describes as strings
(addresses, speeds, MAC addresses, attribute names) are replaced by realistic ones, and unique
names always get a unique suffix, so that valid requests get past validation into the services and
the database instead of ending as 422 or 409. The API's own string formats (ipv4-network,
ipv6-network) are registered with the strategies in tests/formats.py.

The fuzzer deactivates dictionary attributes, deletes whatever ids it guesses and leaves odd data
behind, so it gets a daemon and a database of its own instead of the session's shared ``daemon``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import RunningDaemon, admin_sql, make_settings, start_daemon, stop_daemon
from formats import FORMATS

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Bounded for the suite; raise them by hand for a deeper hunt (each seed gives other requests).
MAX_EXAMPLES = int(os.environ.get("RADIUS_CONTRACTS_FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("RADIUS_CONTRACTS_FUZZ_SEED", "20240601"))

# Realistic values for fields the schema only describes as strings, from address space no other
# test uses: 198.18.0.0/15 (RFC 2544) and 3fff::/20 (RFC 9637). Indexed by a counter, so every
# run sends the same requests.
REALISTIC: dict[str, Callable[[int], Any]] = {
    "ipv4": lambda n: str(ipaddress.IPv4Address("198.18.0.0") + n % 2**17),
    "ipv6": lambda n: f"3fff:{n % 4096:x}:{n // 4096 % 65536:x}::/64",
    "delegated_ipv6_prefix": lambda n: f"3fff:{n % 4096:x}:{n // 4096 % 65536:x}:ff00::/56",
    "address": lambda n: f"198.{18 + n % 2}.{n // 2 % 256}.{n // 512 % 254 + 1}",
    "mac": lambda n: "02:00:" + n.to_bytes(4, "big").hex(":"),
    "min_upload": lambda n: f"{n % 999 + 1}{'kMG'[n % 3]}",
    "max_upload": lambda n: f"{n % 999 + 1}{'kMG'[n % 3]}",
    "min_download": lambda n: f"{n % 999 + 1}{'kMG'[n % 3]}",
    "max_download": lambda n: f"{n % 999 + 1}{'kMG'[n % 3]}",
    "dictionary_vendor": lambda n: ("Mikrotik", "Cisco", "Huawei")[n % 3],
    "attribute": lambda n: ("Mikrotik-Rate-Limit", "Framed-Pool", "Session-Timeout")[n % 3],
    "template": lambda n: ("{max_upload}/{max_download}", "{pool_name_ipv4}", "3600")[n % 3],
    # Pools the fuzzer created have names it cannot know: no pool at all is realistic too.
    "pool_name_ipv4": lambda n: None,
    "pool_name_ipv6": lambda n: None,
}
POOL_RANGES: dict[str, Callable[[int], list[str]]] = {
    "ipv4": lambda n: [f"198.{18 + n % 2}.{n // 2 % 256}.0/24"],
    "ipv6": lambda n: [f"3fff:{n % 4096:x}:{n // 4096 % 65536:x}::/48"],
    "ipv6-pd": lambda n: [f"3fff:{n % 4096:x}:{n // 4096 % 65536:x}::/48"],
}
UNIQUE = frozenset({"name", "number", "username"})


class Realism:
    """Rewrites generated bodies; its counters start afresh for each daemon (reproducible)."""

    def __init__(self) -> None:
        self.serial = itertools.count(1)
        self.bodies = itertools.count()

    def body(self, body: Any) -> Any:
        """Unique names always; realistic addresses, speeds, ids... in every other body."""
        return self._value(body, None, replace=next(self.bodies) % 2 == 0)

    def _unique(self, value: str) -> str:
        """The same string made unique; long ones keep their length (to probe the limits)."""
        suffix = f"z{next(self.serial):x}"
        return value[: -len(suffix)] + suffix if len(value) > 2 * len(suffix) else value + suffix

    def _value(self, value: Any, key: str | None, *, replace: bool) -> Any:
        if isinstance(value, dict):
            value = {k: self._value(v, k, replace=replace) for k, v in value.items()}
            ranges = POOL_RANGES.get(str(value.get("family", "ipv4")))
            if replace and ranges and isinstance(value.get("ranges"), list):
                value["ranges"] = ranges(next(self.serial))
            return value
        if isinstance(value, list):
            return [self._value(item, None, replace=replace) for item in value]
        if isinstance(value, str) and key in UNIQUE:
            return self._unique(value)
        if replace and isinstance(value, str) and key in REALISTIC:
            return REALISTIC[key](next(self.serial))
        if replace and type(value) is int and key in ("manufacturer_id", "pop_id"):
            return next(self.serial) % 16 + 1  # among the first objects the fuzzer created
        return value


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fuzz_daemon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningDaemon]:
    """A daemon on a fresh database per backend, for the fuzzer alone."""
    url = None
    if request.param == "postgres":
        shared = request.getfixturevalue("postgres_url")  # skips when PostgreSQL is unreachable
        base, _, name = shared.rpartition("/")
        url = f"{base}/{name}_fuzz"
        asyncio.run(admin_sql(shared, f'CREATE DATABASE "{name}_fuzz"'))
    running, thread = start_daemon(make_settings(tmp_path_factory.mktemp("fuzz"), url))
    yield running
    stop_daemon(running, thread)
    if url:
        asyncio.run(admin_sql(shared, f'DROP DATABASE IF EXISTS "{name}_fuzz" WITH (FORCE)'))


@pytest.fixture
def api_schema(request: pytest.FixtureRequest, fuzz_daemon: RunningDaemon) -> Any:
    # schemathesis' lazy loader (4.32) reads and rewrites `node._nodeid`, which pytest 9.2
    # renamed; give it the attribute (only the per-operation report name uses it).
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": fuzz_daemon.base_url,
            "headers": {"Authorization": f"Bearer {fuzz_daemon.admin_token}"},
            "request-timeout": 30,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                # The token is in the headers above; generated credentials would only show
                # that random tokens get a 401, which test_api_auth_audit already covers.
                "with-security-parameters": False,
            },
            # Stateful runs are not part of the pytest integration; say so explicitly.
            "phases": {"stateful": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{fuzz_daemon.base_url}/openapi.json", config=config)

    realism = Realism()

    @schema.hook("map_case")
    def realistic_body(context: Any, case: Any) -> Any:
        # map_case runs in every phase (coverage included), flatmap_body only while fuzzing.
        if isinstance(case.body, dict | list):
            case.body = realism.body(case.body)
        return case

    return schema


# The API's own string formats (networks), as /openapi.json defines them.
for _name, _strategy in FORMATS.items():
    schemathesis.openapi.format(_name, _strategy)

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api_conforms_to_its_openapi(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
