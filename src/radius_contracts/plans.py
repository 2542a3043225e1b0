"""Service plans as authorization sees them: speeds, quota rules, time windows, and what they
make of a contract's connection config at a given moment.

Pure values and functions, no I/O: the index combines a contract, its plan, the plan's window
active now and the contract's quota state into the config the reply is rendered from.

Which speed applies, per field (min/max upload/download), first match wins:

1. the quota's reduced speeds, while the contract is over its cap (fair-usage policy);
2. the plan's time window active now (e.g. a night boost);
3. the contract's own config, when it sets that speed;
4. the plan's speed.
"""

from __future__ import annotations

import calendar
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from radius_contracts.domain import ConnectionConfig

__all__ = [
    "DAY_NAMES",
    "PlanSnapshot",
    "QuotaAction",
    "QuotaCounts",
    "QuotaPeriod",
    "QuotaRule",
    "QuotaState",
    "Speeds",
    "TimeWindow",
    "counted_bytes",
    "effective_config",
    "overlapping_windows",
    "quota_period",
]

MINUTES_PER_DAY = 24 * 60
_MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SPEED_FIELDS = ("min_upload", "max_upload", "min_download", "max_download")


class QuotaPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks: Monday to Sunday
    MONTH = "month"  # calendar months
    BILLING_MONTH = "billing_month"  # months anchored on the contract's billing day


class QuotaCounts(StrEnum):
    """Which traffic counts against the cap, from the subscriber's side."""

    DOWNLOAD = "download"  # Acct-Output-Octets: sent to the subscriber (RFC 2866 §5.4)
    UPLOAD = "upload"  # Acct-Input-Octets: received from the subscriber (RFC 2866 §5.3)
    BOTH = "both"


class QuotaAction(StrEnum):
    """What happens to a contract past its cap."""

    FUP = "fup"  # the rule's reduced speeds
    LAYOUT = "layout"  # the NAS manufacturer's `quota` layout (with the reduced speeds, if any)
    REJECT = "reject"  # refused: online sessions are disconnected, logins rejected


class QuotaState(StrEnum):
    NORMAL = "normal"
    OVER = "over"


@dataclass(frozen=True, slots=True)
class Speeds:
    """Speeds as NAS vendors write them (``50M``); None leaves the field to the next source."""

    min_upload: str | None = None
    max_upload: str | None = None
    min_download: str | None = None
    max_download: str | None = None

    def items(self) -> Iterable[tuple[str, str | None]]:
        return ((name, getattr(self, name)) for name in SPEED_FIELDS)


NO_SPEEDS = Speeds()


@dataclass(frozen=True, slots=True)
class QuotaRule:
    cap_bytes: int
    period: QuotaPeriod
    counts: QuotaCounts
    action: QuotaAction
    speeds: Speeds = NO_SPEEDS  # the reduced speeds past the cap


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Speeds that apply on ``days`` (0 = Monday) from ``start`` to ``end`` (minutes of the
    day, local time). ``end`` ≤ ``start`` runs past midnight into the next day; ``days`` are
    the days a window starts on."""

    days: frozenset[int]
    start: int
    end: int
    speeds: Speeds

    def spans(self) -> list[tuple[int, int]]:
        """The minutes of the week it covers, as [from, to) ranges (to may pass the week's end)."""
        length = (self.end - self.start) % MINUTES_PER_DAY or MINUTES_PER_DAY
        return [
            (day * MINUTES_PER_DAY + self.start, day * MINUTES_PER_DAY + self.start + length)
            for day in sorted(self.days)
        ]

    def contains(self, minute_of_week: int) -> bool:
        for begin, finish in self.spans():
            if begin <= minute_of_week < finish:
                return True
            # A span that runs past Sunday midnight continues on Monday.
            if finish > _MINUTES_PER_WEEK and minute_of_week < finish - _MINUTES_PER_WEEK:
                return True
        return False


@dataclass(frozen=True, slots=True)
class PlanSnapshot:
    """A plan as authorization sees it (active or not: retired plans keep their contracts)."""

    id: int
    name: str
    speeds: Speeds = NO_SPEEDS
    session_timeout: int | None = None
    idle_timeout: int | None = None
    quota: QuotaRule | None = None
    windows: tuple[TimeWindow, ...] = ()

    def window_at(self, local: datetime) -> int | None:
        """Index of the window active at ``local`` (the ISP's wall-clock time), if any."""
        if not self.windows:
            return None
        minute = local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute
        for index, window in enumerate(self.windows):
            if window.contains(minute):
                return index
        return None


def parse_clock(text: str) -> int:
    """Minutes since midnight of ``HH:MM`` (00:00 … 24:00); ValueError for anything else."""
    hours, sep, minutes = text.partition(":")
    if not sep or len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError(f"{text!r} is not a time of day as HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > MINUTES_PER_DAY:
        raise ValueError(f"{text!r} is not a time of day between 00:00 and 24:00")
    return value


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def speeds_of(values: Mapping[str, Any], prefix: str = "") -> Speeds:
    """Speeds from a mapping with keys ``<prefix>min_upload`` and so on (missing: None)."""
    return Speeds(*(values.get(prefix + name) for name in SPEED_FIELDS))


def window_of(stored: Mapping[str, Any]) -> TimeWindow:
    """A window as the plans table stores it (see db.models.Plan.windows)."""
    return TimeWindow(
        days=frozenset(DAY_NAMES.index(day) for day in stored["days"]),
        start=parse_clock(stored["start"]),
        end=parse_clock(stored["end"]),
        speeds=speeds_of(stored),
    )


def overlapping_windows(windows: Sequence[TimeWindow]) -> tuple[int, int] | None:
    """The first pair of windows (by index) that cover a common minute of the week, if any."""
    spans: list[tuple[int, int, int]] = []  # from, to, window index; within 0 … 2 weeks
    for index, window in enumerate(windows):
        for begin, finish in window.spans():
            spans.append((begin, finish, index))
            if finish > _MINUTES_PER_WEEK:  # wraps into Monday: also compare it there
                spans.append((begin - _MINUTES_PER_WEEK, finish - _MINUTES_PER_WEEK, index))
    spans.sort()
    for position, (_begin, finish, index) in enumerate(spans):
        for other_begin, _other_finish, other in spans[position + 1 :]:
            if other_begin >= finish:
                break
            if other != index:
                return (min(index, other), max(index, other))
    return None


def effective_config(
    own: ConnectionConfig, plan: PlanSnapshot, window: int | None, over: bool
) -> ConnectionConfig:
    """``own`` with the speeds the plan gives it now (see the module docstring); ``own``
    itself when nothing changes."""
    layers: list[Speeds] = []
    if over and plan.quota is not None:
        layers.append(plan.quota.speeds)
    if window is not None:
        layers.append(plan.windows[window].speeds)
    changes: dict[str, Any] = {}
    for name in SPEED_FIELDS:
        value = next((getattr(layer, name) for layer in layers if getattr(layer, name)), None)
        if value is None:
            value = getattr(own, name) or getattr(plan.speeds, name)
        if value is not None and value != getattr(own, name):
            changes[name] = value
    return dataclasses.replace(own, **changes) if changes else own


def counted_bytes(counts: QuotaCounts, input_octets: int, output_octets: int) -> int:
    """The traffic that counts against a cap: input is the subscriber's upload."""
    if counts is QuotaCounts.DOWNLOAD:
        return output_octets
    if counts is QuotaCounts.UPLOAD:
        return input_octets
    return input_octets + output_octets


def _anchored(year: int, month: int, day: int) -> date:
    # A billing day past the month's end (31 in February) falls on its last day.
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    total = year * 12 + (month - 1) + months
    return total // 12, total % 12 + 1


def quota_period(period: QuotaPeriod, billing_day: int | None, day: date) -> tuple[date, date]:
    """The period containing local ``day``: [start, end) as local dates (each begins at
    00:00 of the ISP's time zone). ``billing_day`` anchors billing months (1 when unknown)."""
    if period is QuotaPeriod.DAY:
        return day, day + timedelta(days=1)
    if period is QuotaPeriod.WEEK:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period is QuotaPeriod.MONTH:
        year, month = _add_months(day.year, day.month, 1)
        return day.replace(day=1), date(year, month, 1)
    anchor = billing_day or 1
    start = _anchored(day.year, day.month, anchor)
    if start > day:
        start = _anchored(*_add_months(day.year, day.month, -1), anchor)
    end = _anchored(*_add_months(start.year, start.month, 1), anchor)
    return start, end
