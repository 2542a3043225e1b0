"""A RADIUS worker process: Access-Requests on its share of the authentication port.

Started by the main process (workers.pool) with ``[radius] workers`` above 1: one UDP socket
per bind address, each bound with SO_REUSEPORT to the authentication port (the kernel spreads
datagrams over the workers by their source address and port, so a NAS's retransmits meet the
same worker and its reply cache), and the pipe to the main process. The worker holds its own
authorization index, read from the database once it listens to the main process's change
notifications (so nothing committed meanwhile is missed), and answers with the same
AccessHandler as a single process. Everything else stays in the main process: the API,
accounting (one writer, in order), the scheduler, CoA. Logins of contracts with a
simultaneous-use limit are decided by the main process's session view (workers.claims), or
in the database (aaa.claims) where other nodes decide too.

What the worker sends the main process: ``ready``, its auth log events (the main process
writes them), a stats snapshot every second (for /metrics), logins to decide (``claims``,
``withdraw``), ``reloaded`` and ``stopped``. What it takes: ``claimed`` (the answers),
``changed`` (entity, ids: refresh the index or the session view), ``reload``
(new settings: dictionaries, NAS, layouts, pools, plans read again and swapped in, as the main
process does on SIGHUP) and ``stop`` (no new datagrams, finish what was taken, leave).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from radius_contracts import logging as daemon_logging
from radius_contracts.aaa.auth_log import AuthEvent, AuthLogWriter
from radius_contracts.aaa.claims import LoginClaims, decided_in_database
from radius_contracts.aaa.handler import AccessHandler
from radius_contracts.aaa.pools import Leaser
from radius_contracts.aaa.sessions import SessionView
from radius_contracts.db.engine import create_engine, session_factory
from radius_contracts.index import AuthIndex
from radius_contracts.jobs import SessionJobs, node_name
from radius_contracts.radius import udp
from radius_contracts.radius.dedup import ReplyCache
from radius_contracts.radius.dictionary import AttributeCatalog
from radius_contracts.radius.protocol import ListenerOptions, RadiusProtocol, Stats
from radius_contracts.settings import Settings
from radius_contracts.startup import load_catalog, settle_heap
from radius_contracts.workers.channel import Channel, ChannelClosed
from radius_contracts.workers.claims import MainProcessClaims

__all__ = ["main", "snapshot"]

log = logging.getLogger("radius_contracts.workers")

STATS_INTERVAL = 1.0  # seconds between stats snapshots to the main process


def snapshot(stats: Stats, handler: AccessHandler, view: SessionView) -> dict[str, Any]:
    """What /metrics needs from a worker, as plain values (the main process adds them up)."""
    claims = handler.claims
    return {
        "counts": dict(stats.counts),
        "requests": dict(stats.requests),
        "latency": (list(stats.latency.counts), stats.latency.sum),
        "rejects": dict(handler.rejects),
        "refused": view.refused,
        "decided": dict(claims.decided) if claims is not None else {},
        "challenges": len(handler.challenges),
    }


def listener_options(settings: Settings) -> ListenerOptions:
    radius = settings.radius
    return ListenerOptions(
        reject_delay=radius.reject_delay,
        duplicate_window=radius.duplicate_window,
        max_delayed_rejects=radius.max_delayed_rejects,
    )


class Worker:
    """One worker's parts; built by :meth:`start`, driven by the main process's messages."""

    def __init__(self, number: int, channel: Channel, sockets: Sequence[socket.socket]) -> None:
        self.number = number
        self._channel = channel
        self._sockets = sockets
        self._pending: list[tuple[Any, ...]] = []  # messages that came while loading
        self._stop = asyncio.Event()
        self._stop_requested = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.settings: Settings | None = None
        self.engine: AsyncEngine | None = None
        self.index: AuthIndex | None = None
        self.handler: AccessHandler | None = None
        self.view: SessionView | None = None
        self.session_jobs: SessionJobs | None = None
        self.claims: LoginClaims | MainProcessClaims | None = None
        self.auth_log: AuthLogWriter | None = None
        self.stats = Stats()
        self.listeners: list[tuple[asyncio.DatagramTransport, RadiusProtocol]] = []
        self.replies: ReplyCache | None = None
        self._catalog_holder: list[AttributeCatalog] = []

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self, settings: Settings) -> None:
        self.settings = settings
        catalog = load_catalog(settings)
        database = settings.database
        self.engine = create_engine(
            settings.database_url,
            echo=database.echo,
            pool_size=database.pool_size,
            sqlite_synchronous=database.sqlite_synchronous,
            connect_timeout=database.connect_timeout,
            statement_timeout=database.statement_timeout,
        )
        sessions = session_factory(self.engine)
        # Listen first, read after: a change committed while the index loads arrives as a
        # message and is applied once the index stands.
        self._spawn(self._receive(), "worker-channel")
        index = self.index = AuthIndex(sessions, zone=settings.zone)
        await index.load()
        settle_heap()
        accounting = settings.accounting
        view = self.view = SessionView(start_wait=accounting.start_wait)
        self.session_jobs = SessionJobs(sessions, index, view, accounting)
        await self.session_jobs.reload_view()
        # Other processes decide logins too: the main process's view, or the database where
        # other nodes may decide as well.
        if decided_in_database(accounting.simultaneous_use_decisions, settings.database_url):
            name = f"{node_name(settings.scheduler.node_name)}/w{self.number}"
            self.claims = LoginClaims(
                sessions,
                view,
                node=name,
                start_wait=accounting.start_wait,
                offline=accounting.simultaneous_use_offline,
            )
        else:
            self.claims = MainProcessClaims(self._channel, view)
        self._spawn(self.claims.run(), "login-claims")
        leaser = Leaser(sessions, offer_timeout=settings.pools.offer_timeout,
                        is_fixed=index.is_fixed)  # fmt: skip
        log_settings = settings.auth_log
        self.auth_log = AuthLogWriter(
            self._send_auth_log,
            flush_interval=min(log_settings.flush_interval, 0.2),
            max_pending=log_settings.max_pending,
        )
        self._spawn(self.auth_log.run(), "auth-log")
        radius = settings.radius
        # The dictionaries in use: replaced whole by a reload.
        catalog_holder = self._catalog_holder = [catalog]
        self.handler = AccessHandler(
            index,
            lambda: catalog_holder[0],
            auth_log=self.auth_log,
            sessions=view,
            leases=leaser,
            interim_interval=accounting.interim_interval,
            reply_message=radius.reply_message,
            chap_challenge_window=radius.chap_challenge_window,
            today=lambda: index.local_now().date(),
        )
        self.handler.claims = self.claims
        replies = self.replies = ReplyCache(radius.duplicate_window)
        loop = asyncio.get_running_loop()
        replies.start(loop)
        options = listener_options(settings)
        for sock in self._sockets:
            handler = self.handler

            def protocol(handler: AccessHandler = handler) -> RadiusProtocol:
                return RadiusProtocol(
                    "auth", lambda: index.clients, handler, self.stats, options, replies
                )

            transport, proto = await udp.open_endpoint(protocol, sock)
            self.listeners.append((transport, proto))
        for message in self._pending:
            await self._apply(message)
        self._pending.clear()
        self._spawn(self._report(), "worker-stats")
        self._spawn(self._windows(), "worker-windows")
        self._channel.send("ready", os.getpid())

    async def _send_auth_log(self, events: Sequence[AuthEvent]) -> None:
        self._channel.send("auth_log", list(events))
        await self._channel.drain()

    async def _receive(self) -> None:
        while True:
            try:
                message = await self._channel.receive()
            except ChannelClosed:
                # The main process is gone: nothing may decide on its behalf any more.
                log.error("worker %d: the main process went away; stopping", self.number)
                if isinstance(self.claims, MainProcessClaims):
                    self.claims.gone()
                self._stop.set()
                return
            if message[0] == "claimed":
                # At once, before any change waiting to be applied: logins wait for these.
                if isinstance(self.claims, MainProcessClaims):
                    self.claims.claimed(message[1])
                continue
            if message[0] == "stop":
                # In a task of its own: the logins it waits for are answered by ``claimed``
                # messages, which this loop goes on reading.
                if not self._stop_requested:
                    self._stop_requested = True
                    self._spawn(self._stopping(float(message[1])), "worker-stopping")
                continue
            if self.handler is None and message[0] in ("changed", "reload"):
                self._pending.append(message)
                continue
            try:
                await self._apply(message)
            except Exception:
                log.exception("worker %d: could not apply %s", self.number, message[0])

    async def _apply(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "changed":
            sequence, entity, ids = message[1], message[2], message[3]
            try:
                if entity == "sessions":
                    assert self.session_jobs is not None
                    await self.session_jobs.reload_contracts(ids)
                else:
                    assert self.index is not None
                    await self.index.changed_many(entity, ids)
            finally:
                self._channel.send("applied", sequence)
        elif kind == "reload":
            ok, detail = await self._reload(Settings.model_validate(message[1]))
            self._channel.send("reloaded", ok, detail)
        else:
            log.warning("worker %d: unknown message %r", self.number, kind)

    async def _reload(self, settings: Settings) -> tuple[bool, str]:
        """New settings from a SIGHUP (merged by the main process): swap in what it applies."""
        assert self.index is not None and self.handler is not None
        try:
            catalog = await asyncio.to_thread(load_catalog, settings)
            catalogue = await asyncio.wait_for(self.index.read_catalogue(), 10.0)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        # One synchronous swap: no datagram sees a mix.
        self._catalog_holder[0] = catalog
        plans = self.index.install_catalogue(catalogue)
        radius = settings.radius
        self.handler.configure(
            interim_interval=settings.accounting.interim_interval,
            reply_message=radius.reply_message,
            chap_challenge_window=radius.chap_challenge_window,
        )
        options = listener_options(settings)
        for _transport, protocol in self.listeners:
            protocol.options = options
        if self.replies is not None:
            self.replies.window = radius.duplicate_window
        if settings.logging != (self.settings.logging if self.settings else None):
            daemon_logging.configure(settings.logging)
        self.settings = settings
        if plans:
            await self.index.recompute_plans(plans)
        return True, "reloaded"

    async def _report(self) -> None:
        assert self.handler is not None and self.view is not None
        while not self._stop.is_set():
            await asyncio.sleep(STATS_INTERVAL)
            with contextlib.suppress(ChannelClosed):
                self._channel.send("stats", snapshot(self.stats, self.handler, self.view))

    async def _windows(self) -> None:
        """Plans' time windows change on the minute: logins here follow (the main process
        sends the online sessions' CoA)."""
        assert self.index is not None
        while not self._stop.is_set():
            now = datetime.now().astimezone()
            next_minute = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
            await asyncio.sleep((next_minute - now).total_seconds() + 0.05)
            await self.index.apply_windows()

    async def _stopping(self, grace: float) -> None:
        """No new datagrams; answer what was taken (bounded by ``grace``); hand over the auth
        log; then the worker leaves."""
        deadline = time.monotonic() + grace
        for _transport, protocol in self.listeners:
            protocol.stop_accepting()
        for _transport, protocol in self.listeners:
            await protocol.drain(max(0.0, deadline - time.monotonic()))
        if self.claims is not None:
            self.claims.close()
        if self.auth_log is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.auth_log.close(), max(0.1, deadline - time.monotonic()))
        assert self.handler is not None and self.view is not None
        with contextlib.suppress(ChannelClosed):
            self._channel.send("stats", snapshot(self.stats, self.handler, self.view))
            self._channel.send("stopped")
            await self._channel.drain()
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()
        for transport, _protocol in self.listeners:
            transport.close()
        if self.replies is not None:
            self.replies.stop()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        if self.engine is not None:
            await self.engine.dispose()


async def _run(number: int, channel_fd: int, socket_fds: Sequence[int]) -> int:
    channel = await Channel.open(socket.socket(fileno=channel_fd))
    sockets = [socket.socket(fileno=fd) for fd in socket_fds]
    for sock in sockets:
        sock.setblocking(False)
    loop = asyncio.get_running_loop()
    # The main process decides when workers stop (it sends "stop"); a terminal's Ctrl-C or a
    # stray SIGTERM to the process group must not stop a worker behind its back.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, lambda: None)
    kind, settings_data = await channel.receive()
    if kind != "settings":
        raise SystemExit(f"worker {number}: expected the settings first, got {kind!r}")
    settings = Settings.model_validate(settings_data)
    daemon_logging.configure(settings.logging)
    worker = Worker(number, channel, sockets)
    await worker.start(settings)
    log.debug("worker %d ready (pid %d)", number, os.getpid())
    await worker.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m radius_contracts.workers")
    parser.add_argument("--number", type=int, required=True)
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--socket-fds", required=True, help="comma separated")
    args = parser.parse_args(argv)
    fds = [int(fd) for fd in args.socket_fds.split(",") if fd]
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        if os.environ.get("RADIUS_CONTRACTS_LOOP") != "asyncio":
            runner = uvloop.run
    try:
        return int(runner(_run(args.number, args.channel_fd, fds)))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
