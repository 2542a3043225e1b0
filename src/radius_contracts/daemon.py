"""Composition root: settings → dictionaries → database → services → index → RADIUS → API.

One asyncio process: the RADIUS listeners, the management API (uvicorn embedded as a task, not a
second process) and the auth log writer; the daemon (not uvicorn) owns SIGTERM/SIGINT/SIGHUP.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

from radius_contracts import sdnotify
from radius_contracts.aaa import mschap_speedups
from radius_contracts.aaa.accounting import AccountingHandler, AccountingStore, LeaseTracking
from radius_contracts.aaa.accounting_writer import AccountingWriter
from radius_contracts.aaa.auth_log import AuthEvent, AuthLogWriter
from radius_contracts.aaa.batch_log import BatchLog
from radius_contracts.aaa.claims import LoginClaims, decided_in_database
from radius_contracts.aaa.coa_dispatch import CoaDispatcher
from radius_contracts.aaa.handler import AccessHandler
from radius_contracts.aaa.live import LiveSessions
from radius_contracts.aaa.pools import Leaser
from radius_contracts.aaa.quota import QuotaKeeper
from radius_contracts.aaa.sessions import SessionView
from radius_contracts.aaa.spool import AccountingSpool
from radius_contracts.aaa.windows import PlanWindows
from radius_contracts.api.refusals import Refusals
from radius_contracts.api.server import EmbeddedServer, start_api
from radius_contracts.change_feed import ChangeFeed
from radius_contracts.contract_dates import ContractDates
from radius_contracts.db.engine import (
    is_sqlite,
    redacted_url,
    sqlite_path,
)
from radius_contracts.db.sqlite_writer import SqliteWriter
from radius_contracts.domain import CoaRecord
from radius_contracts.index import AuthIndex
from radius_contracts.jobs import Scheduler, SessionJobs, node_name
from radius_contracts.loop_lag import LoopLag
from radius_contracts.memory_debug import MemoryReport
from radius_contracts.metrics import DaemonMetrics
from radius_contracts.pool_use import PoolUse
from radius_contracts.radius import wire_speedups
from radius_contracts.radius.coa import CoaSender
from radius_contracts.radius.dedup import ReplyCache
from radius_contracts.radius.dictionary import AttributeCatalog
from radius_contracts.radius.listen import open_listeners
from radius_contracts.radius.protocol import (
    ListenerOptions,
    Port,
    RadiusProtocol,
    Stats,
    StatsTotal,
)
from radius_contracts.radius.radsec import RadsecCoaSender, RadsecServer
from radius_contracts.radsec_setup import start_radsec
from radius_contracts.reload import Reloader
from radius_contracts.schedule import schedule_jobs
from radius_contracts.services.auth_log import part_rows
from radius_contracts.services.registry import Services
from radius_contracts.settings import Settings
from radius_contracts.startup import (
    engine_of,
    ensure_admin_token,
    open_services,
    raise_open_files_limit,
    settle_heap,
)
from radius_contracts.store.accounting import Applied
from radius_contracts.workers.pool import WorkerPool

log = logging.getLogger("radius_contracts.daemon")

# Auth log entries per transaction. On SQLite each batch runs on the write thread that
# accounting's batches queue on: 250 rows hold it for a few ms, so a burst of logins is written
# as several short transactions with accounting's in between, not one long one.
AUTH_LOG_BATCH = 250

SHUTDOWN_BUDGET = 20.0
"""Seconds SIGTERM may take in all, every phase included. Below the unit's TimeoutStopSec=30,
so systemd never has to SIGKILL a daemon that is finishing its accounting commits."""
SPOOL_DIRECTORY = "accounting-spool"


class Daemon:
    """The running process: start(), then wait for stop() or a signal."""

    def __init__(
        self,
        settings: Settings,
        reread: Callable[[], Settings] | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``reread`` builds the settings afresh for SIGHUP (the CLI re-reads its config file
        and the environment); without it a reload keeps ``settings``. ``clock`` is the wall
        clock that contract dates, quota periods and plan windows are read on (tests move
        it)."""
        self.settings = settings
        self.clock = clock
        self.reloader = Reloader(self, reread or (lambda: self.settings), self._spawn)
        self._accounting_task: asyncio.Task[None] | None = None
        self.services: Services | None = None
        self.api_port: int | None = None
        self._api: EmbeddedServer | None = None
        self._api_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.loop_lag = LoopLag()
        self._loop_lag_task: asyncio.Task[None] | None = None
        self.index: AuthIndex | None = None
        self.handler: AccessHandler | None = None
        self.auth_log: AuthLogWriter | None = None
        self.sessions: SessionView | None = None
        self.accounting: AccountingWriter | None = None
        self.accounting_handler: AccountingHandler | None = None
        self.session_jobs: SessionJobs | None = None
        self.leaser: Leaser | None = None
        self.accounting_store: AccountingStore | None = None
        self.sqlite_writer: SqliteWriter | None = None
        self.accounting_spool: AccountingSpool | None = None
        self.scheduler = Scheduler(settings.scheduler.node_name)
        self.coa_sender: CoaSender | None = None
        self.coa_log: BatchLog[CoaRecord] | None = None
        self.live: LiveSessions | None = None
        self.contract_dates: ContractDates | None = None
        self.quota: QuotaKeeper | None = None
        self.claims: LoginClaims | None = None
        self.worker_pool: WorkerPool | None = None
        self.plan_windows: PlanWindows | None = None
        self.change_feed: ChangeFeed | None = None
        self.port_stats: dict[Port, Stats] = {"auth": Stats(), "acct": Stats()}
        if settings.radsec.enabled:
            self.port_stats["radsec"] = Stats()
        self.radsec: RadsecServer | None = None
        self.radsec_port: int | None = None
        self.stats = StatsTotal(self.port_stats.values())  # both ports' outcomes summed
        self.api_refusals = Refusals()
        self.metrics = DaemonMetrics(self)
        self.auth_port: int | None = None  # the bound ports (differ from settings when 0)
        self.acct_port: int | None = None
        self._listeners: list[tuple[asyncio.DatagramTransport, RadiusProtocol]] = []
        self.reply_caches: list[ReplyCache] = []

    async def start(self) -> None:
        settings = self.settings
        raise_open_files_limit()
        self._loop_lag_task = asyncio.create_task(self.loop_lag.run(), name="loop-lag")
        self.services = await open_services(
            settings, run_migrations=settings.database.migrate_on_start
        )
        await ensure_admin_token(self.services, settings.state_dir)
        await self._start_radius()
        self._api, self._api_task, self.api_port = await start_api(
            self.services,
            settings.api,
            self.api_refusals,
            metrics=self.metrics.exposition,
            jobs=self.scheduler,
            readiness=self.readiness,
        )
        status = (
            f"RADIUS auth {self.auth_port}, acct {self.acct_port}"
            + (f", RadSec {self.radsec_port}" if self.radsec_port is not None else "")
            + f"; API on {settings.api.host}:{self.api_port}"
        )
        sdnotify.notify(f"READY=1\nSTATUS={status}")
        log.info(
            "radius-contracts ready: %s, database %s, wire code %s, MS-CHAPv2 %s",
            status,
            redacted_url(settings.database_url),
            "C" if wire_speedups.active() else "pure Python",
            "C" if mschap_speedups.active() else "pure Python",
        )

    async def _start_radius(self) -> None:
        """Index, handler and auth log, then the UDP listeners (auth and accounting ports)."""
        assert self.services is not None
        services, radius = self.services, self.settings.radius
        self.index = AuthIndex(
            services.context.sessions, zone=self.settings.zone, clock=lambda: self.clock()
        )
        await self.index.load()
        settle_heap()
        services.context.listeners.append(self.index.changed_many)
        services.context.on_written = self.index.written
        if not is_sqlite(self.settings.database_url):
            # Other nodes on this database: their commits reach this index, ours theirs.
            self.change_feed = ChangeFeed(
                self.settings.database_url,
                node_name(self.settings.scheduler.node_name),
                self._refresh,
                self._reload_all,
            )
            await self.change_feed.start()
            services.context.listeners.append(self.change_feed.publish)
        if is_sqlite(self.settings.database_url):
            # Accounting and the auth log write through one connection and thread.
            self.sqlite_writer = SqliteWriter(
                sqlite_path(self.settings.database_url),
                self.settings.database.sqlite_synchronous,
                engine_of(services),
            )
            services.auth_log.writer = self.sqlite_writer
        log_settings = self.settings.auth_log
        services.auth_log.bound.per_minute = log_settings.unknown_rows_per_minute
        self.auth_log = AuthLogWriter(
            services.auth_log.write,
            purge=services.auth_log.purge,
            retention_days=log_settings.retention_days,
            max_rows=log_settings.max_rows,
            flush_interval=log_settings.flush_interval,
            max_pending=log_settings.max_pending,
            batch_size=AUTH_LOG_BATCH,
        )
        services.auth_log.part_rows = part_rows(log_settings.max_rows)
        services.auth_log.on_new_segment = self.auth_log.purge_soon
        self._spawn(self.auth_log.run(), "auth-log")
        await self._start_accounting()
        context = services.context
        index = self.index
        self.handler = AccessHandler(
            index,
            lambda: context.catalog,
            auth_log=self.auth_log,
            sessions=self.sessions,
            leases=self.leaser,
            interim_interval=self.settings.accounting.interim_interval,
            reply_message=radius.reply_message,
            chap_challenge_window=radius.chap_challenge_window,
            today=lambda: index.local_now().date(),
        )
        self.handler.claims = self.claims
        context.access = self.handler
        self._start_coa()
        self.metrics.watch_pools(PoolUse(self.index, services.pools.held_by_pool))
        options = ListenerOptions(
            reject_delay=radius.reject_delay,
            duplicate_window=radius.duplicate_window,
            max_delayed_rejects=radius.max_delayed_rejects,
        )
        index = self.index
        ports: dict[Port, int] = {"auth": radius.auth_port, "acct": radius.acct_port}
        if radius.workers > 1:
            # The worker processes answer on the authentication port (workers.pool).
            del ports["auth"]
            await self._start_workers()
        for kind, port in ports.items():
            replies = ReplyCache(radius.duplicate_window)
            replies.start(asyncio.get_running_loop())
            self.reply_caches.append(replies)

            def protocol(kind: Port = kind, replies: ReplyCache = replies) -> RadiusProtocol:
                auth = self.handler if kind == "auth" else None
                acct = self.accounting_handler if kind == "acct" else None
                stats = self.port_stats[kind]
                return RadiusProtocol(
                    kind, lambda: index.clients, auth, stats, options, replies, acct
                )

            try:
                opened = await open_listeners(radius.bind, port, protocol, radius.receive_buffer)
            except OSError as exc:
                raise SystemExit(
                    f"RADIUS {kind} port could not listen on {', '.join(radius.bind)} "
                    f"port {port}: {exc.strerror or exc}"
                ) from None
            self._listeners.extend(opened)
            bound = opened[0][0].get_extra_info("sockname")[1]
            if kind == "auth":
                self.auth_port = bound
            else:
                self.acct_port = bound
        if self.settings.radsec.enabled:
            # RFC 6614: Access, Accounting and Status-Server over TLS, into the same handlers.
            replies = ReplyCache(radius.duplicate_window)
            replies.start(asyncio.get_running_loop())
            self.reply_caches.append(replies)
            self.radsec, self.radsec_port = await start_radsec(
                self.settings.radsec, index, self.handler, self.accounting_handler,
                self.port_stats["radsec"], options, replies, self._catalog,
            )  # fmt: skip

    def _catalog(self) -> AttributeCatalog | None:
        """The dictionary loaded now (a reload replaces it)."""
        return self.services.context.catalog if self.services is not None else None

    async def _start_workers(self) -> None:
        assert self.services is not None and self.auth_log is not None
        auth_log = self.auth_log

        def take(events: Sequence[AuthEvent]) -> None:
            for event in events:
                auth_log.record(event)

        pool = self.worker_pool = WorkerPool(
            self.settings, self.settings.radius.workers, on_auth_log=take
        )
        # Committed changes reach the workers' indexes as they reach this one's.
        self.services.context.listeners.append(pool.changed)
        if not self._decides_in_database():
            pool.view = self.sessions  # the workers' logins are decided here (workers.claims)
        try:
            await pool.start()
        except BaseException:
            await pool.stop(5.0)
            raise
        self.auth_port = pool.port

    async def _start_accounting(self) -> None:
        """Session view, accounting writer and handler, and the periodic session jobs."""
        assert self.services is not None and self.index is not None
        sessions = self.services.context.sessions
        settings = self.settings.accounting
        self.sessions = SessionView(start_wait=settings.start_wait)
        if self._decides_in_database():
            self.claims = LoginClaims(
                sessions,
                self.sessions,
                node=node_name(self.settings.scheduler.node_name),
                start_wait=settings.start_wait,
                offline=settings.simultaneous_use_offline,
            )
            self._spawn(self.claims.run(), "login-claims")
        self.leaser = Leaser(
            sessions, offer_timeout=self.settings.pools.offer_timeout, is_fixed=self.index.is_fixed
        )
        quota = self.quota = QuotaKeeper(self.index, sessions, clock=lambda: self.clock())
        self.services.context.quota = quota
        quota.announce = self._announce
        store = self.accounting_store = AccountingStore(
            sessions,
            sqlite=self.sqlite_writer,
            leases=LeaseTracking(self.index),
            quota=quota.target,
            claims=self.claims is not None,
        )
        if settings.spool:
            spool = self.accounting_spool = AccountingSpool(
                self.settings.state_dir / SPOOL_DIRECTORY, max_bytes=settings.spool_max_mb << 20
            )
            await asyncio.to_thread(spool.open)
        view = self.sessions

        def applied(batch: Applied) -> None:
            view.applied(batch)
            quota.applied(batch)
            self._announce_sessions(batch)

        self.accounting = AccountingWriter(
            store.write,
            is_data_error=store.is_data_error,
            on_applied=applied,
            max_pending=settings.max_pending,
            max_batch=settings.max_batch,
            commit_delay=settings.commit_delay,
            spool=self.accounting_spool,
            chain=store.write_chain if store.chains else None,
        )
        self._accounting_task = self._spawn(self.accounting.run(), "accounting")
        self.accounting_handler = AccountingHandler(self.index, self.accounting)
        jobs = self.session_jobs = SessionJobs(sessions, self.index, self.sessions, settings)
        count = await jobs.reload_view()
        log.info("%d sessions online", count)
        # Its disconnect is the CoA sender's, set up with the handler (see _start_coa).
        index = self.index
        self.contract_dates = ContractDates(sessions, today=lambda: index.local_now().date())
        # Its live sessions are the CoA sender's too (see _start_coa).
        self.plan_windows = PlanWindows(index, sessions, rate=self.settings.coa.plan_rate)
        schedule_jobs(
            self.scheduler,
            settings,
            sessions=jobs,
            leaser=self.leaser,
            dates=self.contract_dates,
            quota=quota,
            windows=self.plan_windows,
            zone=self.settings.zone,
            other_nodes=not is_sqlite(self.settings.database_url),
        )
        await self.scheduler.start(sessions)

    async def _refresh(self, entity: str, ids: Sequence[int]) -> None:
        """Another node committed these rows (the change feed): this node follows."""
        assert self.index is not None
        if self.worker_pool is not None:
            await self.worker_pool.changed(entity, ids)
        if entity == "sessions":
            # Sessions it started or stopped, by contract: the session view reads them.
            if self.session_jobs is not None:
                await self.session_jobs.reload_contracts(ids)
            return
        await self.index.changed_many(entity, ids)

    async def _reload_all(self) -> None:
        """The change feed was interrupted: read everything it may have missed."""
        assert self.index is not None
        await self.index.load()
        if self.session_jobs is not None:
            await self.session_jobs.reload_view()

    def _announce_sessions(self, batch: Applied) -> None:
        """Tell the other nodes (and this node's workers) which contracts this batch started
        or stopped sessions of, so their session views follow within a moment (the periodic
        refresh is only the safety net)."""
        announcers = self._announcers()
        if not announcers:
            return  # one process alone: nobody to tell
        ids = sorted(
            {
                state.contract_id
                for state in batch.sessions
                if state.contract_id is not None and (state.opened or state.stopped_at)
            }
        )
        if not ids:
            return
        for announce in announcers:
            self._spawn(announce("sessions", ids), "announce-sessions")

    async def _announce(self, entity: str, ids: Sequence[int]) -> None:
        for announce in self._announcers():
            await announce(entity, ids)

    def _announcers(self) -> list[Callable[[str, Sequence[int]], Coroutine[Any, Any, None]]]:
        """Who must hear of changes this node made outside the services (sessions, quota
        states): the other nodes (change feed) and this node's worker processes."""
        found: list[Callable[[str, Sequence[int]], Coroutine[Any, Any, None]]] = []
        if self.change_feed is not None:
            found.append(self.change_feed.publish)
        if self.worker_pool is not None:
            found.append(self.worker_pool.changed)
        return found

    def _decides_in_database(self) -> bool:
        """Whether simultaneous use is decided in the database (aaa.claims): where another
        node may decide too. Otherwise this process's view decides, for its worker processes
        too (workers.claims)."""
        return decided_in_database(
            self.settings.accounting.simultaneous_use_decisions, self.settings.database_url
        )

    def _start_coa(self) -> None:
        """The CoA sender, its log and the live-session updates the services call after commits."""
        assert self.services is not None and self.index is not None and self.handler is not None
        services, settings = self.services, self.settings.coa
        context = services.context
        self.coa_sender = CoaSender(
            timeout=settings.timeout,
            tries=settings.tries,
            backoff=settings.backoff,
            max_in_flight=settings.max_in_flight,
        )
        self.coa_log = BatchLog(services.sessions.write_coa_log, what="CoA log", flush_interval=0.2)
        self._spawn(self.coa_log.run(), "coa-log")
        sender: CoaSender | RadsecCoaSender = self.coa_sender
        if self.settings.radsec.enabled:
            # A NAS connected over RadSec gets its CoA over that connection (RFC 6614 §2.5).
            sender = RadsecCoaSender(self.coa_sender, lambda: self.radsec)
        dispatcher = CoaDispatcher(
            sender, lambda name: context.catalog.get(name), self.coa_log.record
        )
        self.live = LiveSessions(
            self.index,
            self.handler,
            context.sessions,
            dispatcher,
            layout_rate=settings.layout_rate,
            plan_rate=settings.plan_rate,
        )
        context.live = self.live
        if self.quota is not None:
            self.quota.live = self.live
        if self.plan_windows is not None:
            self.plan_windows.live = self.live
        if self.contract_dates is not None:
            self.contract_dates.disconnect = self.live.disconnect_contracts

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def protocols(self) -> list[RadiusProtocol]:
        """The RADIUS listeners' protocols (one per UDP socket)."""
        return [protocol for _transport, protocol in self._listeners]

    @property
    def radius_sockets(self) -> list[tuple[str, str, int]]:
        """(port kind, address, port) of every RADIUS socket listening now."""
        return [
            (protocol.port, *transport.get_extra_info("sockname")[:2])
            for transport, protocol in self._listeners
        ]

    def readiness(self) -> dict[str, Any]:
        """What RADIUS is doing, for /readyz: it keeps serving while the database is away."""
        state: dict[str, Any] = {}
        if self.index is not None:
            state["authentication"] = {"contracts_in_index": len(self.index)}
            pool = self.worker_pool
            if pool is not None:
                state["authentication"]["workers"] = {
                    "answering": pool.alive,
                    "configured": self.settings.radius.workers,
                    "restarts": pool.crashes,
                }
        writer = self.accounting
        if writer is not None:
            accounting: dict[str, Any] = {
                "mode": "spooling" if writer.spooling else "database",
                "spooled": writer.spool_pending,
            }
            if writer.outage_since is not None:
                since = datetime.fromtimestamp(writer.outage_since, UTC)
                accounting["spooling_since"] = since.isoformat(timespec="seconds")
            state["accounting"] = accounting
        return state

    def stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()
        await self.shutdown()

    # -- SIGHUP: reload (radius_contracts.reload) ---------------------------------------------

    def reload(self) -> None:
        """SIGHUP: re-read config and dictionaries, rebuild NAS, layouts and pools, swap them in."""
        if self.services is None or self.index is None or self._stop.is_set():
            return
        self.reloader.request()

    @property
    def reloads(self) -> dict[str, int]:
        """Reloads by result, as /metrics counts them."""
        return {"ok": self.reloader.ok, "failed": self.reloader.failed}

    @property
    def reloads_ok(self) -> int:
        return self.reloader.ok

    @property
    def reloads_failed(self) -> int:
        return self.reloader.failed

    # -- SIGTERM: stop ------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop taking work, finish what was taken, then close; within SHUTDOWN_BUDGET in all.

        Accounting-Requests already queued are committed and answered while the sockets are
        still open; what cannot be committed in time stays unanswered (never acknowledged),
        and the NAS sends it to its other server.
        """
        deadline = time.monotonic() + SHUTDOWN_BUDGET

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        await self.reloader.cancel()  # before STOPPING=1: a cancelled reload sends READY=1
        sdnotify.notify("STOPPING=1")
        if self._loop_lag_task is not None:
            self._loop_lag_task.cancel()  # it never ends by itself; the waits below would
        # 1. No new work: RADIUS drops new datagrams (the sockets stay open for the replies
        # still owed), the API closes its listening socket, the scheduler fires no more jobs.
        for _transport, protocol in self._listeners:
            protocol.stop_accepting()
        if self.radsec is not None:
            self.radsec.close()  # no new connections; established ones get their replies
            self.radsec.dispatch.stop_accepting()
        if self._api is not None:
            self._api.should_exit = True
        await self.scheduler.shutdown(left())
        if self._api is not None and self._api_task is not None:
            # In-flight API requests finish; their CoA go to the live-session machinery below.
            await self._bounded(self._api_task, left(), "management API")
        # 2. Finish what was taken. The workers first: they answer what they took and hand
        # over their auth log while this process still writes it.
        if self.worker_pool is not None:
            await self.worker_pool.stop(min(left(), SHUTDOWN_BUDGET / 2))
        if self.accounting is not None:
            await self.accounting.close(left())
            if self._accounting_task is not None:
                # A batch in the middle of its commit is let finish and answered.
                await asyncio.wait({self._accounting_task}, timeout=left())
        if self.claims is not None:
            self.claims.close()
        for _transport, protocol in self._listeners:
            # Accepts waiting on a pool lease are answered while the sockets are still open.
            await protocol.drain(left())
        if self.live is not None:
            # CoA and Disconnect-Requests in flight get their answer or time out, and are logged.
            # (A moment at least, so an idle dispatcher is not reported as cut off.)
            await self.live.close(max(left(), 0.05))
        # 3. Close.
        if self.coa_sender is not None:
            self.coa_sender.close()
        for transport, _protocol in self._listeners:
            transport.close()
        self._listeners.clear()
        if self.radsec is not None:
            await self.radsec.dispatch.drain(left())
            self.radsec.close_connections()
        for replies in self.reply_caches:
            replies.stop()
        for batch_log in (self.coa_log, self.auth_log):
            if batch_log is not None:
                await self._bounded(batch_log.close(), left(), "log writer")
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=left())
            for task in pending:
                task.cancel()
            if pending:
                # Let the cancelled (e.g. a writer stuck on a lock) unwind before their
                # connection and spool are closed under them.
                await asyncio.wait(pending, timeout=1.0)
        if self.sqlite_writer is not None:
            # After the auth log and accounting writers: its thread finishes what they queued.
            await asyncio.to_thread(self.sqlite_writer.close)
        if self.accounting_spool is not None:
            self.accounting_spool.close()
        if self.change_feed is not None:
            await self.change_feed.close()
        if self.services is not None:
            await engine_of(self.services).dispose()
        log.info("radius-contracts stopped")

    @staticmethod
    async def _bounded(work: Awaitable[None], grace: float, what: str) -> None:
        """Await ``work`` for at most ``grace`` seconds, then cancel it and say so."""
        try:
            await asyncio.wait_for(work, max(grace, 0.01))
        except TimeoutError:
            log.warning("%s did not stop within the shutdown budget; cancelled", what)


async def serve(settings: Settings, reread: Callable[[], Settings] | None = None) -> None:
    daemon = Daemon(settings, reread)
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, daemon.stop)
        loop.add_signal_handler(signal.SIGHUP, daemon.reload)
        # Where memory goes, for finding a leak (radius_contracts.memory_debug).
        report = MemoryReport(settings.state_dir)
        loop.add_signal_handler(signal.SIGUSR2, report.write)
    try:
        await daemon.start()
    except BaseException:
        await daemon.shutdown()
        raise
    await daemon.wait()
