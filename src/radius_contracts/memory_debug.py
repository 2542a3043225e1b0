"""Where the daemon's memory goes, on request: SIGUSR2 writes a report to the state directory.

The first SIGUSR2 starts tracing allocations (tracemalloc, FRAMES frames each, unless
``PYTHONTRACEMALLOC=N`` started it with the process) and writes the Python object counts by
type; every later one lists the source lines whose allocations grew most since the previous
report, the largest tracebacks, and the object types whose counts grew. Tracing makes the
daemon several times slower and costs memory of its own: it is for finding a leak, on a test
machine (see bench/soak.py), and stays on until the process exits.
"""

from __future__ import annotations

import gc
import logging
import time
import tracemalloc
from collections import Counter
from pathlib import Path

log = logging.getLogger("radius_contracts.memory")

__all__ = ["MemoryReport"]

_TOP = 25
FRAMES = 4
_IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


class MemoryReport:
    """Writes memory-<unix time>.txt to ``directory``, comparing with the previous report."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._snapshot: tracemalloc.Snapshot | None = None
        self._types: Counter[str] = Counter()

    def write(self) -> Path:
        lines: list[str] = []
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            lines.append(f"traced: {current / 2**20:.1f} MiB now, {peak / 2**20:.1f} MiB peak")
            snapshot = tracemalloc.take_snapshot().filter_traces(_IGNORED)
            if self._snapshot is not None:
                lines.append(f"\n== grew most since the previous report (top {_TOP}) ==")
                for diff in snapshot.compare_to(self._snapshot, "lineno")[:_TOP]:
                    lines.append(str(diff))
            lines.append(f"\n== largest by traceback (top {_TOP // 5}) ==")
            for stat in snapshot.statistics("traceback")[: _TOP // 5]:
                lines.append(f"{stat.size / 2**20:.2f} MiB in {stat.count} blocks")
                lines.extend(f"    {frame}" for frame in stat.traceback.format())
            self._snapshot = snapshot
        else:
            tracemalloc.start(FRAMES)
            lines.append("tracing allocations from now on: the next report says what grew")
        types = Counter(type(obj).__name__ for obj in gc.get_objects())
        grown = sorted(
            ((count - self._types.get(name, 0), name, count) for name, count in types.items()),
            reverse=True,
        )
        lines.append(f"\n== object types that grew most (top {_TOP}): growth, type, count ==")
        lines.extend(f"{delta:+10d} {name:40s} {count:10d}" for delta, name, count in grown[:_TOP])
        self._types = types
        path = self.directory / f"memory-{int(time.time())}.txt"
        path.write_text("\n".join(lines) + "\n")
        log.warning("memory report written to %s", path)
        return path
