"""A histogram cheap enough to observe every packet: fixed bounds, a list of ints, a sum.

prometheus-client's own Histogram takes a lock and walks its buckets on every observation;
here one ``bisect`` picks the bucket and the metrics collector adds the buckets up (they are
stored per bucket, not cumulative) only when ``/metrics`` is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate

# Seconds from a datagram's arrival to its reply. A warm Access-Request takes tens of µs;
# database work (pool leases, accounting group commits) takes milliseconds; beyond 5 s the
# NAS has long retransmitted or failed over.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
)  # fmt: skip


class Histogram:
    """Observations counted per bucket (``value <= bound``), plus one above the last bound."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BOUNDS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left puts a value equal to a bound in that bound's bucket, as "le" means.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it) for each bound, then (inf, count)."""
        totals = list(accumulate(self.counts))
        return [*zip(self.bounds, totals, strict=False), (float("inf"), totals[-1])]
