"""Where the daemon's memory goes, on request: SIGUSR2 writes a report to the state directory.

Each report (state_dir/memory-<unix time>.txt) gives the process's RSS and threads, the C
heap as glibc sees it (in use, free but kept, memory-mapped), the blocks Python holds, and
the Python object types whose counts grew since the previous report. When Python traces
allocations (start the daemon with ``PYTHONTRACEMALLOC=N``, N frames each; several times
slower, so only on a test machine, see bench/soak.py) it adds the source lines whose live
allocations grew most since the previous report, and the largest tracebacks.

RSS growing while Python's own figures stay flat points below Python: the C heap's free
memory kept per thread arena, or SQLite's page caches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

log = logging.getLogger("radius_contracts.memory")

__all__ = ["MemoryReport", "c_heap"]

_TOP = 25
_IGNORED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


class _Mallinfo2(ctypes.Structure):
    # glibc ≥ 2.33 struct mallinfo2: every field a size_t.
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def c_heap() -> dict[str, int] | None:
    """glibc's heap figures in bytes (all arenas): in use, free but kept, mmapped; None
    where there is no glibc mallinfo2."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return {"in_use": info.uordblks, "free": info.fordblks, "mmapped": info.hblkhd}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class MemoryReport:
    """Writes memory-<unix time>.txt to ``directory``, comparing with the previous report."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._snapshot: tracemalloc.Snapshot | None = None
        self._types: Counter[str] = Counter()

    def write(self) -> Path:
        lines = [
            f"RSS {_rss_kib() / 1024:.1f} MiB, {len(os.listdir('/proc/self/task'))} threads, "
            f"{sys.getallocatedblocks()} Python blocks allocated",
        ]
        heap = c_heap()
        if heap is not None:
            lines.append(
                "C heap (glibc, all arenas): "
                + ", ".join(f"{key} {value / 2**20:.1f} MiB" for key, value in heap.items())
            )
        if tracemalloc.is_tracing():
            self._traced(lines)
        else:
            lines.append("tracemalloc off (start with PYTHONTRACEMALLOC=N for source lines)")
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

    def _traced(self, lines: list[str]) -> None:
        current, peak = tracemalloc.get_traced_memory()
        lines.append(f"traced: {current / 2**20:.1f} MiB now, {peak / 2**20:.1f} MiB peak")
        snapshot = tracemalloc.take_snapshot().filter_traces(_IGNORED)
        if self._snapshot is not None:
            lines.append(f"\n== grew most since the previous report (top {_TOP}) ==")
            lines.extend(str(diff) for diff in snapshot.compare_to(self._snapshot, "lineno")[:_TOP])
        lines.append(f"\n== largest by traceback (top {_TOP // 5}) ==")
        for stat in snapshot.statistics("traceback")[: _TOP // 5]:
            lines.append(f"{stat.size / 2**20:.2f} MiB in {stat.count} blocks")
            lines.extend(f"    {frame}" for frame in stat.traceback.format())
        self._snapshot = snapshot
