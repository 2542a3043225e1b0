"""Contracts as billing systems send them: nested customer, config block, external refs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema, model_validator

from radius_contracts.aaa.handler import Preview
from radius_contracts.api.schemas.billing import Day, HLibertyContract, Status
from radius_contracts.api.schemas.common import (
    IPV4,
    IPV6_NETWORK,
    AuditedOutput,
    CustomFields,
    Id,
    Input,
    IpAddress,
    ListQuery,
    Name,
    Network,
    Output,
    Patch,
    Printable,
    Text253,
)
from radius_contracts.db.models import Contract
from radius_contracts.domain import ContractStatus, allowed_transitions, parse_mac, parse_speed
from radius_contracts.services.contract_fields import (
    config_defaults,
    contract_defaults,
    customer_defaults,
)

# What a new contract gets for a field left out, shown as the OpenAPI defaults. The service
# fills them in (create bodies go there with only the fields sent: service_values), so these
# are for reading; they come from the same place, and a test compares the empty ones too.
_CONTRACT = contract_defaults()
_CONFIG = config_defaults()
_CUSTOMER = customer_defaults()


def _speed(value: str) -> str:
    try:
        parse_speed(value)
    except ValueError:
        # parse_speed's reason quotes the value, which a 422 never does (problems._validation).
        raise ValueError(
            "must be a whole number of bit/s, or a number with a k/M/G suffix (512k, 1.5M, 1G)"
        ) from None
    return value


def _password(value: str) -> str:
    # RFC 2865 §5.2: User-Password carries at most 128 octets.
    if len(value.encode()) > 128:
        raise ValueError("must be at most 128 bytes in UTF-8 (RFC 2865 §5.2)")
    return value


def normalize_mac(value: str) -> str:
    """Any common notation (aa:bb.., aa-bb-.., aabb.ccdd.eeff, aabbccddeeff) → aa:bb:cc:dd:ee:ff."""
    mac = parse_mac(value)
    if mac is None:
        raise ValueError("is not a MAC address (e.g. aa:bb:cc:dd:ee:ff)")
    return mac


def _ipv4(value: str) -> str:
    if ":" in value:
        raise ValueError("must be an IPv4 address")
    return value


def _ipv6_network(value: str) -> str:
    if ":" not in value:
        raise ValueError("must be an IPv6 prefix, e.g. 2001:db8:1::/64")
    return value


# What validation takes, as a pattern for /openapi.json: whole bit/s, or a decimal number with
# a k/M/G suffix whose decimals stay whole bit/s (1.5M, not 1.0000005M), below 2^63 bit/s.
# parse_speed also allows blanks around the parts; the pattern leaves them out.
SPEED_PATTERN = (
    r"^([0-9]{1,18}|[0-9]{1,15}(\.[0-9]{1,3})?[kK]|[0-9]{1,12}(\.[0-9]{1,6})?[mM]"
    r"|[0-9]{1,9}(\.[0-9]{1,9})?[gG])$"
)
Speed = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    AfterValidator(_speed),
    Field(description="bit/s, or with a k/M/G suffix: 512k, 50M, 1G (stored as given)"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SPEED_PATTERN,
            "maxLength": 32,
            "description": "bit/s, or with a k/M/G suffix: 512k, 50M, 1G (stored as given)",
        }
    ),
]
Password = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128),
    Printable,
    AfterValidator(_password),
    Field(description="Write-only: never returned."),
]
# The notations parse_mac takes, for /openapi.json (it also takes blanks between the digits).
MAC_PATTERN = (
    r"^([0-9A-Fa-f]{2}([:.-]?[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})$"
)
Mac = Annotated[
    str,
    StringConstraints(max_length=32),
    AfterValidator(normalize_mac),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": MAC_PATTERN,
            "description": "aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff or "
            "aabbccddeeff; stored as aa:bb:cc:dd:ee:ff.",
        }
    ),
]
Ipv4 = Annotated[IpAddress, AfterValidator(_ipv4), WithJsonSchema(IPV4)]
Ipv6Prefix = Annotated[Network, AfterValidator(_ipv6_network), WithJsonSchema(IPV6_NETWORK)]
SimultaneousUse = Annotated[
    int, Field(ge=1, le=10_000, description="Open sessions allowed; null means unlimited.")
]
App = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=128), Printable]
# The customer's id in the billing system: stored in a 100-character column.
CustomerExternalId = Annotated[str, StringConstraints(min_length=1, max_length=100), Printable]
Number = Annotated[Text253, StringConstraints(max_length=100)]
BillingDay = Annotated[
    int,
    Field(
        ge=1,
        le=31,
        description="Day of the month billing months start on (quota periods of type "
        "billing_month; 31 means each month's last day when it has fewer). Null: the 1st.",
    ),
]
PlanId = Annotated[
    Id,
    Field(description="The contract's plan: its speeds apply where the config sets none."),
]


def _pool_spelling(config: Any) -> Any:
    """HLiberty sends the IPv6 pool as ``poll_name_ipv6``; ``pool_name_ipv6`` wins when both
    are sent (as ``status`` wins over ``contract_status``)."""
    sent = config.model_fields_set
    if "poll_name_ipv6" in sent and "pool_name_ipv6" not in sent:
        config.pool_name_ipv6 = config.poll_name_ipv6
    return config


class ConnectionConfig(Input):
    username: Text253
    password: Password | None = None
    min_upload: Speed | None = None
    max_upload: Speed | None = None
    min_download: Speed | None = None
    max_download: Speed | None = None
    pool_name_ipv4: Name | None = None
    ipv4: Ipv4 | None = Field(default=None, description="Fixed IPv4 address.")
    pool_name_ipv6: Name | None = None
    ipv6: Ipv6Prefix | None = Field(
        default=None, description="Fixed IPv6 prefix (Framed-IPv6-Prefix)."
    )
    delegated_ipv6_prefix: Ipv6Prefix | None = None
    mac: Mac | None = Field(default=None, description="Bind to this Calling-Station-Id.")
    simultaneous_use: SimultaneousUse | None = _CONFIG["simultaneous_use"]
    poll_name_ipv6: Name | None = Field(
        default=None,
        exclude=True,
        description="HLiberty's spelling of pool_name_ipv6 (which wins when both are sent).",
    )

    @model_validator(mode="after")
    def _hliberty_spelling(self) -> Any:
        return _pool_spelling(self)

    def service_values(self) -> dict[str, Any]:
        """Only the fields sent: Contracts.replace_connection fills in the rest."""
        return self.model_dump(exclude_unset=True)


class ConnectionConfigPatch(Patch):
    not_null = frozenset({"username"})
    username: Text253 | None = None
    password: Password | None = None
    min_upload: Speed | None = None
    max_upload: Speed | None = None
    min_download: Speed | None = None
    max_download: Speed | None = None
    pool_name_ipv4: Name | None = None
    ipv4: Ipv4 | None = None
    pool_name_ipv6: Name | None = None
    ipv6: Ipv6Prefix | None = None
    delegated_ipv6_prefix: Ipv6Prefix | None = None
    mac: Mac | None = None
    simultaneous_use: SimultaneousUse | None = None
    poll_name_ipv6: Name | None = Field(
        default=None, exclude=True, description="HLiberty's spelling of pool_name_ipv6."
    )

    @model_validator(mode="after")
    def _hliberty_spelling(self) -> Any:
        return _pool_spelling(self)


class Customer(Input):
    external_id: CustomerExternalId | None = _CUSTOMER["external_id"]
    name: Annotated[str, StringConstraints(max_length=255), Printable] | None = _CUSTOMER["name"]
    custom_fields: CustomFields = Field(default_factory=dict)


class ExternalRef(Input):
    app: App = Field(description="The other system, e.g. billing or erp.")
    external_id: ExternalId


class _Dates(HLibertyContract):
    @model_validator(mode="after")
    def _ordered(self) -> Any:
        start = getattr(self, "start_date", None)
        end = getattr(self, "end_date", None)
        # A date-time's day depends on the ISP's time zone: the service checks those.
        dates = not isinstance(start, datetime) and not isinstance(end, datetime)
        if start and end and dates and end < start:
            raise ValueError("end_date is before start_date")
        return self

    @model_validator(mode="after")
    def _hliberty(self) -> Any:
        for name, value in self.folded(Customer).items():
            setattr(self, name, value)
        return self


class ContractCreate(_Dates):
    number: Number = Field(description="The contract number, unique.")
    status: Status = _CONTRACT["status"]
    start_date: Day | None = Field(
        default=_CONTRACT["start_date"],
        description="A date, or a date-time: its date in the ISP's time zone is kept.",
    )
    end_date: Day | None = Field(
        default=_CONTRACT["end_date"],
        description="A date, or a date-time: its date in the ISP's time zone is kept.",
    )
    auto_extend: bool = Field(
        default=_CONTRACT["auto_extend"], description="Keep working after end_date."
    )
    customer: Customer = Field(default_factory=Customer)
    custom_fields: CustomFields = Field(default_factory=dict)
    external_refs: list[ExternalRef] = Field(default_factory=list, max_length=20)
    plan_id: PlanId | None = None
    billing_day: BillingDay | None = None
    config: ConnectionConfig

    def service_values(self) -> dict[str, Any]:
        """Only the fields sent, nested ones too: Contracts.create fills in the rest."""
        return self.model_dump(exclude_unset=True)


class ContractUpdate(Patch, _Dates):
    not_null = frozenset({"number", "status", "auto_extend", "config", "customer",
                          "custom_fields", "external_refs"})  # fmt: skip
    number: Number | None = None
    status: Status | None = None
    start_date: Day | None = None
    end_date: Day | None = None
    auto_extend: bool | None = None
    customer: Customer | None = None
    custom_fields: CustomFields | None = None
    external_refs: list[ExternalRef] | None = Field(default=None, max_length=20)
    plan_id: PlanId | None = None
    billing_day: BillingDay | None = None
    config: ConnectionConfigPatch | None = None


class ContractUpsert(ContractUpdate):
    """Create-or-update from a billing system: creating needs number and config.username."""

    not_null: ClassVar[frozenset[str]] = ContractUpdate.not_null
    plan_external_id: ExternalId | None = Field(
        default=None,
        description="The plan by the billing system's own id for it (an external id of the "
        "plan under the same app as the path); instead of plan_id.",
    )

    @model_validator(mode="after")
    def _one_plan(self) -> Any:
        if self.plan_id is not None and self.plan_external_id is not None:
            raise ValueError("give plan_id or plan_external_id, not both")
        return self


class ContractUpsertItem(ContractUpsert):
    """One item of a bulk upsert: the body of the single upsert plus the contract's id in
    the billing system (what the single call has in its path)."""

    not_null: ClassVar[frozenset[str]] = ContractUpsert.not_null
    external_id: ExternalId = Field(description="The contract's id in the app of the path.")

    def changes(self) -> dict[str, Any]:
        changes = super().changes()
        changes.pop("external_id", None)
        return changes


class BulkUpsertOutcome(Output):
    index: int = Field(description="The item's position in the request, from 0.")
    external_id: str
    status: int = Field(
        description="201 created, 200 updated; else what the single upsert would have "
        "answered (404, 409, 422), with `detail` and `field`, and the item left out."
    )
    id: int | None = None
    number: str | None = None
    detail: str | None = None
    field: str | None = None


class BulkUpsertPublic(Output):
    created: int
    updated: int
    refused: int
    results: list[BulkUpsertOutcome] = Field(description="One per item, in request order.")


class ConfigPublic(Output):
    username: str
    has_password: bool
    min_upload: str | None
    max_upload: str | None
    min_download: str | None
    max_download: str | None
    pool_name_ipv4: str | None
    ipv4: str | None
    pool_name_ipv6: str | None
    ipv6: str | None
    delegated_ipv6_prefix: str | None
    mac: str | None
    simultaneous_use: int | None


class CustomerPublic(Output):
    external_id: str | None
    name: str | None
    custom_fields: dict[str, Any]


class ExternalRefPublic(Output):
    app: str
    external_id: str


class ContractPublic(AuditedOutput):
    id: int
    number: str
    status: ContractStatus
    start_date: date | None
    end_date: date | None
    auto_extend: bool
    customer: CustomerPublic
    custom_fields: dict[str, Any]
    external_refs: list[ExternalRefPublic]
    plan_id: int | None
    billing_day: int | None
    config: ConfigPublic

    @classmethod
    def of(cls, row: Contract) -> ContractPublic:
        return cls.model_validate(
            {
                **{k: getattr(row, k) for k in AuditedOutput.model_fields},
                "id": row.id,
                "number": row.number,
                "status": row.status,
                "start_date": row.start_date,
                "end_date": row.end_date,
                "auto_extend": row.auto_extend,
                "customer": {
                    "external_id": row.customer_external_id,
                    "name": row.customer_name,
                    "custom_fields": row.customer_custom_fields,
                },
                "custom_fields": row.custom_fields,
                "external_refs": [
                    {"app": ref.app, "external_id": ref.external_id} for ref in row.external_refs
                ],
                "plan_id": row.plan_id,
                "billing_day": row.billing_day,
                "config": {
                    **{
                        k: getattr(row, k) for k in ConfigPublic.model_fields if k != "has_password"
                    },
                    "has_password": bool(row.password),
                },
            }
        )


class TransitionsPublic(Output):
    status: ContractStatus
    allowed: dict[str, ContractStatus] = Field(description="Action → status it leads to.")

    @classmethod
    def of(cls, row: Contract) -> TransitionsPublic:
        status = ContractStatus(row.status)
        return cls(status=status, allowed=allowed_transitions(status))


BULK_LIMIT = 10_000


class BulkIds(Input):
    ids: list[Id] = Field(
        min_length=1,
        max_length=BULK_LIMIT,
        description=f"Contract ids, at most {BULK_LIMIT:,} (repeats count once).",
    )


class BulkRefusal(Output):
    id: int
    detail: str = Field(description="Why this contract was left as it was.")


class BulkResultPublic(Output):
    changed: list[int] = Field(description="Contracts that now have the new status.")
    refused: list[BulkRefusal] = Field(
        description="Contracts left unchanged: unknown ids, or a status the action is not "
        "allowed from (see /transitions)."
    )


class ContractFilters(ListQuery):
    status: Status | None = None
    username: Text253 | None = Field(default=None, description="Exact, case-insensitive.")
    number: Number | None = None
    customer_external_id: CustomerExternalId | None = None
    app: App | None = Field(default=None, description="Has an external reference from this app.")
    nas_id: Id | None = Field(default=None, description="Online on this NAS now.")
    pop_id: Id | None = Field(default=None, description="Online on a NAS of this POP now.")
    pool_name_ipv4: Name | None = None
    pool_name_ipv6: Name | None = None
    plan_id: Id | None = Field(default=None, description="On this plan.")
    q: Text253 | None = Field(
        default=None, description="Text search in number, username, customer name and id."
    )


class ReplyAttributePublic(Output):
    attribute: str = Field(description="Dictionary name of the attribute.")
    value: str = Field(description="The value as sent, in text form.")


class PreviewPublic(Output):
    """The reply a NAS would get for this contract now (credentials assumed right)."""

    decision: Literal["accept", "reject"] = Field(
        description="What a PAP or CHAP login would get. A reply that would not fit a RADIUS "
        "packet (4096 octets, RFC 2865 §3) is a reject: the daemon answers it with an "
        "Access-Reject, reason 'reply too large (N octets, at most 4096)'."
    )
    reason: str = Field(description="Why; for a reject, what the Reply-Message would say.")
    nas_id: int
    layout: str | None = Field(description="Name of the layout used, null if none applies.")
    attributes: list[ReplyAttributePublic] = Field(
        description="Reply attributes in wire order, without Message-Authenticator and the "
        "per-request MS-CHAPv2/MPPE attributes (also when the reply is too large: these are "
        "what would not fit)."
    )
    reply_size: int | None = Field(
        description="Octets of the Access-Accept for a PAP or CHAP login: header, "
        "Message-Authenticator, attributes, addresses leased from managed pools; without the "
        "Proxy-State a NAS or proxy may send, which is echoed and counts too. Null when the "
        "contract is refused before a reply is rendered."
    )
    warnings: list[str] = Field(
        description="Logins refused although this preview accepts, e.g. MS-CHAPv2 when its "
        "additions would pass 4096 octets."
    )

    @classmethod
    def of(cls, preview: Preview, nas_id: int) -> PreviewPublic:
        decision = preview.decision
        return cls(
            decision="accept" if decision.accept else "reject",
            reason=decision.reason,
            nas_id=nas_id,
            layout=preview.layout,
            attributes=[
                ReplyAttributePublic(attribute=a.name, value=a.value) for a in preview.attributes
            ],
            reply_size=preview.size,
            warnings=list(preview.warnings),
        )
