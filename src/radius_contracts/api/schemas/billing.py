"""Contract bodies as billing systems send them: HLiberty's field names next to ours.

HLiberty (../shared/seeds/000_…) is the system whose nouns this API follows, and its contract
JSON comes as it is: ``contract_status: "ACTIVE"`` and ``active: true`` instead of ``status``,
datetimes for dates, ``poll_name_ipv6`` in ``config``, and business fields the daemon has no
use for. The models here declare those fields (so /openapi.json shows them and a typo next to
them is still a 422) and ``fold`` turns them into ours:

- status: ``status`` if sent, else ``contract_status``, case-insensitive. ``active: false``
  makes an active or suspended contract ``inactive`` (the contract works only when both say
  so); ``active: true`` changes no status; ``active`` alone is ``active`` or ``inactive``.
- ``customer_id`` is the customer's id: ``customer.external_id`` unless that is sent too.
- the business fields (BUSINESS) go to ``custom_fields`` under their own names, when not
  null; a key also sent in ``custom_fields`` keeps the value sent there.
- dates may be datetimes: the service takes their date in the ISP's time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from radius_contracts.api.schemas.common import Input, Printable

STATUSES = ("active", "suspended", "inactive", "cancelled")
_SPELLINGS = {"canceled": "cancelled"}


def _status(value: Any) -> Any:
    """Status names in any case, and the American spelling of cancelled."""
    if isinstance(value, str):
        text = value.strip().lower()
        return _SPELLINGS.get(text, text)
    return value


Status = Annotated[
    Literal["active", "suspended", "inactive", "cancelled"],
    BeforeValidator(_status),
    Field(description="active, suspended, inactive or cancelled; any case (ACTIVE too)."),
]


def _date_time(value: Any) -> Any:
    """A date, or a text with a time part as a date-time, even at midnight:
    2024-12-26T00:00:00+00:00 is not the 26th wherever the ISP is."""
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) <= 10 else datetime.fromisoformat(text)
        except ValueError:
            pass
    # One message for the field, not one per member of the union.
    raise ValueError("must be an ISO 8601 date (2024-12-26) or date-time")


# A date, or a date-time whose date in the ISP's time zone is taken (the service does it).
Day = Annotated[date | datetime, BeforeValidator(_date_time)]


def _iso_day(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date or date-time") from None
    return value


# A business date, kept as sent: it only has to be one.
IsoDay = Annotated[
    str,
    StringConstraints(max_length=40),
    AfterValidator(_iso_day),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"},
                              {"type": "string", "format": "date"}]}),
]  # fmt: skip
Amount = int | Annotated[float, AllowInfNan(False)]
BillingId = Annotated[str, StringConstraints(min_length=1, max_length=100), Printable]
BillingText = Annotated[str, StringConstraints(max_length=100), Printable]

# HLiberty's contract fields the daemon keeps in custom_fields, as sent (dates as ISO text).
BUSINESS = (
    "customer_id",
    "billing_customer_id",
    "agent_id",
    "signature_date",
    "approval_date",
    "suspension_date",
    "cancellation_date",
    "total_value",
    "contract_stage",
    "json_original",
    "json_billing",
    "json_payment_method",
    "json_items",
)
_KEPT = "HLiberty's field; kept in custom_fields under this name."


class HLibertyContract(Input):
    """HLiberty's contract fields; none reaches the service as such (``fold``)."""

    contract_status: Status | None = Field(
        default=None, exclude=True, description="HLiberty's name for status (status wins)."
    )
    active: bool | None = Field(
        default=None,
        exclude=True,
        description="HLiberty's switch: false makes an active or suspended contract inactive; "
        "true changes no status; alone, it means status active or inactive.",
    )
    customer_id: BillingId | None = Field(
        default=None,
        exclude=True,
        description="HLiberty's customer id: customer.external_id unless that is sent, and "
        "kept in custom_fields.",
    )
    billing_customer_id: BillingId | None = Field(default=None, exclude=True, description=_KEPT)
    agent_id: BillingId | None = Field(default=None, exclude=True, description=_KEPT)
    signature_date: IsoDay | None = Field(default=None, exclude=True, description=_KEPT)
    approval_date: IsoDay | None = Field(default=None, exclude=True, description=_KEPT)
    suspension_date: IsoDay | None = Field(default=None, exclude=True, description=_KEPT)
    cancellation_date: IsoDay | None = Field(default=None, exclude=True, description=_KEPT)
    total_value: Amount | None = Field(default=None, exclude=True, description=_KEPT)
    contract_stage: BillingText | None = Field(default=None, exclude=True, description=_KEPT)
    json_original: Any = Field(default=None, exclude=True, description=_KEPT)
    json_billing: Any = Field(default=None, exclude=True, description=_KEPT)
    json_payment_method: Any = Field(default=None, exclude=True, description=_KEPT)
    json_items: Any = Field(default=None, exclude=True, description=_KEPT)

    def folded(self, customer_type: Callable[..., Input]) -> dict[str, Any]:
        """What HLiberty's fields say, as values of ours: status, customer, custom_fields.

        For the contract bodies, which have those three fields; they assign the result, and
        assigning marks a field as sent, so "only the fields sent" (PATCH, the upsert) holds
        for what is folded in.
        """
        sent = self.model_fields_set
        ours: dict[str, Any] = {}
        status = getattr(self, "status", None) if "status" in sent else self.contract_status
        if self.active is False and status in (None, "active", "suspended"):
            status = "inactive"
        elif self.active is True and status is None:
            status = "active"
        if status is not None:
            ours["status"] = status
        if self.customer_id is not None:
            customer = getattr(self, "customer", None)
            if customer is None or "customer" not in sent:
                ours["customer"] = customer_type(external_id=self.customer_id)
            elif "external_id" not in customer.model_fields_set:
                ours["customer"] = customer.model_copy(update={"external_id": self.customer_id})
        business = {
            name: getattr(self, name)
            for name in BUSINESS
            if name in sent and getattr(self, name) is not None
        }
        if business:
            given = getattr(self, "custom_fields", None) or {}
            ours["custom_fields"] = {**business, **given}
        return ours
