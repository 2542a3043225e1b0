"""Plans' policy: quota periods, time windows, and which speed wins."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from radius_contracts.domain import ConnectionConfig
from radius_contracts.plans import (
    PlanSnapshot,
    QuotaAction,
    QuotaCounts,
    QuotaPeriod,
    QuotaRule,
    Speeds,
    TimeWindow,
    counted_bytes,
    effective_config,
    overlapping_windows,
    parse_clock,
    quota_period,
)


@pytest.mark.parametrize(
    ("period", "billing_day", "day", "expected"),
    [
        (QuotaPeriod.DAY, None, date(2026, 12, 31), (date(2026, 12, 31), date(2027, 1, 1))),
        # ISO weeks: Monday to Sunday.
        (QuotaPeriod.WEEK, None, date(2026, 12, 6), (date(2026, 11, 30), date(2026, 12, 7))),
        (QuotaPeriod.WEEK, None, date(2026, 11, 30), (date(2026, 11, 30), date(2026, 12, 7))),
        (QuotaPeriod.MONTH, 15, date(2026, 12, 31), (date(2026, 12, 1), date(2027, 1, 1))),
        (
            QuotaPeriod.BILLING_MONTH,
            15,
            date(2026, 12, 14),
            (date(2026, 11, 15), date(2026, 12, 15)),
        ),
        (
            QuotaPeriod.BILLING_MONTH,
            15,
            date(2026, 12, 15),
            (date(2026, 12, 15), date(2027, 1, 15)),
        ),
        (
            QuotaPeriod.BILLING_MONTH,
            None,
            date(2026, 12, 15),
            (date(2026, 12, 1), date(2027, 1, 1)),
        ),
        # A billing day past a month's end falls on its last day, and the chain never breaks.
        (QuotaPeriod.BILLING_MONTH, 31, date(2027, 2, 27), (date(2027, 1, 31), date(2027, 2, 28))),
        (QuotaPeriod.BILLING_MONTH, 31, date(2027, 2, 28), (date(2027, 2, 28), date(2027, 3, 31))),
        (QuotaPeriod.BILLING_MONTH, 30, date(2028, 2, 29), (date(2028, 2, 29), date(2028, 3, 30))),
        (QuotaPeriod.BILLING_MONTH, 31, date(2027, 1, 5), (date(2026, 12, 31), date(2027, 1, 31))),
    ],
)
def test_quota_periods(
    period: QuotaPeriod, billing_day: int | None, day: date, expected: tuple[date, date]
) -> None:
    assert quota_period(period, billing_day, day) == expected


def test_billing_months_tile_the_year_without_gaps() -> None:
    for anchor in (1, 15, 28, 29, 30, 31):
        day = date(2027, 1, 1)
        start, end = quota_period(QuotaPeriod.BILLING_MONTH, anchor, day)
        for _ in range(24):
            next_start, next_end = quota_period(QuotaPeriod.BILLING_MONTH, anchor, end)
            assert next_start == end and next_end > next_start
            start, end = next_start, next_end
        assert start.year == 2029 or end.year >= 2028


def test_counted_bytes_follow_the_subscribers_side() -> None:
    # Acct-Input-Octets is what the subscriber sent (upload), Output what it received.
    assert counted_bytes(QuotaCounts.DOWNLOAD, input_octets=5, output_octets=7) == 7
    assert counted_bytes(QuotaCounts.UPLOAD, input_octets=5, output_octets=7) == 5
    assert counted_bytes(QuotaCounts.BOTH, input_octets=5, output_octets=7) == 12


def _window(days: set[int], start: str, end: str) -> TimeWindow:
    return TimeWindow(
        frozenset(days), parse_clock(start), parse_clock(end), Speeds(max_download="1G")
    )


def test_windows_contain_their_minutes_and_cross_midnight_and_the_week() -> None:
    night = PlanSnapshot(1, "p", windows=(_window({6}, "22:00", "06:00"),))  # Sunday night
    assert night.window_at(datetime(2026, 12, 6, 22, 0)) == 0  # a Sunday
    assert night.window_at(datetime(2026, 12, 6, 21, 59)) is None
    assert night.window_at(datetime(2026, 12, 7, 5, 59)) == 0  # Monday morning, same window
    assert night.window_at(datetime(2026, 12, 7, 6, 0)) is None
    assert night.window_at(datetime(2026, 12, 7, 23, 0)) is None  # Monday night: not listed
    whole_day = PlanSnapshot(1, "p", windows=(_window({0}, "00:00", "24:00"),))
    assert whole_day.window_at(datetime(2026, 12, 7, 23, 59)) == 0
    assert whole_day.window_at(datetime(2026, 12, 8, 0, 0)) is None


@pytest.mark.parametrize(
    ("windows", "overlap"),
    [
        ([_window({0}, "00:00", "06:00"), _window({0}, "06:00", "08:00")], None),
        ([_window({0}, "00:00", "06:00"), _window({0}, "05:59", "08:00")], (0, 1)),
        ([_window({0, 2}, "00:00", "06:00"), _window({1}, "00:00", "06:00")], None),
        # Sunday 22:00 to Monday 01:00 overlaps Monday 00:00 to 06:00, across the week's end.
        ([_window({0}, "00:00", "06:00"), _window({6}, "22:00", "01:00")], (0, 1)),
        ([_window({5}, "22:00", "22:00"), _window({6}, "21:00", "22:30")], (0, 1)),
        (
            [
                _window({0}, "10:00", "11:00"),
                _window({1}, "10:00", "11:00"),
                _window({1}, "10:30", "12:00"),
            ],
            (1, 2),
        ),
    ],
)
def test_overlapping_windows(windows: list[TimeWindow], overlap: tuple[int, int] | None) -> None:
    assert overlapping_windows(windows) == overlap


@pytest.mark.parametrize("text", ["24:01", "7:00", "07:60", "0700", "aa:bb", ""])
def test_bad_clock_times(text: str) -> None:
    with pytest.raises(ValueError, match="time of day"):
        parse_clock(text)


def test_speed_precedence_quota_then_window_then_own_then_plan() -> None:
    own = ConnectionConfig(username="u", max_download="900M")
    plan = PlanSnapshot(
        1,
        "p",
        speeds=Speeds(max_upload="50M", max_download="500M"),
        quota=QuotaRule(
            10, QuotaPeriod.MONTH, QuotaCounts.BOTH, QuotaAction.FUP, Speeds(max_download="20M")
        ),
        windows=(TimeWindow(frozenset({0}), 0, 360, Speeds(max_upload="100M")),),
    )
    plain = effective_config(own, plan, None, over=False)
    assert (plain.max_upload, plain.max_download) == ("50M", "900M")
    boosted = effective_config(own, plan, 0, over=False)
    assert (boosted.max_upload, boosted.max_download) == ("100M", "900M")
    reduced = effective_config(own, plan, 0, over=True)
    assert (reduced.max_upload, reduced.max_download) == ("100M", "20M")
    # Nothing to change: the very same object (the reply cache keys on identity).
    same = ConnectionConfig(username="u", max_upload="50M", max_download="500M")
    assert effective_config(same, plan, None, over=False) is same
