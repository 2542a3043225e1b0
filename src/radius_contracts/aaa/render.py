"""Template variables of a contract, layout linting and rendering of layout rows."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

from radius_contracts.aaa.templates import (
    CUSTOM_PREFIXES,
    MissingVariable,
    TemplateError,
    parse_template,
)
from radius_contracts.domain import ConnectionConfig, ContractSnapshot, ContractStatus, parse_speed
from radius_contracts.errors import InvalidLayout
from radius_contracts.plans import (
    PlanSnapshot,
    QuotaAction,
    QuotaCounts,
    QuotaPeriod,
    QuotaRule,
    QuotaState,
    Speeds,
)
from radius_contracts.radius import codec
from radius_contracts.radius.dictionary import AttributeSpec, check_value, encode_value, split_tag

__all__ = [
    "SAMPLE_CONTEXT",
    "SAMPLE_CONTRACT",
    "VARIABLES",
    "AttributeLookup",
    "LayoutProblem",
    "VariableInfo",
    "invalid_layout",
    "lint_layout",
    "render_rows",
    "sample_values",
    "template_values",
]

_SPEEDS = ("min_upload", "max_upload", "min_download", "max_download")

SAMPLE_CONTRACT = ContractSnapshot(
    id=1,
    number="C-0001",
    status=ContractStatus.ACTIVE,
    config=ConnectionConfig(
        username="sample",
        password="sample-password",  # noqa: S106 - placeholder, never a real credential
        min_upload="2M",
        max_upload="10M",
        min_download="5M",
        max_download="50M",
        pool_name_ipv4="pool-v4",
        ipv4="100.64.0.10",
        pool_name_ipv6="pool-v6",
        ipv6="2001:db8:1::/64",
        delegated_ipv6_prefix="2001:db8:100::/56",
        mac="00:11:22:33:44:55",
        simultaneous_use=1,
    ),
    start_date=date(2024, 1, 1),
    end_date=date(2030, 12, 31),
    auto_extend=True,
    customer_name="Sample Customer",
    customer_external_id="CUST-0001",
    custom_fields={"vlan": 100},
    customer_custom_fields={"segment": "business"},
    plan_id=1,
    billing_day=15,
    plan=PlanSnapshot(
        id=1,
        name="sample-plan",
        speeds=Speeds("2M", "10M", "5M", "50M"),
        session_timeout=86400,
        idle_timeout=900,
        quota=QuotaRule(
            cap_bytes=10**12,
            period=QuotaPeriod.MONTH,
            counts=QuotaCounts.BOTH,
            action=QuotaAction.FUP,
            speeds=Speeds(max_upload="5M", max_download="20M"),
        ),
    ),
    quota_state=QuotaState.NORMAL,
)
"""A contract with every field set: what layouts are checked against and previewed with."""

SAMPLE_CONTEXT: Mapping[str, str] = {
    "nas_name": "nas-sample",
    "nas_address": "192.0.2.1",
    "pop_name": "pop-sample",
    "manufacturer_name": "MikroTik",
}
"""NAS/POP context that goes with SAMPLE_CONTRACT (keyword arguments of template_values)."""


@dataclass(frozen=True, slots=True)
class VariableInfo:
    """One template variable as served by ``radius/layouts/variables``."""

    name: str
    description: str
    example: str


@dataclass(frozen=True, slots=True)
class LayoutProblem:
    """Why layout row ``row`` (0-based) is refused; ``field`` is the part of the row at fault."""

    row: int
    field: Literal["attribute", "template"]
    message: str

    @property
    def location(self) -> str:
        """The row's JSON path in a layout body, e.g. ``attributes[3].template``."""
        return f"attributes[{self.row}].{self.field}"


class AttributeLookup(Protocol):
    """What linting needs from the dictionaries (AttributeCatalog satisfies it)."""

    def get(self, name: str) -> AttributeSpec | None: ...


def _custom_prefix(name: str) -> str | None:
    return next((p for p in CUSTOM_PREFIXES if name.startswith(p)), None)


def _bps(speed: str | None) -> int | None:
    if speed is None:
        return None
    try:
        return parse_speed(speed)
    except ValueError:
        return None


def _text(value: object) -> str:
    """Text of a variable: JSON spelling for booleans and containers, str() for the rest."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


def template_values(
    contract: ContractSnapshot,
    *,
    nas_name: str | None = None,
    nas_address: str | None = None,
    pop_name: str | None = None,
    manufacturer_name: str | None = None,
) -> dict[str, str]:
    """Every variable that has a value for ``contract`` in this NAS context, as text.

    A variable without a value (None, or a speed that does not parse for ``_bps``/``_kbps``)
    is absent rather than empty, so render_rows can leave its rows out.
    """
    cfg = contract.config
    candidates: dict[str, object] = {
        "username": cfg.username,
        "contract_number": contract.number,
        "contract_id": contract.id,
        "status": str(contract.status),
        "customer_name": contract.customer_name,
        "customer_external_id": contract.customer_external_id,
        "ipv4": cfg.ipv4,
        "ipv6": cfg.ipv6,
        "delegated_ipv6_prefix": cfg.delegated_ipv6_prefix,
        "pool_name_ipv4": cfg.pool_name_ipv4,
        "pool_name_ipv6": cfg.pool_name_ipv6,
        "mac": cfg.mac,
        "simultaneous_use": cfg.simultaneous_use,
        "plan": contract.plan.name if contract.plan is not None else None,
        "quota_state": contract.quota_state,
        "session_timeout": contract.plan.session_timeout if contract.plan is not None else None,
        "idle_timeout": contract.plan.idle_timeout if contract.plan is not None else None,
        "nas_name": nas_name,
        "nas_address": nas_address,
        "pop_name": pop_name,
        "manufacturer_name": manufacturer_name,
    }
    speeds = {
        "min_upload": cfg.min_upload,
        "max_upload": cfg.max_upload,
        "min_download": cfg.min_download,
        "max_download": cfg.max_download,
    }
    for name, speed in speeds.items():
        candidates[name] = speed
        bps = _bps(speed)
        if bps is not None:
            candidates[f"{name}_bps"] = bps
            candidates[f"{name}_kbps"] = bps // 1000
    for key, value in contract.custom_fields.items():
        candidates[f"custom.{key}"] = value
    for key, value in contract.customer_custom_fields.items():
        candidates[f"customer.{key}"] = value
    return {name: _text(value) for name, value in candidates.items() if value is not None}


def sample_values(variables: Iterable[str] = ()) -> dict[str, str]:
    """Values of SAMPLE_CONTRACT in SAMPLE_CONTEXT, with ``sample-<key>`` for custom fields.

    Custom fields differ per contract and have no declared type, so every custom variable
    named in ``variables`` gets this placeholder, whatever keys the sample itself carries.
    """
    values = {
        name: value
        for name, value in template_values(SAMPLE_CONTRACT, **SAMPLE_CONTEXT).items()
        if _custom_prefix(name) is None
    }
    for name in variables:
        prefix = _custom_prefix(name)
        if prefix:
            values[name] = f"sample-{name[len(prefix) :]}"
    return values


def _variable_catalogue() -> tuple[VariableInfo, ...]:
    examples = sample_values(("custom.<key>", "customer.<key>"))
    described = [
        ("username", "Login name of the contract"),
        ("contract_number", "Contract number"),
        ("contract_id", "Numeric contract id"),
        ("status", "Contract status: active, suspended, inactive or cancelled"),
        ("customer_name", "Customer name"),
        ("customer_external_id", "Customer id in the billing system"),
    ]
    for speed in _SPEEDS:
        words = speed.replace("_", " ")
        described += [
            (speed, f"{words.capitalize()} speed as entered, e.g. 50M"),
            (f"{speed}_bps", f"{words.capitalize()} speed in bit/s (integer)"),
            (f"{speed}_kbps", f"{words.capitalize()} speed in kbit/s (integer, rounded down)"),
        ]
    described += [
        ("ipv4", "Fixed IPv4 address"),
        ("ipv6", "Fixed IPv6 prefix (Framed-IPv6-Prefix)"),
        ("delegated_ipv6_prefix", "Delegated IPv6 prefix (DHCPv6-PD)"),
        ("pool_name_ipv4", "IPv4 pool name"),
        ("pool_name_ipv6", "IPv6 pool name"),
        ("mac", "MAC address the contract is bound to"),
        ("simultaneous_use", "Maximum number of simultaneous sessions"),
        ("plan", "Name of the contract's plan (absent without a plan)"),
        (
            "quota_state",
            "normal, or over when the contract used up its plan's data quota this period "
            "(absent when the plan has no quota)",
        ),
        ("session_timeout", "The plan's Session-Timeout in seconds"),
        ("idle_timeout", "The plan's Idle-Timeout in seconds"),
        ("nas_name", "Name of the NAS asking"),
        ("nas_address", "Address of the NAS asking"),
        ("pop_name", "Point of presence of the NAS"),
        ("manufacturer_name", "Manufacturer of the NAS"),
        (
            "custom.<key>",
            "Contract custom field <key>, e.g. {custom.vlan}; true/false for booleans",
        ),
        (
            "customer.<key>",
            "Customer custom field <key>, e.g. {customer.segment}; true/false for booleans",
        ),
    ]
    return tuple(VariableInfo(name, text, examples[name]) for name, text in described)


VARIABLES: tuple[VariableInfo, ...] = _variable_catalogue()
"""Every variable a template may use; the custom forms are patterns (``<key>`` is any key)."""

# Only the fixed names: the custom forms are checked by prefix.
_KNOWN = frozenset(v.name for v in VARIABLES if _custom_prefix(v.name) is None)


def lint_layout(rows: Sequence[tuple[str, str]], catalog: AttributeLookup) -> list[LayoutProblem]:
    """Every problem of the layout ``rows`` of ``(attribute, template)``, in row order.

    A row is refused when its attribute is not in ``catalog``, its template does not parse,
    it names an unknown variable (with or without fallback), or it renders to a value that
    ``check_value`` rejects for the attribute's type, either for the sample contract or, for
    a template with fallbacks, with every fallback in place of its variable. And the row at
    which the sample contract's reply passes the 4096 octets of a RADIUS packet (RFC 2865 §3)
    is refused: no contract with all of its variables could be answered.
    """
    problems: list[LayoutProblem] = []
    size = codec.REPLY_OVERHEAD  # the sample's reply so far: header, Message-Authenticator
    oversized = False
    for row, (attribute, text) in enumerate(rows):
        spec, tag = _row_spec(row, attribute, catalog, problems)
        try:
            template = parse_template(text)
        except TemplateError as exc:
            problems.append(LayoutProblem(row, "template", str(exc)))
            continue
        unknown = sorted(n for n in template.variables if not _is_known(n))
        for name in unknown:
            problems.append(LayoutProblem(row, "template", _unknown_message(name)))
        if spec is None or unknown:
            continue
        values = sample_values(template.variables)
        value = template.render(values)
        reason = check_value(spec, value)
        if reason is not None:
            message = (
                f"renders {value!r} for the sample contract, which {spec.name} "
                f"({spec.type}) cannot take: {reason}"
            )
            problems.append(LayoutProblem(row, "template", message))
            continue
        if not oversized:
            size += _size(spec, value, tag)
            if size > codec.MAX_PACKET:
                oversized = True
                message = (
                    f"with this row the reply to the sample contract is {size} octets (header "
                    f"and Message-Authenticator included), more than the {codec.MAX_PACKET} of "
                    "a RADIUS packet (RFC 2865 §3)"
                )
                problems.append(LayoutProblem(row, "template", message))
        optional = template.variables - template.required
        if not optional:
            continue
        # The sample has every value, so the fallbacks would never be checked: render once
        # more as for a contract that has none of the optional variables.
        for name in optional:
            del values[name]
        value = template.render(values)
        reason = check_value(spec, value)
        if reason is not None:
            names = ", ".join(sorted(optional))
            message = (
                f"renders {value!r} with the fallbacks (no value for {names}), which "
                f"{spec.name} ({spec.type}) cannot take: {reason}"
            )
            problems.append(LayoutProblem(row, "template", message))
    return problems


def _row_spec(
    row: int, attribute: str, catalog: AttributeLookup, problems: list[LayoutProblem]
) -> tuple[AttributeSpec | None, int | None]:
    """The spec and tag a row's ``Name`` or ``Name:tag`` names; no spec after adding why not."""
    try:
        name, tag = split_tag(attribute)
    except ValueError as exc:
        problems.append(LayoutProblem(row, "attribute", str(exc)))
        return None, None
    spec = catalog.get(name)
    if spec is None:
        problems.append(LayoutProblem(row, "attribute", f"unknown attribute {name!r}"))
        return None, None
    if tag is not None and not spec.has_tag:
        # RFC 2868 §3: only the tunnel attributes (and vendor ones a dictionary marks
        # has_tag) carry a tag octet; on any other it would be read as part of the value.
        message = f"{spec.name} takes no tag (the dictionaries do not mark it has_tag)"
        problems.append(LayoutProblem(row, "attribute", message))
        return None, None
    return spec, tag


def invalid_layout(problems: Sequence[LayoutProblem]) -> InvalidLayout:
    """One InvalidLayout for a non-empty lint result: every message, the first row's field."""
    if not problems:
        raise ValueError("invalid_layout needs at least one problem")
    detail = "; ".join(f"{p.location}: {p.message}" for p in problems)
    return InvalidLayout(detail, field=problems[0].location)


def render_rows(
    rows: Iterable[tuple[str, str]], values: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Render layout rows to ``(attribute, value)`` pairs for a reply.

    A row whose template uses a variable without fallback that is missing from ``values`` is
    left out: a contract without a fixed address gets no ``Framed-IP-Address = "{ipv4}"``, one
    without a custom field gets no row that uses it. A missing variable with a fallback
    (``{min_upload|0}``) renders the fallback and keeps the row. Literal-only rows are always
    sent. Raises TemplateError for a template that does not parse, which lint_layout prevents
    when a layout is saved.
    """
    rendered: list[tuple[str, str]] = []
    for attribute, text in rows:
        try:
            rendered.append((attribute, parse_template(text).render(values)))
        except MissingVariable:
            continue
    return rendered


def _size(spec: AttributeSpec, value: str, tag: int | None) -> int:
    """Octets ``value`` adds to a reply as ``spec``; 0 for what the codec would refuse."""
    try:
        return codec.attribute_size(spec, encode_value(spec, value), tag)
    except ValueError:
        return 0  # e.g. a tagged integer too large for its 24 bits: render() leaves it out


def _is_known(name: str) -> bool:
    return name in _KNOWN or _custom_prefix(name) is not None


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, _KNOWN, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown variable {name!r}{hint}"
