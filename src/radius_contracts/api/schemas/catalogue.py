"""Manufacturers, POPs, NAS, RADIUS attributes, layouts and pools."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from radius_contracts.api.schemas.common import (
    AuditedOutput,
    Description,
    Id,
    Input,
    IpAddress,
    IpOrNetwork,
    ListQuery,
    Name,
    Network,
    Output,
    Patch,
    Port,
    Printable,
    VendorId,
)
from radius_contracts.domain import (
    COA_IDENTIFIERS,
    CoaPolicy,
    LayoutPurpose,
    PoolFamily,
    PoolMode,
)

# Shared secrets every RADIUS tutorial uses; a NAS configured with one is an open door.
WELL_KNOWN_SECRETS = frozenset({"testing123", "secret", "radius", "changeme", "password", "cisco"})
Secret = Annotated[
    str,
    StringConstraints(min_length=8, max_length=128),
    Printable,
    Field(description="Shared secret (write-only: never returned)."),
]
RadsecSecret = Annotated[
    str,
    StringConstraints(min_length=8, max_length=128),
    Printable,
    Field(
        description='Shared secret over RadSec (write-only). null: "radsec", as RFC 6614 §2.3 '
        "says; TLS protects the packets either way."
    ),
]
RadsecPin = Annotated[
    str,
    StringConstraints(
        pattern=r"^(sha256:(?:[0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}|[^\x00-\x1f\x7f:]{1,255})$"
    ),
    Field(
        description="The client certificate this NAS must present over RadSec: its subject CN "
        '(e.g. "nas-1"), or "sha256:" and the hex SHA-256 of the certificate (colons '
        "allowed). null: any certificate from the CA."
    ),
]
AttributeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
LayoutAttributeName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(:[0-9]{1,2})?$")
]
AttributeType = Literal[
    "string", "octets", "ipaddr", "ipv6addr", "ipv6prefix", "ifid", "integer", "integer64",
    "signed", "short", "byte", "date", "ether", "combo-ip",
]  # fmt: skip
Template = Annotated[str, StringConstraints(min_length=1, max_length=1000), Printable]


# -- manufacturers ------------------------------------------------------------------------------

CoaIdentifier = Literal[COA_IDENTIFIERS]  # type: ignore[valid-type]
COA_IDENTIFIERS_TEXT = (
    "Attributes a CoA or Disconnect-Request names the session by (RFC 5176 §3), each sent "
    "when the session's accounting recorded it: " + ", ".join(COA_IDENTIFIERS) + "."
)
COA_ATTRIBUTES_TEXT = (
    "Reply attributes this manufacturer's NAS change on a live session by CoA-Request, e.g. "
    "Mikrotik-Rate-Limit. When a contract change alters only these, a CoA carries their new "
    "values; when it alters any other reply attribute (an address, a pool), or a status makes "
    "the contract refused, the session is disconnected instead. Empty: every change "
    "disconnects."
)
COA_DEACTIVATE_TEXT = (
    "For service attributes: the attribute that switches the old service off, sent with the "
    'old service\'s name before the new value, e.g. {"ERX-Service-Activate": '
    '"ERX-Service-Deactivate"} (Juniper).'
)
COA_FALLBACK_TEXT = (
    "When the NAS refuses a CoA (NAK) or never answers it, send a Disconnect-Request, so the "
    "subscriber reconnects with the new settings."
)
_COA = CoaPolicy()
CoaIdentifiers = Annotated[
    list[CoaIdentifier], Field(max_length=len(COA_IDENTIFIERS), description=COA_IDENTIFIERS_TEXT)
]
CoaAttributes = Annotated[
    list[AttributeName], Field(max_length=64, description=COA_ATTRIBUTES_TEXT)
]
CoaDeactivate = Annotated[
    dict[AttributeName, AttributeName], Field(max_length=16, description=COA_DEACTIVATE_TEXT)
]


class ManufacturerCreate(Input):
    name: Name
    vendor_id: VendorId | None = None
    dictionary_vendor: Name | None = Field(
        default=None, description="Vendor name in the loaded dictionaries, e.g. Mikrotik."
    )
    description: Description | None = None
    active: bool = True
    # The domain's default policy, as the table's column defaults have it.
    # (pydantic copies a mutable default for each body.)
    coa_identifiers: CoaIdentifiers = list(_COA.identifiers)
    coa_attributes: CoaAttributes = list(_COA.attributes)
    coa_deactivate: CoaDeactivate = dict(_COA.deactivate)
    coa_disconnect_fallback: bool = Field(
        default=_COA.disconnect_fallback, description=COA_FALLBACK_TEXT
    )


class ManufacturerUpdate(Patch):
    not_null = frozenset(
        {"name", "active", "coa_identifiers", "coa_attributes", "coa_deactivate",
         "coa_disconnect_fallback"}
    )  # fmt: skip
    name: Name | None = None
    vendor_id: VendorId | None = None
    dictionary_vendor: Name | None = None
    description: Description | None = None
    active: bool | None = None
    coa_identifiers: CoaIdentifiers | None = None
    coa_attributes: CoaAttributes | None = None
    coa_deactivate: CoaDeactivate | None = None
    coa_disconnect_fallback: bool | None = Field(default=None, description=COA_FALLBACK_TEXT)


class ManufacturerPublic(AuditedOutput):
    id: int
    name: str
    vendor_id: int | None
    dictionary_vendor: str | None
    description: str | None
    active: bool
    coa_identifiers: list[str] = Field(description=COA_IDENTIFIERS_TEXT)
    coa_attributes: list[str] = Field(description=COA_ATTRIBUTES_TEXT)
    coa_deactivate: dict[str, str] = Field(description=COA_DEACTIVATE_TEXT)
    coa_disconnect_fallback: bool = Field(description=COA_FALLBACK_TEXT)


class ManufacturerFilters(ListQuery):
    active: bool | None = None
    vendor_id: VendorId | None = None
    q: Name | None = Field(default=None, description="Text search in name and vendor.")


# -- POPs ---------------------------------------------------------------------------------------


class PopCreate(Input):
    name: Name
    city: Name | None = None
    description: Description | None = None
    active: bool = True


class PopUpdate(Patch):
    not_null = frozenset({"name", "active"})
    name: Name | None = None
    city: Name | None = None
    description: Description | None = None
    active: bool | None = None


class PopPublic(AuditedOutput):
    id: int
    name: str
    city: str | None
    description: str | None
    active: bool


class PopFilters(ListQuery):
    active: bool | None = None
    q: Name | None = Field(default=None, description="Text search in name, city, description.")


# -- NAS ----------------------------------------------------------------------------------------


def _interim(seconds: int) -> int:
    # RFC 2869 §5.16: intervals under 60 s should not be used, and many NAS clamp them anyway.
    if 0 < seconds < 60:
        raise ValueError("must be 0 (send none) or 60 to 86400 seconds")
    return seconds


InterimInterval = Annotated[
    int,
    Field(
        ge=0,
        le=86400,
        description="Acct-Interim-Interval (seconds, 60 to 86400) sent to this NAS in every "
        "Access-Accept: how often it reports Interim-Updates of open sessions. 0: send none "
        "(its sessions are then never closed as stale). null: the daemon's default "
        "([accounting] interim_interval).",
    ),
    AfterValidator(_interim),
]


def _not_well_known(secret: str | None) -> str | None:
    if secret is not None and secret.lower() in WELL_KNOWN_SECRETS:
        raise ValueError("is a well-known default secret; choose a long random one")
    return secret


class NasCreate(Input):
    name: Name
    address: IpOrNetwork = Field(description="Source IP address or CIDR network of the NAS.")
    secret: Secret
    manufacturer_id: Id
    pop_id: Id | None = None
    coa_port: Port = Field(default=3799, description="UDP port of the NAS's CoA server.")
    coa_address: IpAddress | None = Field(
        default=None,
        description="Where CoA and Disconnect-Requests go, when not to `address` (a NAS "
        "known by a network, or one that takes CoA on another address). null: `address`, or "
        "for a network the NAS-IP-Address the session's accounting reported.",
    )
    require_message_authenticator: bool = Field(
        default=True, description="Drop Access-Requests without Message-Authenticator."
    )
    interim_interval: InterimInterval | None = None
    radsec_secret: RadsecSecret | None = None
    radsec_pin: RadsecPin | None = None
    description: Description | None = None
    active: bool = True

    _secret = field_validator("secret", "radsec_secret")(_not_well_known)


class NasUpdate(Patch):
    not_null = frozenset(
        {"name", "address", "secret", "manufacturer_id", "coa_port",
         "require_message_authenticator", "active"}
    )  # fmt: skip
    name: Name | None = None
    address: IpOrNetwork | None = None
    secret: Secret | None = None
    manufacturer_id: Id | None = None
    pop_id: Id | None = None
    coa_port: Port | None = None
    coa_address: IpAddress | None = Field(
        default=None,
        description="Where CoA and Disconnect-Requests go, when not to `address` (a NAS "
        "known by a network, or one that takes CoA on another address). null: `address`, or "
        "for a network the NAS-IP-Address the session's accounting reported.",
    )
    require_message_authenticator: bool | None = None
    interim_interval: InterimInterval | None = None
    radsec_secret: RadsecSecret | None = None
    radsec_pin: RadsecPin | None = None
    description: Description | None = None
    active: bool | None = None

    _secret = field_validator("secret", "radsec_secret")(_not_well_known)


class NasPublic(AuditedOutput):
    id: int
    name: str
    address: str
    manufacturer_id: int
    pop_id: int | None
    coa_port: int
    coa_address: str | None
    require_message_authenticator: bool
    interim_interval: int | None = Field(
        description="Acct-Interim-Interval sent to this NAS (seconds); 0: none; null: the "
        "daemon's default."
    )
    accounting_on_at: datetime | None = Field(
        description="When the NAS last sent Accounting-On or Accounting-Off (it restarted; "
        "its sessions open before then were closed), UTC. Read-only; null if never."
    )
    radsec_secret_set: bool = Field(
        default=False, description="Whether radsec_secret is set (the secret is write-only)."
    )
    radsec_pin: str | None = None
    description: str | None
    active: bool


class NasFilters(ListQuery):
    active: bool | None = None
    manufacturer_id: Id | None = None
    pop_id: Id | None = None
    address: IpOrNetwork | None = None
    q: Name | None = Field(default=None, description="Text search in name, address, description.")


# -- RADIUS attributes --------------------------------------------------------------------------


class AttributeCreate(Input):
    """An operator-added vendor-specific attribute the shipped dictionaries do not know."""

    name: AttributeName
    vendor: Name | None = Field(default=None, description="Dictionary vendor name.")
    vendor_id: VendorId | None = None
    code: int = Field(ge=1, le=65535)
    type: AttributeType
    has_tag: bool = False
    description: Description | None = None
    active: bool = True


class AttributeUpdate(Patch):
    not_null = frozenset({"name", "code", "type", "has_tag", "active"})
    name: AttributeName | None = None
    code: int | None = Field(default=None, ge=1, le=65535)
    type: AttributeType | None = None
    has_tag: bool | None = None
    description: Description | None = None
    active: bool | None = None


class AttributePublic(AuditedOutput):
    id: int
    name: str
    vendor: str | None
    vendor_id: int | None
    code: int
    type: str
    has_tag: bool
    encrypt: int
    source: Literal["dictionary", "operator"]
    description: str | None
    active: bool


class AttributeFilters(ListQuery):
    active: bool | None = None
    vendor: Name | None = None
    vendor_id: VendorId | None = None
    source: Literal["dictionary", "operator"] | None = None
    type: AttributeType | None = None
    q: Name | None = Field(default=None, description="Text search in name, vendor, description.")


# -- layouts ------------------------------------------------------------------------------------


class LayoutRow(Input):
    attribute: LayoutAttributeName = Field(
        description="Dictionary attribute name; an attribute the dictionaries mark has_tag may "
        'name its tag 1..31 after a colon (RFC 2868), e.g. "Tunnel-Type:1"'
    )
    template: Template = Field(
        description='e.g. "{max_upload}/{max_download}"; "{min_upload|0}" falls back to 0 '
        "when the contract has no value"
    )


class LayoutRowPublic(Output):
    attribute: str
    template: str


class LayoutCreate(Input):
    name: Name
    manufacturer_id: Id | None = Field(default=None, description="None: any manufacturer.")
    purpose: LayoutPurpose = LayoutPurpose.ACTIVE
    attributes: list[LayoutRow] = Field(default_factory=list, max_length=100)
    description: Description | None = None
    active: bool = True


class LayoutUpdate(Patch):
    not_null = frozenset({"name", "purpose", "attributes", "active"})
    name: Name | None = None
    manufacturer_id: Id | None = None
    purpose: LayoutPurpose | None = None
    attributes: list[LayoutRow] | None = Field(default=None, max_length=100)
    description: Description | None = None
    active: bool | None = None


class LayoutPublic(AuditedOutput):
    id: int
    name: str
    manufacturer_id: int | None
    purpose: LayoutPurpose
    attributes: list[LayoutRowPublic]
    description: str | None
    active: bool


class LayoutFilters(ListQuery):
    active: bool | None = None
    manufacturer_id: Id | None = None
    purpose: LayoutPurpose | None = None
    q: Name | None = None


class VariablePublic(Output):
    name: str
    description: str
    example: str


# -- pools --------------------------------------------------------------------------------------


class PoolCreate(Input):
    name: Name
    family: PoolFamily
    ranges: list[Network] = Field(min_length=1, max_length=256)
    prefix_length: int | None = Field(
        default=None,
        ge=0,
        le=128,
        description="Prefix handed to each subscriber (ipv6: default 64; ipv6-pd: required).",
    )
    mode: PoolMode = PoolMode.MANAGED
    lease_time: int = Field(default=86400, ge=60, le=2**31 - 1, description="Seconds.")
    description: Description | None = None
    active: bool = True


class PoolUpdate(Patch):
    not_null = frozenset({"name", "family", "ranges", "mode", "lease_time", "active"})
    name: Name | None = None
    family: PoolFamily | None = None
    ranges: list[Network] | None = Field(default=None, min_length=1, max_length=256)
    prefix_length: int | None = Field(default=None, ge=0, le=128)
    mode: PoolMode | None = None
    lease_time: int | None = Field(default=None, ge=60, le=2**31 - 1)
    description: Description | None = None
    active: bool | None = None


class PoolPublic(AuditedOutput):
    id: int
    name: str
    family: PoolFamily
    ranges: list[str]
    prefix_length: int | None
    mode: PoolMode
    lease_time: int
    description: str | None
    active: bool


class PoolFilters(ListQuery):
    active: bool | None = None
    family: PoolFamily | None = None
    mode: PoolMode | None = None
    q: Name | None = None


class PoolUsagePublic(Output):
    """How much of a pool is leased right now.

    A lease is held while its expiry is in the future: ``offered`` from Access-Accept until
    Accounting-Start (or the offer timeout), then ``bound`` for the pool's lease time, renewed
    by each Interim-Update and ended by Accounting-Stop. Pools in ``nas`` mode are leased by
    the NAS itself: the daemon holds no lease in them, so ``held`` is 0 and ``free`` is
    ``size``.
    """

    pool_id: int = Field(description="The pool's id.")
    name: str = Field(description="The pool's name.")
    family: PoolFamily
    mode: PoolMode
    size: int = Field(
        description="Addresses (ipv4) or prefixes of prefix_length (ipv6, ipv6-pd) the pool "
        "can lease. IPv4 ranges shorter than /31 leave out their network and broadcast "
        "addresses; addresses fixed on contracts are included. May exceed 64 bits for IPv6."
    )
    held: int = Field(description="Leases held now (offered + bound); 0 for a nas pool.")
    offered: int = Field(description="Held leases sent in an Access-Accept, not yet confirmed.")
    bound: int = Field(description="Held leases confirmed by Accounting-Start or Interim-Update.")
    free: int = Field(description="size - held.")
