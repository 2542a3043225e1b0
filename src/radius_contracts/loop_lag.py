"""How late the event loop runs what is due: the wait every packet on it shares.

Every RADIUS request, API call and job of the process goes through one event loop. When a
callback holds it (a long pure-Python stretch, a collection of the cyclic GC, a thread holding
the GIL), everything due meanwhile waits; the request histograms show that as a spread of
latencies with no single cause. :class:`LoopLag` sleeps ``interval`` again and again and
records how much later than asked it woke: a direct measure of such stalls, exported as
``radius_contracts_event_loop_lag_seconds``. Its own cost is ``1 / interval`` wakeups a second.
"""

from __future__ import annotations

import asyncio
import time

from radius_contracts.radius.histogram import Histogram

INTERVAL = 0.05  # seconds between probes: 20 a second
# Lateness that matters for a reply: under a millisecond is the loop's own timer resolution.
LAG_BOUNDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class LoopLag:
    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.histogram = Histogram(LAG_BOUNDS)
        self.worst = 0.0  # the longest lag seen, seconds

    async def run(self) -> None:
        """Probe until cancelled."""
        clock = time.monotonic
        while True:
            due = clock() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(0.0, clock() - due)
            self.histogram.observe(lag)
            if lag > self.worst:
                self.worst = lag
