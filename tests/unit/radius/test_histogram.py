"""The packet-path histogram: Prometheus "le" buckets from per-bucket counts."""

from __future__ import annotations

from radius_contracts.radius.histogram import Histogram


def test_a_value_on_a_bound_falls_in_that_bucket_and_totals_are_cumulative() -> None:
    histogram = Histogram((0.001, 0.01, 0.1))
    for value in (0.0005, 0.001, 0.002, 0.01, 0.5, 7.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 0, 2]
    assert histogram.cumulative() == [(0.001, 2), (0.01, 4), (0.1, 4), (float("inf"), 6)]
    assert histogram.count == 6
    assert abs(histogram.sum - 7.5135) < 1e-9


def test_an_empty_histogram_has_zero_buckets() -> None:
    histogram = Histogram()
    assert histogram.count == 0
    assert all(count == 0 for _bound, count in histogram.cumulative())
    assert histogram.cumulative()[-1][0] == float("inf")
