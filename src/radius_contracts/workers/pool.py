"""The main process's side of the RADIUS worker processes (``[radius] workers`` above 1).

The pool binds the authentication port once per worker and bind address, with SO_REUSEPORT,
and starts each worker (``python -m radius_contracts.workers``) with its sockets and a pipe;
the main process keeps no copy of a worker's sockets, so the kernel only ever hands datagrams
to a worker that reads them. Over the pipes the pool sends what the main process learns
(committed changes, other nodes' changes, sessions started or stopped, a reload, the stop) and
takes what workers produce (auth log events, stats for /metrics). A worker that dies is
started again (after a pause that grows while it keeps dying); the others answer meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from radius_contracts.aaa.auth_log import AuthEvent
from radius_contracts.aaa.sessions import NOT_READY, SessionView
from radius_contracts.logging import RateLimitedLog
from radius_contracts.radius.histogram import Histogram
from radius_contracts.radius.listen import udp_socket
from radius_contracts.radius.protocol import Stats
from radius_contracts.settings import Settings
from radius_contracts.workers.channel import Channel, ChannelClosed
from radius_contracts.workers.claims import decide_for_worker, withdraw_for_worker

__all__ = ["WorkerPool"]

log = logging.getLogger("radius_contracts.workers")

READY_TIMEOUT = 300.0  # seconds a worker may take to load its index (a million contracts: ~40)
_RESTART_PAUSE = (0.5, 30.0)  # first and longest pause before starting a dead worker again
APPLY_WAIT = 1.0  # seconds a committed change waits for the workers to apply it


@dataclass
class _Worker:
    number: int
    process: asyncio.subprocess.Process | None = None
    channel: Channel | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stats: dict[str, Any] = field(default_factory=dict)
    reloaded: asyncio.Future[tuple[bool, str]] | None = None
    # Changes sent and not yet applied, by sequence number (see WorkerPool.changed).
    applying: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    restarts: int = 0
    stopping: bool = False


class WorkerPool:
    """Starts, feeds, reloads and stops the workers; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        count: int,
        *,
        on_auth_log: Callable[[Sequence[AuthEvent]], None],
    ) -> None:
        self._settings = settings
        self._count = count
        self._on_auth_log = on_auth_log
        self._workers = [_Worker(number) for number in range(count)]
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.port = settings.radius.auth_port
        # What workers that died had counted: /metrics counters never go back.
        self._retired: list[dict[str, Any]] = []
        self.crashes = 0
        self._sequence = 0
        self._slow = RateLimitedLog(log)
        # The daemon's session view, where the workers' logins of contracts with a
        # simultaneous-use limit are decided (workers.claims); None where the database does.
        self.view: SessionView | None = None

    # -- starting -----------------------------------------------------------------------------

    def _sockets(self) -> list[socket.socket]:
        """One socket per bind address on the authentication port, SO_REUSEPORT."""
        radius = self._settings.radius
        made: list[socket.socket] = []
        try:
            for address in radius.bind:
                sock = udp_socket(address, self.port, radius.receive_buffer, reuse_port=True)
                if self.port == 0:  # the first bind picks the port every other one shares
                    self.port = sock.getsockname()[1]
                made.append(sock)
        except BaseException:
            for sock in made:
                sock.close()
            raise
        return made

    async def start(self) -> None:
        """Start every worker and wait until each answers (its index loaded)."""
        for worker in self._workers:
            await self._launch(worker)
        waits = [asyncio.create_task(worker.ready.wait()) for worker in self._workers]
        _done, pending = await asyncio.wait(waits, timeout=READY_TIMEOUT)
        for task in pending:
            task.cancel()
        if pending:
            raise RuntimeError(
                f"{len(pending)} of {self._count} RADIUS workers did not start within "
                f"{READY_TIMEOUT:g} s"
            )
        log.info("%d RADIUS worker processes answer on port %d", self._count, self.port)

    async def _launch(self, worker: _Worker) -> None:
        sockets = self._sockets()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fds = [sock.fileno() for sock in sockets]
        try:
            worker.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "radius_contracts.workers",
                "--number",
                str(worker.number),
                "--channel-fd",
                str(theirs.fileno()),
                "--socket-fds",
                ",".join(str(fd) for fd in fds),
                pass_fds=[theirs.fileno(), *fds],
            )
        finally:
            # The worker has its own copies; ours would keep receiving datagrams nobody reads.
            theirs.close()
            for sock in sockets:
                sock.close()
        worker.ready.clear()
        worker.channel = await Channel.open(ours)
        worker.channel.send("settings", self._settings.model_dump(mode="json"))
        self._spawn(self._follow(worker), f"worker-{worker.number}")

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, worker: _Worker) -> None:
        """Take the worker's messages until it goes away; start it again if it died."""
        channel = worker.channel
        assert channel is not None
        try:
            while True:
                message = await channel.receive()
                self._take(worker, message)
        except ChannelClosed:
            pass
        process = worker.process
        if process is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 5.0)
        if self._stopping or worker.stopping:
            return
        self.crashes += 1
        if worker.stats:
            self._retired.append(worker.stats)
            worker.stats = {}
        code = process.returncode if process is not None else None
        pause = min(_RESTART_PAUSE[1], _RESTART_PAUSE[0] * 2**worker.restarts)
        log.error(
            "RADIUS worker %d exited (code %s); starting it again in %.1f s",
            worker.number,
            code,
            pause,
        )
        worker.restarts += 1
        await asyncio.sleep(pause)
        if not self._stopping:
            await self._launch(worker)

    def _take(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "claims":
            self._claims(worker, message[1])
        elif kind == "withdraw":
            if self.view is not None:
                withdraw_for_worker(self.view, int(message[1]), message[2:])
        elif kind == "auth_log":
            self._on_auth_log(message[1])
        elif kind == "stats":
            worker.stats = message[1]
        elif kind == "ready":
            worker.ready.set()
            if worker.restarts:
                log.warning("RADIUS worker %d is answering again", worker.number)
        elif kind == "applied":
            future = worker.applying.pop(int(message[1]), None)
            if future is not None and not future.done():
                future.set_result(None)
        elif kind == "reloaded":
            if worker.reloaded is not None and not worker.reloaded.done():
                worker.reloaded.set_result((bool(message[1]), str(message[2])))
        elif kind == "stopped":
            worker.stopping = True

    def _claims(self, worker: _Worker, requests: Sequence[Sequence[Any]]) -> None:
        """A worker's logins to decide (workers.claims): answered at once, in order."""
        view = self.view
        if view is None:  # not yet (or not here): the database decides, see the daemon
            results: list[tuple[int, str | None]] = [(r[0], str(NOT_READY)) for r in requests]
        else:
            results = decide_for_worker(view, requests)
        if worker.channel is not None:
            with contextlib.suppress(ChannelClosed):
                worker.channel.send("claimed", results)

    # -- what the main process tells every worker ----------------------------------------------

    def _send(self, *message: Any) -> None:
        for worker in self._workers:
            if worker.channel is not None:
                with contextlib.suppress(ChannelClosed):
                    worker.channel.send(*message)

    async def changed(self, entity: str, ids: Sequence[int]) -> None:
        """Rows ``ids`` of ``entity`` were committed (here or on another node); "sessions":
        these contracts' sessions started or stopped. A services listener.

        Returns once every answering worker has applied it (at most APPLY_WAIT seconds), so
        an API change is in use by the next Access-Request whichever worker takes it, as in
        a single process.
        """
        self._sequence += 1
        sequence = self._sequence
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[None]] = []
        for worker in self._workers:
            if worker.channel is None or not worker.ready.is_set():
                continue  # a worker still loading reads it from the database anyway
            future: asyncio.Future[None] = loop.create_future()
            worker.applying[sequence] = future
            try:
                worker.channel.send("changed", sequence, entity, list(ids))
            except ChannelClosed:
                worker.applying.pop(sequence, None)
                continue
            waits.append(future)
        if not waits:
            return
        _done, pending = await asyncio.wait(waits, timeout=APPLY_WAIT)
        if pending:
            self._slow.warning(
                "apply", "%d RADIUS workers took over %g s to apply %s %s", len(pending),
                APPLY_WAIT, entity, list(ids)[:5],
            )  # fmt: skip
            for future in pending:
                future.cancel()

    async def reload(self, settings: Settings, wait: float = 15.0) -> list[str]:
        """Every worker swaps in ``settings`` (already merged): the problems, if any."""
        self._settings = settings
        loop = asyncio.get_running_loop()
        waits = []
        for worker in self._workers:
            if worker.channel is None or not worker.ready.is_set():
                continue
            worker.reloaded = loop.create_future()
            waits.append((worker, worker.reloaded))
            with contextlib.suppress(ChannelClosed):
                worker.channel.send("reload", settings.model_dump(mode="json"))
        problems = []
        for worker, future in waits:
            try:
                ok, detail = await asyncio.wait_for(future, wait)
            except TimeoutError:
                ok, detail = False, f"no answer within {wait:g} s"
            if not ok:
                problems.append(f"worker {worker.number}: {detail}")
        return problems

    async def stop(self, grace: float) -> None:
        """Workers take no new datagrams, answer what they took, hand over their auth log
        and exit; within ``grace`` seconds, else they are killed."""
        self._stopping = True
        deadline = time.monotonic() + grace
        self._send("stop", max(0.0, grace - 1.0))
        for worker in self._workers:
            process = worker.process
            if process is None or process.returncode is not None:
                continue
            try:
                await asyncio.wait_for(process.wait(), max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                log.warning("RADIUS worker %d did not stop in time; killed", worker.number)
                process.kill()
                await process.wait()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        for worker in self._workers:
            if worker.channel is not None:
                worker.channel.close()

    # -- what /metrics reads -------------------------------------------------------------------

    @property
    def alive(self) -> int:
        return sum(
            1
            for worker in self._workers
            if worker.process is not None
            and worker.process.returncode is None
            and worker.ready.is_set()
        )

    def _snapshots(self) -> list[dict[str, Any]]:
        return [*self._retired, *(w.stats for w in self._workers if w.stats)]

    def auth_stats(self) -> Stats:
        """The authentication port's counters, added up over every worker (past ones too)."""
        total = Stats()
        histogram = total.latency = Histogram()
        for stats in self._snapshots():
            for name, count in stats["counts"].items():
                total.counts[name] = total.counts.get(name, 0) + count
            for key, count in stats["requests"].items():
                total.requests[key] = total.requests.get(key, 0) + count
            counts, latency_sum = stats["latency"]
            for bucket, count in enumerate(counts):
                histogram.counts[bucket] += count
            histogram.sum += latency_sum
        return total

    def total(self, name: str) -> Counter[str]:
        """A per-reason counter (``rejects``, ``decided``) added up over the workers."""
        summed: Counter[str] = Counter()
        for stats in self._snapshots():
            summed.update(stats.get(name, {}))
        return summed

    def count(self, name: str) -> int:
        """A plain counter (``refused``) added up; ``challenges`` (a gauge) over live ones."""
        snapshots = (
            [w.stats for w in self._workers if w.stats]
            if name == "challenges"
            else self._snapshots()
        )
        return sum(int(stats.get(name, 0)) for stats in snapshots)
