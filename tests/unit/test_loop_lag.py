"""loop_lag.LoopLag: a stall of the event loop shows as a late wakeup of the probe."""

from __future__ import annotations

import asyncio
import time

from radius_contracts.loop_lag import LoopLag


async def test_a_blocked_loop_is_measured() -> None:
    lag = LoopLag(interval=0.01)
    probe = asyncio.create_task(lag.run())
    try:
        await asyncio.sleep(0.05)  # a few undisturbed probes
        time.sleep(0.12)  # noqa: ASYNC251 - on purpose: a callback holding the loop
        await asyncio.sleep(0.05)
    finally:
        probe.cancel()
    cumulative = dict(lag.histogram.cumulative())
    assert lag.histogram.count >= 3
    assert lag.worst >= 0.1
    # The stall is one observation over 50 ms, not several: the probe measures the wake it
    # was late for, then sleeps again.
    assert lag.histogram.count - cumulative[0.05] == 1
