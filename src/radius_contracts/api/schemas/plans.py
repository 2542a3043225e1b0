"""Service plans: speeds, timeouts, a data quota (fair-usage policy) and time windows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from radius_contracts.api.schemas.common import (
    AuditedOutput,
    Description,
    Input,
    ListQuery,
    Name,
    Output,
    Patch,
)
from radius_contracts.api.schemas.contracts import App, ExternalRef, Speed
from radius_contracts.db.models import Plan
from radius_contracts.plans import (
    DAY_NAMES,
    SPEED_FIELDS,
    QuotaAction,
    QuotaCounts,
    QuotaPeriod,
    parse_clock,
)
from radius_contracts.services.plans import FUP_COLUMNS, QUOTA_COLUMNS

MAX_TIMEOUT = 2**31 - 1  # Session-Timeout and Idle-Timeout are 32-bit integers (RFC 2865)
MAX_CAP = 2**62  # bytes: far beyond any real plan, well inside a BIGINT


def _clock(value: str) -> str:
    parse_clock(value)  # raises ValueError with the reason
    return value


Clock = Annotated[
    str,
    StringConstraints(pattern=r"^\d{2}:\d{2}$"),
    AfterValidator(_clock),
    Field(description="Local time of day, HH:MM (00:00 to 24:00), in the ISP's time zone."),
]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Timeout = Annotated[int, Field(ge=1, le=MAX_TIMEOUT, description="Seconds.")]


class Speeds(Input):
    min_upload: Speed | None = None
    max_upload: Speed | None = None
    min_download: Speed | None = None
    max_download: Speed | None = None


class Quota(Input):
    cap_bytes: int = Field(
        ge=1, le=MAX_CAP, description="Bytes a contract may use per period (1 TB = 10**12)."
    )
    period: QuotaPeriod = Field(
        default=QuotaPeriod.MONTH,
        description="day, week (Monday to Sunday), month (calendar), or billing_month "
        "(from the contract's billing_day); each begins at 00:00 in the ISP's time zone.",
    )
    counts: QuotaCounts = Field(
        default=QuotaCounts.BOTH,
        description="Which traffic counts: download (to the subscriber), upload, or both.",
    )
    action: QuotaAction = Field(
        default=QuotaAction.FUP,
        description="Past the cap: fup (the reduced speeds below), layout (the NAS "
        "manufacturer's `quota` layout, with the reduced speeds if given; the `active` layout "
        "when there is none), or reject (online sessions are disconnected, logins refused).",
    )
    fup: Speeds | None = Field(
        default=None, description="Reduced speeds past the cap (required for action fup)."
    )


class Window(Input):
    days: list[Day] = Field(
        min_length=1, max_length=7, description="Days the window starts on (mon … sun)."
    )
    start: Clock
    end: Clock = Field(description="End (exclusive); at or before start: the next day's.")
    min_upload: Speed | None = None
    max_upload: Speed | None = None
    min_download: Speed | None = None
    max_download: Speed | None = None

    @field_validator("days")
    @classmethod
    def _distinct(cls, days: list[str]) -> list[str]:
        if len(set(days)) != len(days):
            raise ValueError("a day is listed twice")
        return sorted(days, key=DAY_NAMES.index)

    @model_validator(mode="after")
    def _some_speed(self) -> Window:
        if not any(getattr(self, name) for name in SPEED_FIELDS):
            raise ValueError("a window needs at least one speed")
        return self


Windows = Annotated[
    list[Window],
    Field(
        max_length=64,
        description="Speeds that apply inside these windows of the week (e.g. a night boost), "
        "overriding the plan's and the contract's own; windows may not overlap.",
    ),
]


class PlanCreate(Input):
    name: Name
    description: Description | None = None
    external_refs: list[ExternalRef] = Field(
        default_factory=list,
        max_length=20,
        description="The plan's ids in billing systems (e.g. the planIds they send).",
    )
    min_upload: Speed | None = None
    max_upload: Speed | None = None
    min_download: Speed | None = None
    max_download: Speed | None = None
    session_timeout: Timeout | None = Field(
        default=None, description="Session-Timeout sent unless the layout sends one."
    )
    idle_timeout: Timeout | None = Field(
        default=None, description="Idle-Timeout sent unless the layout sends one."
    )
    quota: Quota | None = Field(default=None, description="The data quota; null: none.")
    windows: Windows = Field(default_factory=list)
    active: bool = Field(
        default=True,
        description="Inactive (retired) plans keep their contracts but take no new ones.",
    )


class PlanUpdate(Patch):
    not_null = frozenset({"name", "external_refs", "windows", "active"})
    name: Name | None = None
    description: Description | None = None
    external_refs: list[ExternalRef] | None = Field(default=None, max_length=20)
    min_upload: Speed | None = None
    max_upload: Speed | None = None
    min_download: Speed | None = None
    max_download: Speed | None = None
    session_timeout: Timeout | None = None
    idle_timeout: Timeout | None = None
    quota: Quota | None = None
    windows: Windows | None = None
    active: bool | None = None

    def changes(self) -> dict[str, Any]:
        # A quota or a window given replaces the old one whole: with its defaults, not only
        # the keys the caller sent.
        changes = super().changes()
        if self.quota is not None:
            changes["quota"] = self.quota.model_dump()
        if self.windows is not None:
            changes["windows"] = [window.model_dump() for window in self.windows]
        return changes


class QuotaPublic(Output):
    cap_bytes: int
    period: QuotaPeriod
    counts: QuotaCounts
    action: QuotaAction
    fup: dict[str, str | None]


class PlanPublic(AuditedOutput):
    id: int
    name: str
    description: str | None
    external_refs: list[dict[str, str]]
    min_upload: str | None
    max_upload: str | None
    min_download: str | None
    max_download: str | None
    session_timeout: int | None
    idle_timeout: int | None
    quota: QuotaPublic | None
    windows: list[dict[str, Any]]
    active: bool

    @classmethod
    def of(cls, row: Plan) -> PlanPublic:
        quota = None
        if row.quota_bytes is not None:
            quota = {key: getattr(row, column) for key, column in QUOTA_COLUMNS.items()}
            quota["fup"] = {key: getattr(row, column) for key, column in FUP_COLUMNS.items()}
        return cls.model_validate(
            {
                **{k: getattr(row, k) for k in AuditedOutput.model_fields},
                **{k: getattr(row, k) for k in ("id", "name", "description", "active")},
                **{k: getattr(row, k) for k in (*SPEED_FIELDS, "session_timeout", "idle_timeout")},
                "external_refs": [
                    {"app": ref.app, "external_id": ref.external_id} for ref in row.external_refs
                ],
                "quota": quota,
                "windows": list(row.windows or ()),
            }
        )


class PlanFilters(ListQuery):
    active: bool | None = None
    has_quota: bool | None = Field(default=None, description="Plans with (or without) a quota.")
    app: App | None = Field(default=None, description="Has an external id from this app.")
    q: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        default=None, description="Text search in name and description."
    )


class TopUp(Input):
    """Either add bytes to this period's allowance, or count the period from zero again."""

    add_bytes: int | None = Field(
        default=None, ge=1, le=MAX_CAP, description="Bytes added on top of the cap this period."
    )
    reset: bool = Field(
        default=False, description="Count this period from zero again (and drop its top-ups)."
    )

    @model_validator(mode="after")
    def _one_of(self) -> TopUp:
        if not self.reset and not self.add_bytes:
            raise ValueError("give add_bytes or reset: true")
        if self.reset and self.add_bytes:
            raise ValueError("give add_bytes or reset: true, not both")
        return self


class QuotaStatusPublic(Output):
    contract_id: int
    plan_id: int | None
    plan: str | None
    state: Literal["normal", "over", "none"] = Field(
        description="over: the cap (plus top-ups) is used up this period; none: no quota."
    )
    cap_bytes: int | None
    extra_bytes: int = Field(description="Top-ups this period.")
    used_bytes: int
    remaining_bytes: int | None
    counts: QuotaCounts | None
    period: QuotaPeriod | None
    action: QuotaAction | None
    period_start: datetime | None = Field(description="When the period began (ISP time zone).")
    period_end: datetime | None = Field(description="When the next period begins.")
    changed_at: datetime | None = Field(description="When the state last changed.")
