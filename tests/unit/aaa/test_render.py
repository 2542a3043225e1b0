"""Template variables of a contract, layout linting and row rendering."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

import pytest

from radius_contracts.aaa import render
from radius_contracts.aaa.render import (
    SAMPLE_CONTEXT,
    SAMPLE_CONTRACT,
    VARIABLES,
    AttributeLookup,
    LayoutProblem,
    invalid_layout,
    lint_layout,
    render_rows,
    sample_values,
    template_values,
)
from radius_contracts.domain import ConnectionConfig, ContractSnapshot, ContractStatus
from radius_contracts.errors import InvalidLayout
from radius_contracts.radius import dictionary
from radius_contracts.radius.dictionary import AttributeSpec

DICTIONARY = Path(__file__).resolve().parents[3] / "dictionaries" / "dictionary"


def _real_check_value_landed() -> bool:
    try:
        dictionary.check_value(AttributeSpec("User-Name", 1, "string"), "x")
    except NotImplementedError:
        return False
    return True


def _fake_check_value(spec: AttributeSpec, value: str) -> str | None:
    """Just enough of the dictionary's type checks for these tests while it is a stub."""
    if spec.type == "integer":
        if value.isdigit() and int(value) < 2**32:
            return None
        return "not an unsigned 32-bit integer"
    if spec.type == "ipaddr":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return "not an IPv4 address"
        return None
    if spec.type == "ipv6prefix":
        try:
            ipaddress.IPv6Network(value)
        except ValueError:
            return "not an IPv6 prefix"
        return None
    if len(value.encode()) > 253:
        return "longer than 253 bytes"
    return None


@pytest.fixture(autouse=True)
def _check_value(monkeypatch: pytest.MonkeyPatch) -> None:
    if not _real_check_value_landed():
        monkeypatch.setattr(render, "check_value", _fake_check_value)


class FakeCatalog:
    def __init__(self, *specs: AttributeSpec) -> None:
        self._specs = {spec.name: spec for spec in specs}

    def get(self, name: str) -> AttributeSpec | None:
        return self._specs.get(name)


CATALOG: AttributeLookup = FakeCatalog(
    AttributeSpec("Framed-IP-Address", 8, "ipaddr"),
    AttributeSpec("Framed-Pool", 88, "string"),
    AttributeSpec("Framed-IPv6-Prefix", 97, "ipv6prefix"),
    AttributeSpec("Session-Timeout", 27, "integer"),
    AttributeSpec("Mikrotik-Rate-Limit", 8, "string", vendor="Mikrotik", vendor_id=14988),
    AttributeSpec("Huawei-Output-Average-Rate", 5, "integer", vendor="Huawei", vendor_id=2011),
    AttributeSpec("Tunnel-Type", 64, "integer", has_tag=True, values={"VLAN": 13}),
    AttributeSpec("Tunnel-Password", 69, "string", has_tag=True, encrypt=2),
    AttributeSpec("Tunnel-Private-Group-Id", 81, "string", has_tag=True),
)


def contract(**config: str | int | None) -> ContractSnapshot:
    return ContractSnapshot(
        id=7,
        number="C-7",
        status=ContractStatus.ACTIVE,
        config=ConnectionConfig(username="alice", **config),  # type: ignore[arg-type]
    )


# --- template_values -------------------------------------------------------------------------


def test_speeds_are_given_as_entered_and_in_bps_and_kbps() -> None:
    values = template_values(contract(max_download="50M", max_upload="512k", min_upload="1500"))

    assert values["max_download"] == "50M"
    assert values["max_download_bps"] == "50000000"
    assert values["max_download_kbps"] == "50000"
    assert values["max_upload_bps"] == "512000"
    assert values["max_upload_kbps"] == "512"
    assert values["min_upload_bps"] == "1500"
    assert values["min_upload_kbps"] == "1"


def test_kbps_rounds_down() -> None:
    values = template_values(contract(max_upload="999", max_download="1.9999M"))

    assert values["max_upload_kbps"] == "0"
    assert values["max_download_bps"] == "1999900"
    assert values["max_download_kbps"] == "1999"


def test_unset_values_are_absent_not_empty() -> None:
    values = template_values(contract())

    for name in ("ipv4", "ipv6", "mac", "max_download", "max_download_bps", "customer_name"):
        assert name not in values
    for name in ("nas_name", "nas_address", "pop_name", "manufacturer_name"):
        assert name not in values
    assert values["username"] == "alice"
    assert values["simultaneous_use"] == "1"


def test_speed_that_does_not_parse_has_no_bps_or_kbps() -> None:
    values = template_values(contract(max_download="fast"))

    assert values["max_download"] == "fast"
    assert "max_download_bps" not in values
    assert "max_download_kbps" not in values


def test_contract_fields_and_nas_context() -> None:
    snapshot = replace(
        contract(),
        status=ContractStatus.SUSPENDED,
        customer_name="Alice",
        customer_external_id="ERP-9",
    )

    values = template_values(
        snapshot,
        nas_name="bng-1",
        nas_address="192.0.2.7",
        pop_name="north",
        manufacturer_name="Huawei",
    )

    assert values["contract_id"] == "7"
    assert values["contract_number"] == "C-7"
    assert values["status"] == "suspended"
    assert values["customer_name"] == "Alice"
    assert values["customer_external_id"] == "ERP-9"
    assert values["nas_name"] == "bng-1"
    assert values["nas_address"] == "192.0.2.7"
    assert values["pop_name"] == "north"
    assert values["manufacturer_name"] == "Huawei"


def test_custom_fields_render_as_plain_text() -> None:
    snapshot = replace(
        contract(),
        custom_fields={"vlan": 100, "static": True, "shaped": False, "ratio": 1.5, "gone": None},
        customer_custom_fields={"segment": "business", "tags": ["a", "b"]},
    )

    values = template_values(snapshot)

    assert values["custom.vlan"] == "100"
    assert values["custom.static"] == "true"
    assert values["custom.shaped"] == "false"
    assert values["custom.ratio"] == "1.5"
    assert "custom.gone" not in values
    assert values["customer.segment"] == "business"
    assert values["customer.tags"] == '["a","b"]'


# --- VARIABLES and the sample ---------------------------------------------------------------


def test_variable_names_are_unique() -> None:
    names = [v.name for v in VARIABLES]

    assert len(names) == len(set(names))


def test_variables_cover_every_value_of_the_sample() -> None:
    documented = {v.name for v in VARIABLES}
    fixed = {n for n in template_values(SAMPLE_CONTRACT, **SAMPLE_CONTEXT) if "." not in n}

    assert fixed == documented - {"custom.<key>", "customer.<key>"}


def test_variable_catalogue_lists_speeds_in_three_forms() -> None:
    names = {v.name for v in VARIABLES}

    for speed in ("min_upload", "max_upload", "min_download", "max_download"):
        assert {speed, f"{speed}_bps", f"{speed}_kbps"} <= names


def test_variable_examples_are_the_sample_values() -> None:
    examples = {v.name: v.example for v in VARIABLES}

    assert examples["max_download"] == "50M"
    assert examples["max_download_bps"] == "50000000"
    assert examples["max_upload_kbps"] == "10000"
    assert examples["custom.<key>"] == "sample-<key>"
    assert all(v.description for v in VARIABLES)


def test_sample_contract_has_every_field_set() -> None:
    cfg = SAMPLE_CONTRACT.config

    assert cfg.username == "sample"
    assert (cfg.max_upload, cfg.max_download) == ("10M", "50M")
    assert (cfg.min_upload, cfg.min_download) == ("2M", "5M")
    assert cfg.ipv4 == "100.64.0.10"
    assert cfg.ipv6 == "2001:db8:1::/64"
    assert cfg.delegated_ipv6_prefix == "2001:db8:100::/56"
    assert (cfg.pool_name_ipv4, cfg.pool_name_ipv6) == ("pool-v4", "pool-v6")
    assert cfg.mac == "00:11:22:33:44:55"
    assert all(getattr(cfg, f.name) is not None for f in fields(cfg))
    # What the index derives from the plan (the window in force, the stored config when the
    # plan's policy changed the speeds) is not the contract's own data.
    derived = {"window", "own_config"}
    assert all(
        getattr(SAMPLE_CONTRACT, f.name) for f in fields(SAMPLE_CONTRACT) if f.name not in derived
    )


def test_sample_values_give_custom_variables_a_placeholder() -> None:
    values = sample_values({"custom.vlan", "customer.segment", "username"})

    assert values["custom.vlan"] == "sample-vlan"
    assert values["customer.segment"] == "sample-segment"
    assert values["username"] == "sample"
    assert "custom.other" not in values


# --- render_rows -----------------------------------------------------------------------------


def test_render_rows_skips_rows_whose_variables_have_no_value() -> None:
    rows = [
        ("Mikrotik-Rate-Limit", "{max_upload}/{max_download}"),
        ("Framed-IP-Address", "{ipv4}"),
        ("Framed-Pool", "{pool_name_ipv4}"),
        ("Session-Timeout", "3600"),
        ("Framed-Pool", "{custom.pool}"),
    ]
    values = template_values(contract(max_upload="10M", max_download="50M", pool_name_ipv4="p4"))

    assert render_rows(rows, values) == [
        ("Mikrotik-Rate-Limit", "10M/50M"),
        ("Framed-Pool", "p4"),
        ("Session-Timeout", "3600"),
    ]


def test_render_rows_uses_fallbacks_instead_of_dropping_the_row() -> None:
    rows = [
        ("Mikrotik-Rate-Limit", "{max_upload}/{max_download} {min_upload|0}/{min_download|0}"),
        ("Framed-Pool", "{pool_name_ipv4|}"),
        ("Framed-IP-Address", "{ipv4}"),
    ]
    values = template_values(contract(max_upload="10M", max_download="50M", min_upload="1M"))

    assert render_rows(rows, values) == [
        ("Mikrotik-Rate-Limit", "10M/50M 1M/0"),
        ("Framed-Pool", ""),
    ]


def test_render_rows_drops_a_row_when_a_variable_without_fallback_is_missing() -> None:
    rows = [("Mikrotik-Rate-Limit", "{max_upload}/{max_download} {min_upload|0}/{min_download|0}")]

    assert render_rows(rows, template_values(contract(max_upload="10M"))) == []


def test_render_rows_keeps_order_and_repeated_attributes() -> None:
    rows = [("Cisco-AVPair", "a={username}"), ("Cisco-AVPair", "b={{x}}")]

    assert render_rows(rows, {"username": "u"}) == [
        ("Cisco-AVPair", "a=u"),
        ("Cisco-AVPair", "b={x}"),
    ]


# --- lint_layout -----------------------------------------------------------------------------


def test_valid_layout_has_no_problems() -> None:
    rows = [
        ("Mikrotik-Rate-Limit", "{max_upload}/{max_download} {min_upload}/{min_download}"),
        ("Framed-IP-Address", "{ipv4}"),
        ("Framed-IPv6-Prefix", "{ipv6}"),
        ("Framed-Pool", "{pool_name_ipv4}"),
        ("Framed-Pool", "{custom.pool}-{customer.segment}"),
        ("Session-Timeout", "86400"),
    ]

    assert lint_layout(rows, CATALOG) == []


def test_huawei_bps_row_passes_for_an_integer_attribute() -> None:
    rows = [("Huawei-Output-Average-Rate", "{max_download_bps}")]

    assert lint_layout(rows, CATALOG) == []


def test_username_fails_for_an_integer_attribute() -> None:
    rows = [("Huawei-Output-Average-Rate", "{max_download_bps}"), ("Session-Timeout", "{username}")]

    [problem] = lint_layout(rows, CATALOG)

    assert (problem.row, problem.field) == (1, "template")
    assert "'sample'" in problem.message
    assert "Session-Timeout" in problem.message


def test_lint_reports_the_type_checkers_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "check_value", lambda spec, value: "too odd to encode")

    [problem] = lint_layout([("Framed-Pool", "{pool_name_ipv4}")], CATALOG)

    assert problem.message.startswith("renders 'pool-v4' for the sample contract")
    assert problem.message.endswith("too odd to encode")


def test_lint_accepts_fallbacks() -> None:
    rows = [
        ("Mikrotik-Rate-Limit", "{max_upload}/{max_download} {min_upload|0}/{min_download|0}"),
        ("Huawei-Output-Average-Rate", "{max_download_bps|0}"),
        ("Framed-Pool", "{custom.pool|default}"),
    ]

    assert lint_layout(rows, CATALOG) == []


def test_lint_flags_an_unknown_variable_with_a_fallback() -> None:
    [problem] = lint_layout([("Framed-Pool", "{max_dowload|0}")], CATALOG)

    assert problem.message == "unknown variable 'max_dowload'; did you mean 'max_download'?"


def test_lint_checks_the_fallback_against_the_attribute_type() -> None:
    rows = [("Session-Timeout", "{max_download_bps|never}"), ("Framed-IP-Address", "{ipv4|}")]

    problems = lint_layout(rows, CATALOG)

    assert [p.location for p in problems] == ["attributes[0].template", "attributes[1].template"]
    assert problems[0].message.startswith(
        "renders 'never' with the fallbacks (no value for max_download_bps)"
    )
    assert "Session-Timeout" in problems[0].message


def test_lint_flags_a_bad_fallback_syntax_with_position() -> None:
    [problem] = lint_layout([("Framed-Pool", "{pool_name_ipv4|a|b}")], CATALOG)

    assert problem.message == "a fallback is literal text: no second '|' at position 17"


def test_lint_flags_unknown_attribute_on_the_attribute_field() -> None:
    rows = [("Framed-Pool", "{pool_name_ipv4}"), ("No-Such-Attribute", "{username}")]

    assert lint_layout(rows, CATALOG) == [
        LayoutProblem(1, "attribute", "unknown attribute 'No-Such-Attribute'")
    ]


def test_lint_flags_template_syntax_with_position() -> None:
    rows = [("Framed-Pool", "ok"), ("Framed-Pool", "{pool_name_ipv4"), ("Framed-Pool", "{a.b}")]

    problems = lint_layout(rows, CATALOG)

    assert [(p.row, p.field) for p in problems] == [(1, "template"), (2, "template")]
    assert problems[0].message == "unbalanced '{' at position 0"
    assert problems[1].message.endswith("at position 2")


def test_lint_flags_unknown_variables_with_a_suggestion() -> None:
    rows = [("Framed-Pool", "x"), ("Framed-Pool", "x"), ("Framed-Pool", "{max_dowload}{zzz}")]

    problems = lint_layout(rows, CATALOG)

    assert [(p.row, p.field) for p in problems] == [(2, "template"), (2, "template")]
    assert problems[0].message == "unknown variable 'max_dowload'; did you mean 'max_download'?"
    assert problems[1].message == "unknown variable 'zzz'"


def test_lint_reports_every_problem_of_every_row() -> None:
    rows = [
        ("Nope", "{bad"),
        ("Framed-IP-Address", "{pool_name_ipv4}"),
        ("Framed-Pool", "{pool_name_ipv4}"),
        ("Nope", "{username}"),
    ]

    problems = lint_layout(rows, CATALOG)

    assert [p.location for p in problems] == [
        "attributes[0].attribute",
        "attributes[0].template",
        "attributes[1].template",
        "attributes[3].attribute",
    ]


def test_custom_variables_render_as_placeholder_text_in_the_lint() -> None:
    # Their type is unknown when the layout is saved; a fixed text makes the check predictable.
    [problem] = lint_layout([("Session-Timeout", "{custom.timeout}")], CATALOG)

    assert "'sample-timeout'" in problem.message


def test_invalid_layout_carries_every_problem() -> None:
    problems = [
        LayoutProblem(0, "attribute", "unknown attribute 'Nope'"),
        LayoutProblem(3, "template", "unknown variable 'zzz'"),
    ]

    error = invalid_layout(problems)

    assert isinstance(error, InvalidLayout)
    assert error.field == "attributes[0].attribute"
    assert error.detail == (
        "attributes[0].attribute: unknown attribute 'Nope'; "
        "attributes[3].template: unknown variable 'zzz'"
    )


def test_invalid_layout_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one"):
        invalid_layout([])


# --- against the real dictionaries, once they have landed ------------------------------------


def test_lint_refuses_the_row_at_which_the_sample_reply_passes_4096_octets() -> None:
    # 252 octets a row: the header and Message-Authenticator (38) and 16 rows make 4070.
    rows = [("Framed-Pool", "p" * 250)] * 17

    [problem] = lint_layout(rows, CATALOG)

    assert (problem.row, problem.field) == (16, "template")
    assert "4322 octets" in problem.message and "4096" in problem.message
    assert lint_layout(rows[:16], CATALOG) == []


def test_lint_sizes_the_sample_whose_custom_fields_are_short() -> None:
    # What a billing system may later write into a custom field is unknown when the layout is
    # saved: the preview and the daemon judge each contract's reply.
    assert lint_layout([("Framed-Pool", "{custom.note}")] * 17, CATALOG) == []


@pytest.fixture
def real_catalog() -> Iterator[AttributeLookup]:
    if not (_real_check_value_landed() and DICTIONARY.is_file()):
        pytest.skip("radius.dictionary is still a stub")
    yield dictionary.AttributeCatalog.load(DICTIONARY)


def test_common_layout_lints_clean_with_the_real_dictionaries(
    real_catalog: AttributeLookup,
) -> None:
    rows = [("Framed-IP-Address", "{ipv4}"), ("Framed-Pool", "{pool_name_ipv4}")]

    assert lint_layout(rows, real_catalog) == []
    assert lint_layout([("Session-Timeout", "{username}")], real_catalog)[0].row == 0


# --- tags (RFC 2868) ---------------------------------------------------------------------------


def test_lint_accepts_a_tag_on_a_has_tag_attribute() -> None:
    rows = [("Tunnel-Type:1", "VLAN"), ("Tunnel-Password:31", "secret"), ("Tunnel-Type", "13")]

    assert lint_layout(rows, CATALOG) == []


@pytest.mark.parametrize(
    ("attribute", "words"),
    [
        ("Framed-Pool:1", "Framed-Pool takes no tag"),
        ("Tunnel-Type:0", "1..31"),
        ("Tunnel-Type:32", "1..31"),
        ("Tunnel-Type:x", "1..31"),
        ("Tunnel-Type:", "1..31"),
        ("Nope:1", "unknown attribute 'Nope'"),
    ],
)
def test_lint_refuses_a_tag_the_attribute_cannot_carry(attribute: str, words: str) -> None:
    [problem] = lint_layout([("Session-Timeout", "1"), (attribute, "13")], CATALOG)

    assert (problem.row, problem.field) == (1, "attribute")
    assert words in problem.message


def test_lint_counts_the_tag_octet_in_the_reply_size() -> None:
    # 38 octets of header and Message-Authenticator + 16 x 252 + 26 = 4096, a full packet;
    # the tag octet (RFC 2868 §3) of the last row makes it one too many.
    full = [("Framed-Pool", "x" * 250)] * 16
    assert lint_layout([*full, ("Tunnel-Private-Group-Id", "y" * 24)], CATALOG) == []
    [problem] = lint_layout([*full, ("Tunnel-Private-Group-Id:3", "y" * 24)], CATALOG)
    assert (problem.row, problem.field) == (16, "template")
    assert "4097 octets" in problem.message
