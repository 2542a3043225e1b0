"""Composition root: settings → dictionaries → database → services → index → RADIUS → API.

One asyncio process: the RADIUS listeners, the management API (uvicorn embedded as a task, not a
second process) and the auth log writer; the daemon (not uvicorn) owns SIGTERM/SIGINT/SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from radius_contracts import sdnotify
from radius_contracts.aaa.accounting import (
    BATCH_BUCKETS,
    AccountingHandler,
    AccountingStore,
    AccountingWriter,
    LeaseTracking,
)
from radius_contracts.aaa.auth_log import AuthLogWriter
from radius_contracts.aaa.batch_log import BatchLog
from radius_contracts.aaa.coa_dispatch import CoaDispatcher
from radius_contracts.aaa.handler import AccessHandler
from radius_contracts.aaa.live import LiveSessions
from radius_contracts.aaa.pools import Leaser
from radius_contracts.aaa.sessions import SessionView
from radius_contracts.api.app import create_app
from radius_contracts.api.request_log import RequestLog
from radius_contracts.change_feed import ChangeFeed
from radius_contracts.contract_dates import CONTRACT_DATES_AT, ContractDates
from radius_contracts.db import migrate
from radius_contracts.db.engine import (
    create_engine,
    is_sqlite,
    redacted_url,
    session_factory,
    sqlite_path,
)
from radius_contracts.domain import CoaRecord, TokenRole
from radius_contracts.errors import RadiusContractsError
from radius_contracts.index import AuthIndex
from radius_contracts.jobs import Scheduler, SessionJobs, node_name
from radius_contracts.radius.coa import CoaSender
from radius_contracts.radius.dedup import ReplyCache
from radius_contracts.radius.dictionary import AttributeCatalog
from radius_contracts.radius.listen import open_listeners
from radius_contracts.radius.protocol import ListenerOptions, Port, RadiusProtocol, Stats
from radius_contracts.services.base import SYSTEM, ServiceContext
from radius_contracts.services.defaults import seed_defaults
from radius_contracts.services.registry import Services
from radius_contracts.settings import Settings
from radius_contracts.store.accounting import SqliteAccountingConnection

log = logging.getLogger("radius_contracts.daemon")

BOOTSTRAP_TOKEN_NAME = "admin"  # noqa: S105  (names, not secrets)
BOOTSTRAP_TOKEN_FILE = "admin-token"  # noqa: S105
SHUTDOWN_TIMEOUT = 10.0


def load_catalog(settings: Settings) -> AttributeCatalog:
    return AttributeCatalog.load(settings.radius.dictionary, settings.radius.extra_dictionary_dirs)


async def open_services(settings: Settings, *, run_migrations: bool) -> Services:
    """Dictionaries, engine, schema and attribute catalogue: everything the use cases need."""
    catalog = load_catalog(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        settings.database_url,
        echo=settings.database.echo,
        pool_size=settings.database.pool_size,
        sqlite_synchronous=settings.database.sqlite_synchronous,
    )
    new_database = await migrate.upgrade(engine) if run_migrations else False
    services = Services.build(ServiceContext(sessions=session_factory(engine), catalog=catalog))
    if run_migrations:
        added = await services.attributes.sync(catalog)
        if added:
            log.info("added %d dictionary attributes to the catalogue", added)
    if new_database:
        # After the sync: the default layouts are linted against the catalogue table.
        await seed_defaults(services)
    return services


def engine_of(services: Services) -> AsyncEngine:
    bind = services.context.sessions.kw["bind"]
    assert isinstance(bind, AsyncEngine)
    return bind


async def ensure_admin_token(services: Services, state_dir: Path) -> Path | None:
    """On a database without an admin token, create one and write it to the state directory.

    The token goes to a 0600 file, never to the log: logs are often shipped elsewhere.
    """
    if await services.tokens.has_admin():
        return None
    path = state_dir / BOOTSTRAP_TOKEN_FILE
    _row, token = await services.tokens.create(SYSTEM, BOOTSTRAP_TOKEN_NAME, TokenRole.ADMIN)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    log.warning("created the first admin API token; it is in %s", path)
    return path


def _settle_heap() -> None:
    """Keep the garbage collector off the authorization index.

    The index holds a few objects per contract, millions at scale, and they live as long as
    the process. Without this every full collection walks all of them (hundreds of ms at a
    million contracts: a latency spike for every packet in flight), and young collections
    run every 700 allocations of the packet path. Freezing moves what exists now out of the
    collector's sight; the higher threshold makes young collections rarer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # The database driver's worker thread (aiosqlite) runs Python between SQLite calls. Each
    # time the event loop thread gives the GIL up for a syscall (recvfrom, sendto, epoll), it
    # may wait a whole switch interval to get it back: 5 ms by default, which showed as a p99
    # of 80-90 ms at 5,000 req/s while the auth log was being written. 2 ms bounds that
    sys.setswitchinterval(0.002)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Daemon:
    """The running process: start(), then wait for stop() or a signal."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services | None = None
        self.api_port: int | None = None
        self._api: _EmbeddedServer | None = None
        self._api_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.index: AuthIndex | None = None
        self.handler: AccessHandler | None = None
        self.auth_log: AuthLogWriter | None = None
        self.sessions: SessionView | None = None
        self.accounting: AccountingWriter | None = None
        self.accounting_handler: AccountingHandler | None = None
        self.session_jobs: SessionJobs | None = None
        self.leaser: Leaser | None = None
        self.accounting_store: AccountingStore | None = None
        self.scheduler = Scheduler(settings.scheduler.node_name)
        self.coa_sender: CoaSender | None = None
        self.coa_log: BatchLog[CoaRecord] | None = None
        self.live: LiveSessions | None = None
        self.contract_dates: ContractDates | None = None
        self.change_feed: ChangeFeed | None = None
        self.stats = Stats()
        self.auth_port: int | None = None  # the bound ports (differ from settings when 0)
        self.acct_port: int | None = None
        self._listeners: list[tuple[asyncio.DatagramTransport, RadiusProtocol]] = []
        self._reply_caches: list[ReplyCache] = []

    async def start(self) -> None:
        settings = self.settings
        self.services = await open_services(
            settings, run_migrations=settings.database.migrate_on_start
        )
        await ensure_admin_token(self.services, settings.state_dir)
        await self._start_radius()
        config = uvicorn.Config(
            RequestLog(create_app(self.services, metrics=self.metrics_text, jobs=self.scheduler)),
            host=settings.api.host,
            port=settings.api.port,
            # Logging is ours (logging.configure); RequestLog writes the one line per request.
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
        self._api = _EmbeddedServer(config)
        self._api_task = asyncio.create_task(self._api.serve(), name="api")
        while not self._api.started:
            if self._api_task.done():
                # uvicorn logs why (e.g. port in use) and exits without raising.
                await self._api_task
                raise SystemExit(f"management API could not listen on "
                                 f"{settings.api.host}:{settings.api.port}")  # fmt: skip
            await asyncio.sleep(0.01)
        self.api_port = self._api.servers[0].sockets[0].getsockname()[1]
        status = (
            f"RADIUS auth {self.auth_port}, acct {self.acct_port}; "
            f"API on {settings.api.host}:{self.api_port}"
        )
        sdnotify.notify(f"READY=1\nSTATUS={status}")
        log.info(
            "radius-contracts ready: %s, database %s", status, redacted_url(settings.database_url)
        )

    async def _start_radius(self) -> None:
        """Index, handler and auth log, then the UDP listeners (auth and accounting ports)."""
        assert self.services is not None
        services, radius = self.services, self.settings.radius
        self.index = AuthIndex(services.context.sessions)
        await self.index.load()
        _settle_heap()
        services.context.listeners.append(self.index.changed_many)
        if not is_sqlite(self.settings.database_url):
            # Other nodes on this database: their commits reach this index, ours theirs.
            self.change_feed = ChangeFeed(
                self.settings.database_url,
                node_name(self.settings.scheduler.node_name),
                self.index.changed_many,
                self.index.load,
            )
            await self.change_feed.start()
            services.context.listeners.append(self.change_feed.publish)
        log_settings = self.settings.auth_log
        self.auth_log = AuthLogWriter(
            services.auth_log.write,
            purge=services.auth_log.purge,
            retention_days=log_settings.retention_days,
            max_rows=log_settings.max_rows,
            flush_interval=log_settings.flush_interval,
            max_pending=log_settings.max_pending,
        )
        self._spawn(self.auth_log.run(), "auth-log")
        await self._start_accounting()
        context = services.context
        self.handler = AccessHandler(
            self.index,
            lambda: context.catalog,
            auth_log=self.auth_log,
            sessions=self.sessions,
            leases=self.leaser,
            interim_interval=self.settings.accounting.interim_interval,
            reply_message=radius.reply_message,
        )
        context.access = self.handler
        self._start_coa()
        options = ListenerOptions(
            reject_delay=radius.reject_delay,
            duplicate_window=radius.duplicate_window,
            max_delayed_rejects=radius.max_delayed_rejects,
        )
        index = self.index
        ports: dict[Port, int] = {"auth": radius.auth_port, "acct": radius.acct_port}
        for kind, port in ports.items():
            replies = ReplyCache(radius.duplicate_window)
            replies.start(asyncio.get_running_loop())
            self._reply_caches.append(replies)

            def protocol(kind: Port = kind, replies: ReplyCache = replies) -> RadiusProtocol:
                auth = self.handler if kind == "auth" else None
                acct = self.accounting_handler if kind == "acct" else None
                return RadiusProtocol(
                    kind, lambda: index.clients, auth, self.stats, options, replies, acct
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

    async def _start_accounting(self) -> None:
        """Session view, accounting writer and handler, and the periodic session jobs."""
        assert self.services is not None and self.index is not None
        sessions = self.services.context.sessions
        settings = self.settings.accounting
        self.sessions = SessionView(start_wait=settings.start_wait)
        self.leaser = Leaser(
            sessions, offer_timeout=self.settings.pools.offer_timeout, is_fixed=self.index.is_fixed
        )
        url = self.settings.database_url
        sqlite = None
        if is_sqlite(url):
            sqlite = SqliteAccountingConnection(
                sqlite_path(url), self.settings.database.sqlite_synchronous
            )
        store = self.accounting_store = AccountingStore(
            sessions, sqlite=sqlite, leases=LeaseTracking(self.index)
        )
        self.accounting = AccountingWriter(
            store.write,
            is_data_error=store.is_data_error,
            on_applied=self.sessions.applied,
            max_pending=settings.max_pending,
            max_batch=settings.max_batch,
        )
        self._spawn(self.accounting.run(), "accounting")
        self.accounting_handler = AccountingHandler(self.index, self.accounting)
        jobs = self.session_jobs = SessionJobs(sessions, self.index, self.sessions, settings)
        count = await jobs.reload_view()
        log.info("%d sessions online", count)
        # Shared jobs act on the database: one node runs each turn. Local ones keep this
        # node's memory true.
        every, scheduler = settings.jobs_interval, self.scheduler
        scheduler.every(
            "stale-sessions",
            every,
            jobs.close_stale,
            shared=True,
            description="Close sessions without an update for stale_after interim intervals "
            "(terminate cause Stale).",
        )
        scheduler.every(
            "purge-history",
            max(every, 3600.0),
            jobs.purge_history,
            shared=True,
            description="Delete sessions closed more than history_days ago and daily usage "
            "totals older than usage_days.",
        )
        scheduler.every(
            "expire-leases",
            every,
            self.leaser.expire,
            shared=True,
            description="Free pool addresses whose lease ran out (offered and never confirmed "
            "by an Accounting-Start, or no longer renewed).",
        )
        # Its disconnect is the CoA sender's, set up with the handler (see _start_coa).
        dates = self.contract_dates = ContractDates(sessions)
        scheduler.daily(
            "contract-dates",
            CONTRACT_DATES_AT,
            dates.run,
            shared=True,
            description="Disconnect the sessions of contracts past their end date; count the "
            "contracts that start today.",
        )
        scheduler.every(
            "forget-logins",
            every,
            jobs.forget_logins,
            description="Forget logins accepted by this node whose Accounting-Start never came "
            "(they count against simultaneous use for start_wait seconds).",
        )
        if not is_sqlite(self.settings.database_url):
            # Other nodes record sessions too: read them in regularly.
            scheduler.every(
                "refresh-sessions",
                settings.session_refresh,
                jobs.reload_view,
                description="Read the open sessions every node recorded into this node's view "
                "(for the simultaneous-use check).",
            )
        await scheduler.start(sessions)

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
        dispatcher = CoaDispatcher(
            self.coa_sender, lambda name: context.catalog.get(name), self.coa_log.record
        )
        self.live = LiveSessions(
            self.index,
            self.handler,
            context.sessions,
            dispatcher,
            layout_rate=settings.layout_rate,
        )
        context.live = self.live
        if self.contract_dates is not None:
            self.contract_dates.disconnect = self.live.disconnect_contracts

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def radius_sockets(self) -> list[tuple[str, str, int]]:
        """(port kind, address, port) of every RADIUS socket listening now."""
        return [
            (protocol.port, *transport.get_extra_info("sockname")[:2])
            for transport, protocol in self._listeners
        ]

    def metrics_text(self) -> str:
        """Prometheus text exposition of the daemon's counters (served at /metrics)."""
        lines = [
            "# HELP radius_contracts_radius_packets_total RADIUS datagrams by outcome "
            "(received, accepts, rejects, duplicates, status_server, drop_<reason>, "
            "malformed_<reason>).",
            "# TYPE radius_contracts_radius_packets_total counter",
        ]
        for outcome, count in sorted(self.stats.counts.items()):
            lines.append(f'radius_contracts_radius_packets_total{{outcome="{outcome}"}} {count}')
        if self.index is not None:
            lines += [
                "# HELP radius_contracts_index_contracts Contracts in the authorization index.",
                "# TYPE radius_contracts_index_contracts gauge",
                f"radius_contracts_index_contracts {len(self.index)}",
            ]
        if self.auth_log is not None:
            log_ = self.auth_log
            lines += [
                "# HELP radius_contracts_auth_log_events_total Auth log events by fate.",
                "# TYPE radius_contracts_auth_log_events_total counter",
                f'radius_contracts_auth_log_events_total{{fate="written"}} {log_.written}',
                f'radius_contracts_auth_log_events_total{{fate="dropped"}} {log_.dropped}',
                "# HELP radius_contracts_auth_log_pending Auth log events waiting to be written.",
                "# TYPE radius_contracts_auth_log_pending gauge",
                f"radius_contracts_auth_log_pending {log_.pending}",
            ]
        lines += self._accounting_metrics()
        lines += self._coa_metrics()
        return "\n".join(lines) + "\n"

    def _coa_metrics(self) -> list[str]:
        if self.live is None:
            return []
        dispatcher = self.live.dispatcher
        lines = [
            "# HELP radius_contracts_coa_requests_total CoA and Disconnect-Requests by kind and "
            "outcome (ack, nak, timeout, error: not sent).",
            "# TYPE radius_contracts_coa_requests_total counter",
        ]
        for (kind, outcome), count in sorted(dispatcher.outcomes.items()):
            labels = f'kind="{kind}",outcome="{outcome}"'
            lines.append(f"radius_contracts_coa_requests_total{{{labels}}} {count}")
        lines += [
            "# HELP radius_contracts_coa_pending Sessions with a CoA or Disconnect-Request in "
            "flight or waiting.",
            "# TYPE radius_contracts_coa_pending gauge",
            f"radius_contracts_coa_pending {dispatcher.pending}",
        ]
        return lines

    def _accounting_metrics(self) -> list[str]:
        writer = self.accounting
        if writer is None:
            return []
        lines = [
            "# HELP radius_contracts_accounting_records_total Accounting-Requests by fate "
            "(recorded: committed and answered; failed: the database failed, unanswered; "
            "dropped: the queue was full; ignored: status types that describe no session).",
            "# TYPE radius_contracts_accounting_records_total counter",
            f'radius_contracts_accounting_records_total{{fate="recorded"}} {writer.records}',
            f'radius_contracts_accounting_records_total{{fate="failed"}} {writer.failed}',
            f'radius_contracts_accounting_records_total{{fate="dropped"}} {writer.dropped}',
        ]
        if self.accounting_handler is not None:
            ignored = self.accounting_handler.ignored
            lines.append(f'radius_contracts_accounting_records_total{{fate="ignored"}} {ignored}')
        lines += [
            "# HELP radius_contracts_accounting_pending Accounting-Requests waiting for a commit.",
            "# TYPE radius_contracts_accounting_pending gauge",
            f"radius_contracts_accounting_pending {writer.pending}",
            "# HELP radius_contracts_accounting_batch_size Accounting-Requests per commit "
            "(group commit).",
            "# TYPE radius_contracts_accounting_batch_size histogram",
        ]
        cumulative = 0
        for bound, count in zip(BATCH_BUCKETS, writer.batch_buckets, strict=True):
            cumulative += count
            bucket = f'radius_contracts_accounting_batch_size_bucket{{le="{bound}"}}'
            lines.append(f"{bucket} {cumulative}")
        lines += [
            f'radius_contracts_accounting_batch_size_bucket{{le="+Inf"}} {writer.batches}',
            f"radius_contracts_accounting_batch_size_sum {writer.batch_sum}",
            f"radius_contracts_accounting_batch_size_count {writer.batches}",
            "# HELP radius_contracts_accounting_commit_seconds_total Time spent in commits.",
            "# TYPE radius_contracts_accounting_commit_seconds_total counter",
            f"radius_contracts_accounting_commit_seconds_total {writer.commit_seconds:.6f}",
        ]
        if self.leaser is not None:
            lines += [
                "# HELP radius_contracts_pool_exhausted_total Access-Requests rejected because "
                "their managed pool had no free address, by pool.",
                "# TYPE radius_contracts_pool_exhausted_total counter",
            ]
            for pool, count in sorted(self.leaser.exhausted.items()):
                name = pool.replace("\\", "\\\\").replace('"', '\\"')
                lines.append(f'radius_contracts_pool_exhausted_total{{pool="{name}"}} {count}')
        if self.sessions is not None:
            lines += [
                "# HELP radius_contracts_simultaneous_use_refused_total Logins refused for "
                "their contract's simultaneous-use limit.",
                "# TYPE radius_contracts_simultaneous_use_refused_total counter",
                f"radius_contracts_simultaneous_use_refused_total {self.sessions.refused}",
            ]
        return lines

    def stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()
        await self.shutdown()

    def reload(self) -> None:
        """SIGHUP: reload the dictionaries; a broken file keeps the loaded set and says why."""
        if self.services is None:
            return
        try:
            catalog = load_catalog(self.settings)
        except RadiusContractsError as exc:
            log.error("reload failed, keeping the loaded dictionaries: %s", exc.detail)
            return
        self.services.context.catalog = catalog
        log.info("reloaded %d dictionary attributes", len(catalog))
        # New dictionary attributes join the catalogue table in the background.
        self._spawn(self._sync_attributes(catalog), "sync-attributes")
        if self.index is not None:
            # Rebuild the NAS table, layouts and pools too (another node may have changed them).
            self._spawn(self.index.changed("nas", 0), "reload-index")

    async def _sync_attributes(self, catalog: AttributeCatalog) -> None:
        assert self.services is not None
        try:
            added = await self.services.attributes.sync(catalog)
        except RadiusContractsError as exc:
            log.error("could not add new dictionary attributes to the catalogue: %s", exc.detail)
            return
        if added:
            log.info("added %d dictionary attributes to the catalogue", added)

    async def shutdown(self) -> None:
        """Stop in a fixed order: RADIUS listeners, API (drains in-flight requests), auth log,
        then the database."""
        sdnotify.notify("STOPPING=1")
        await self.scheduler.shutdown(SHUTDOWN_TIMEOUT)
        if self.accounting is not None:
            # Commit and answer what is queued while the sockets are still open; new
            # Accounting-Requests are refused meanwhile (the NAS retransmits elsewhere).
            await self.accounting.close(SHUTDOWN_TIMEOUT)
        if self.accounting_store is not None:
            await asyncio.to_thread(self.accounting_store.close)
        if self.live is not None:
            # Requests in flight get their answer (or time out) and are logged.
            await self.live.close(SHUTDOWN_TIMEOUT)
        if self.coa_sender is not None:
            self.coa_sender.close()
        if self.coa_log is not None:
            await self.coa_log.close()
        for _transport, protocol in self._listeners:
            # Accepts waiting on a pool lease are answered while the sockets are still open.
            await protocol.drain(SHUTDOWN_TIMEOUT)
        for transport, _protocol in self._listeners:
            transport.close()
        self._listeners.clear()
        for replies in self._reply_caches:
            replies.stop()
        if self.auth_log is not None:
            await self.auth_log.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=SHUTDOWN_TIMEOUT)
        if self._api is not None and self._api_task is not None:
            self._api.should_exit = True
            try:
                await asyncio.wait_for(self._api_task, SHUTDOWN_TIMEOUT)
            except TimeoutError:
                log.warning("API did not stop within %ss; cancelling", SHUTDOWN_TIMEOUT)
                self._api_task.cancel()
        if self.change_feed is not None:
            await self.change_feed.close()
        if self.services is not None:
            await engine_of(self.services).dispose()
        log.info("radius-contracts stopped")


async def serve(settings: Settings) -> None:
    daemon = Daemon(settings)
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, daemon.stop)
        loop.add_signal_handler(signal.SIGHUP, daemon.reload)
    try:
        await daemon.start()
    except BaseException:
        await daemon.shutdown()
        raise
    await daemon.wait()
