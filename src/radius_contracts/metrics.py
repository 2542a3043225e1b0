"""``/metrics``: the daemon's counters in the Prometheus text format (prometheus-client).

The packet path keeps plain ints and dicts (radius.protocol.Stats, the handler's reject
counts, the accounting writer's counters); :class:`DaemonCollector` reads them only when
``/metrics`` is scraped. Each daemon has its own ``CollectorRegistry``, never the global
default one: tests run several daemons in one process. Label values that come from users or
the network (pool names) are escaped by prometheus-client.

Pool use needs the database, and a collector is synchronous: it reads the snapshot that
radius_contracts.pool_use keeps, which the route refreshes first when it is stale.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from radius_contracts.aaa.accounting_writer import BATCH_BUCKETS
from radius_contracts.index import AuthIndex
from radius_contracts.loop_lag import LoopLag
from radius_contracts.pool_use import POOL_USE_MAX_AGE, PoolUse
from radius_contracts.radius.codec import Code
from radius_contracts.radius.histogram import Histogram
from radius_contracts.radius.protocol import Port, Stats

if TYPE_CHECKING:
    from radius_contracts.aaa.accounting import AccountingHandler
    from radius_contracts.aaa.accounting_writer import AccountingWriter
    from radius_contracts.aaa.auth_log import AuthLogWriter
    from radius_contracts.aaa.claims import LoginClaims
    from radius_contracts.aaa.handler import AccessHandler
    from radius_contracts.aaa.live import LiveSessions
    from radius_contracts.aaa.pools import Leaser
    from radius_contracts.aaa.sessions import SessionView
    from radius_contracts.api.refusals import Refusals
    from radius_contracts.radius.radsec import RadsecServer
    from radius_contracts.workers.pool import WorkerPool


PREFIX = "radius_contracts_"

# RFC 2865 §3, RFC 2866 §3, RFC 5997 §2, RFC 5176 §2.3 names; other codes show as numbers.
_CODE_NAMES: dict[int, str] = {
    Code.ACCESS_REQUEST: "Access-Request",
    Code.ACCESS_ACCEPT: "Access-Accept",
    Code.ACCESS_REJECT: "Access-Reject",
    Code.ACCOUNTING_REQUEST: "Accounting-Request",
    Code.ACCOUNTING_RESPONSE: "Accounting-Response",
    Code.ACCESS_CHALLENGE: "Access-Challenge",
    Code.STATUS_SERVER: "Status-Server",
    Code.STATUS_CLIENT: "Status-Client",
    Code.DISCONNECT_REQUEST: "Disconnect-Request",
    Code.DISCONNECT_ACK: "Disconnect-ACK",
    Code.DISCONNECT_NAK: "Disconnect-NAK",
    Code.COA_REQUEST: "CoA-Request",
    Code.COA_ACK: "CoA-ACK",
    Code.COA_NAK: "CoA-NAK",
}


def code_name(code: int) -> str:
    return _CODE_NAMES.get(code, str(code))


def _le(bound: float) -> str:
    """A bucket bound as the text format writes it."""
    return "+Inf" if bound == float("inf") else repr(bound)


class Observed(Protocol):
    """What the collector reads off the running daemon (None: that part is not running)."""

    @property
    def port_stats(self) -> Mapping[Port, Stats]: ...
    @property
    def index(self) -> AuthIndex | None: ...
    @property
    def handler(self) -> AccessHandler | None: ...
    @property
    def auth_log(self) -> AuthLogWriter | None: ...
    @property
    def accounting(self) -> AccountingWriter | None: ...
    @property
    def accounting_handler(self) -> AccountingHandler | None: ...
    @property
    def sessions(self) -> SessionView | None: ...
    @property
    def claims(self) -> LoginClaims | None: ...
    @property
    def leaser(self) -> Leaser | None: ...
    @property
    def live(self) -> LiveSessions | None: ...
    @property
    def worker_pool(self) -> WorkerPool | None: ...
    @property
    def radsec(self) -> RadsecServer | None: ...
    @property
    def reloads(self) -> Mapping[str, int]: ...
    @property
    def api_refusals(self) -> Refusals: ...
    @property
    def loop_lag(self) -> LoopLag: ...


class DaemonCollector(Collector):
    """Reads a daemon's counters at scrape time; parts not started yet are left out."""

    def __init__(self, daemon: Observed, pool_use: PoolUse | None = None) -> None:
        self._daemon = daemon
        self.pool_use = pool_use

    def collect(self) -> Iterator[Metric]:
        yield from self._radius()
        yield from self._rejects()
        yield from self._index()
        yield from self._auth_log()
        yield from self._accounting()
        yield from self._pools()
        yield from self._coa()
        yield from self._reloads()
        yield from self._api()
        yield from self._radsec()
        yield from self._loop()

    # -- RADIUS listeners ---------------------------------------------------------------------

    def _workers(self) -> WorkerPool | None:
        return self._daemon.worker_pool

    def _radius(self) -> Iterator[Metric]:
        ports: dict[Port, Stats] = dict(self._daemon.port_stats)
        pool = self._workers()
        if pool is not None:
            # The worker processes answer the authentication port: their counters, summed.
            ports["auth"] = pool.auth_stats()
        requests = CounterMetricFamily(
            PREFIX + "radius_requests",
            "RADIUS requests from active NAS that decoded, by port, code and result (accept, "
            "reject, response, duplicate: answered from the reply cache, dropped: unanswered, "
            "see radius_drops_total; not_recorded: accounting the database did not store).",
            labels=["port", "code", "result"],
        )
        drops = CounterMetricFamily(
            PREFIX + "radius_drops",
            "RADIUS datagrams dropped unanswered, by port and reason (unknown_nas, malformed, "
            "bad_authenticator, bad_message_authenticator, missing_message_authenticator, "
            "unexpected_code, over_capacity, handler_failed, internal_error, reply_too_large).",
            labels=["port", "reason"],
        )
        malformed = CounterMetricFamily(
            PREFIX + "radius_malformed",
            "Malformed RADIUS datagrams (each also a radius_drops_total malformed), by port "
            "and what was wrong.",
            labels=["port", "reason"],
        )
        packets = CounterMetricFamily(
            PREFIX + "radius_packets",
            "RADIUS datagrams by port and raw outcome counter (received, accepts, rejects, "
            "duplicates, status_server, accounting_responses, accounting_not_recorded, "
            "send_errors, drop_<reason>, malformed_<reason>).",
            labels=["port", "outcome"],
        )
        for port, stats in ports.items():
            for (code, result), count in sorted(stats.requests.items()):
                requests.add_metric([port, code_name(code), result], count)
            for outcome, count in sorted(stats.counts.items()):
                packets.add_metric([port, outcome], count)
                if outcome.startswith("drop_"):
                    drops.add_metric([port, outcome.removeprefix("drop_")], count)
                elif outcome.startswith("malformed_"):
                    malformed.add_metric([port, outcome.removeprefix("malformed_")], count)
        yield from (requests, drops, malformed, packets)
        yield from self._latency(ports)

    @staticmethod
    def _latency(ports: Mapping[Port, Stats]) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            PREFIX + "radius_request_duration_seconds",
            "Seconds from an Access- or Accounting-Request's arrival to its reply, by port. "
            "Accounting includes the wait for the group commit; a delayed Access-Reject counts "
            "until its reply is scheduled, not the reject delay.",
            labels=["port"],
        )
        for port, stats in ports.items():
            latency = stats.latency
            buckets = [(_le(bound), count) for bound, count in latency.cumulative()]
            family.add_metric([port], buckets, latency.sum)
        yield family

    def _loop(self) -> Iterator[Metric]:
        lag = self._daemon.loop_lag
        yield _histogram(
            PREFIX + "event_loop_lag_seconds",
            f"How much later than due the event loop woke a probe sleeping {lag.interval:g} s "
            "(every RADIUS request and API call on it waited as long).",
            lag.histogram,
        )

    def _rejects(self) -> Iterator[Metric]:
        handler = self._daemon.handler
        if handler is None:
            return
        family = CounterMetricFamily(
            PREFIX + "access_rejects",
            "Access-Rejects decided, by reason (the auth log has the full phrase).",
            labels=["reason"],
        )
        rejects = Counter(handler.rejects)
        tracked = len(handler.challenges)
        pool = self._workers()
        if pool is not None:
            rejects.update(pool.total("rejects"))
            tracked += pool.count("challenges")
        for reason, count in sorted(rejects.items()):
            family.add_metric([reason], count)
        yield family
        yield GaugeMetricFamily(
            PREFIX + "chap_challenges_tracked",
            "CHAP challenges remembered to refuse their reuse (radius.chap_challenge_window; "
            "at most 200,000 per process).",
            value=tracked,
        )

    # -- authorization index ------------------------------------------------------------------

    def _index(self) -> Iterator[Metric]:
        index = self._daemon.index
        if index is None:
            return
        now = time.monotonic()
        yield GaugeMetricFamily(
            PREFIX + "index_contracts", "Contracts in the authorization index.", value=len(index)
        )
        nas = len(index.all_nas())
        yield GaugeMetricFamily(
            PREFIX + "index_nas", "Active NAS in the authorization index.", value=nas
        )
        yield GaugeMetricFamily(
            PREFIX + "index_load_age_seconds",
            "Seconds since the authorization index was last loaded whole from the database.",
            value=now - index.loaded_at,
        )
        yield GaugeMetricFamily(
            PREFIX + "index_change_age_seconds",
            "Seconds since the authorization index last applied a committed change (or a "
            "whole load).",
            value=now - index.changed_at,
        )
        over = index.quota_over()
        states = GaugeMetricFamily(
            PREFIX + "quota_contracts",
            "Contracts whose plan has a data quota, by quota state this period (normal, over).",
            labels=["state"],
        )
        states.add_metric(["normal"], max(index.quota_contracts() - over, 0))
        states.add_metric(["over"], over)
        yield states

    # -- writers ------------------------------------------------------------------------------

    def _auth_log(self) -> Iterator[Metric]:
        writer = self._daemon.auth_log
        if writer is None:
            return
        events = CounterMetricFamily(
            PREFIX + "auth_log_events",
            "Auth log events by fate (written; dropped: the queue was full).",
            labels=["fate"],
        )
        events.add_metric(["written"], writer.written)
        events.add_metric(["dropped"], writer.dropped)
        yield events
        yield GaugeMetricFamily(
            PREFIX + "auth_log_pending",
            "Auth log events waiting to be written.",
            value=writer.pending,
        )

    def _accounting(self) -> Iterator[Metric]:
        writer = self._daemon.accounting
        if writer is None:
            return
        records = CounterMetricFamily(
            PREFIX + "accounting_records",
            "Accounting-Requests by fate (recorded: committed and answered; spooled: answered "
            "once in the local spool while the database was away; failed: neither the "
            "database nor the spool took it, unanswered; dropped: the queue was full; "
            "ignored: status types that describe no session).",
            labels=["fate"],
        )
        records.add_metric(["recorded"], writer.records)
        records.add_metric(["spooled"], writer.spooled)
        records.add_metric(["failed"], writer.failed)
        records.add_metric(["dropped"], writer.dropped)
        handler = self._daemon.accounting_handler
        if handler is not None:
            records.add_metric(["ignored"], handler.ignored)
        yield records
        yield GaugeMetricFamily(
            PREFIX + "accounting_pending",
            "Accounting-Requests waiting for a commit.",
            value=writer.pending,
        )
        yield GaugeMetricFamily(
            PREFIX + "accounting_spooling",
            "1 while accounting goes to the local spool (the database is away, or the spool "
            "is still being replayed), else 0.",
            value=int(writer.spooling),
        )
        yield GaugeMetricFamily(
            PREFIX + "accounting_spool_records",
            "Answered accounting records in the spool, not yet in the database.",
            value=writer.spool_pending,
        )
        spool = CounterMetricFamily(
            PREFIX + "accounting_spool_replay",
            "Spooled records since written to the database (written), or refused by it on "
            "their data and left out (discarded; the log says why).",
            labels=["result"],
        )
        spool.add_metric(["written"], writer.replayed)
        spool.add_metric(["discarded"], writer.discarded)
        yield spool
        cumulative, buckets = 0, []
        for bound, count in zip(BATCH_BUCKETS, writer.batch_buckets, strict=True):
            cumulative += count
            buckets.append((str(bound), cumulative))
        buckets.append(("+Inf", writer.batches))
        yield HistogramMetricFamily(
            PREFIX + "accounting_batch_size",
            "Accounting-Requests per commit (group commit).",
            buckets=buckets,
            sum_value=writer.batch_sum,
        )
        yield CounterMetricFamily(
            PREFIX + "accounting_commit_seconds",
            "Time spent in accounting commits.",
            value=writer.commit_seconds,
        )
        yield _histogram(
            PREFIX + "accounting_commit_duration_seconds",
            "Seconds per accounting commit, from handing the batch to the database until it is "
            "durable (on SQLite including a wait behind an auth log batch on the write thread).",
            writer.commit_durations,
        )
        sessions = self._daemon.sessions
        pool = self._workers()
        if sessions is not None:
            yield CounterMetricFamily(
                PREFIX + "simultaneous_use_refused",
                "Logins refused for their contract's simultaneous-use limit.",
                value=sessions.refused + (pool.count("refused") if pool is not None else 0),
            )
        claims = self._daemon.claims
        if claims is not None or pool is not None:
            decisions = Counter(claims.decided if claims is not None else {})
            if pool is not None:
                decisions.update(pool.total("decided"))
            decided = CounterMetricFamily(
                PREFIX + "simultaneous_use_decisions",
                "Logins of contracts with a limit decided across nodes and processes, by how: "
                "database (one locked transaction per batch), local (the database was "
                "unreachable: this process's view), refused (unreachable, offline = refuse), "
                "main (a worker process's login, decided by the main process's view).",
                labels=["by"],
            )
            for how in ("database", "local", "refused", "main"):
                decided.add_metric([how], decisions[how])
            yield decided

    # -- pools --------------------------------------------------------------------------------

    def _pools(self) -> Iterator[Metric]:
        leaser = self._daemon.leaser
        if leaser is not None:
            exhausted = CounterMetricFamily(
                PREFIX + "pool_exhausted",
                "Access-Requests rejected because their managed pool had no free address, by pool.",
                labels=["pool"],
            )
            for pool, count in sorted(leaser.exhausted.items()):
                exhausted.add_metric([pool], count)
            yield exhausted
        use = self.pool_use
        age = use.age() if use is not None else None
        if use is None or age is None:
            return
        size = GaugeMetricFamily(
            PREFIX + "pool_size",
            "Addresses (ipv4) or prefixes (ipv6, ipv6-pd) a managed pool can lease.",
            labels=["pool", "family"],
        )
        leased = GaugeMetricFamily(
            PREFIX + "pool_leased",
            "Leases a managed pool holds now (offered or bound, not expired).",
            labels=["pool", "family"],
        )
        for row in use.rows:
            size.add_metric([row.name, row.family], row.size)
            leased.add_metric([row.name, row.family], row.leased)
        yield size
        yield leased
        yield GaugeMetricFamily(
            PREFIX + "pool_use_age_seconds",
            f"Seconds since pool_size and pool_leased were read from the database (read "
            f"again by a scrape once older than {POOL_USE_MAX_AGE:g} s).",
            value=age,
        )

    # -- CoA and reloads ----------------------------------------------------------------------

    def _coa(self) -> Iterator[Metric]:
        live = self._daemon.live
        if live is None:
            return
        dispatcher = live.dispatcher
        requests = CounterMetricFamily(
            PREFIX + "coa_requests",
            "CoA and Disconnect-Requests by kind and outcome (ack, nak, timeout, error: not sent).",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), count in sorted(dispatcher.outcomes.items()):
            requests.add_metric([kind, outcome], count)
        yield requests
        causes = CounterMetricFamily(
            PREFIX + "coa_requests_by_cause",
            "CoA and Disconnect-Requests by what asked for them (contract, layout, plan, window: "
            "a plan's time window boundary, quota: a data quota used up, restored or topped "
            "up), kind and outcome.",
            labels=["cause", "kind", "outcome"],
        )
        for (cause, kind, outcome), count in sorted(dispatcher.by_cause.items()):
            causes.add_metric([cause, kind, outcome], count)
        yield causes
        yield GaugeMetricFamily(
            PREFIX + "coa_pending",
            "Sessions with a CoA or Disconnect-Request in flight or waiting.",
            value=dispatcher.pending,
        )

    def _reloads(self) -> Iterator[Metric]:
        # Reload outcomes by result (SIGHUP reload).
        reloads = self._daemon.reloads
        family = CounterMetricFamily(
            PREFIX + "reloads", "Configuration reloads (SIGHUP) by result.", labels=["result"]
        )
        for result, count in sorted(reloads.items()):
            family.add_metric([str(result)], count)
        yield family

    def _api(self) -> Iterator[Metric]:
        refusals = self._daemon.api_refusals
        family = CounterMetricFamily(
            PREFIX + "api_refusals",
            "Management API requests and connections refused before they cost anything, by "
            "reason (unauthenticated, body_too_large, body_timeout, busy, "
            "too_many_connections, header_timeout, headers_too_large).",
            labels=["reason"],
        )
        for reason, count in sorted(refusals.counts.items()):
            family.add_metric([reason], count)
        yield family

    def _radsec(self) -> Iterator[Metric]:
        # RadSec connections (RFC 6614); its packets are in the radius_* families, port radsec.
        server = self._daemon.radsec
        if server is None:
            return
        family = CounterMetricFamily(
            PREFIX + "radsec_connections",
            "RadSec connections by outcome: accepted; refused_<reason> (unknown_nas, "
            "max_connections, certificate_untrusted, certificate_expired, no_certificate, "
            "not_tls, handshake_timeout, pin_mismatch, tls_error, connection_lost); "
            "closed_<reason> (malformed, unexpected_code, idle, shutdown); tls_reload_failed; "
            "unmatched_responses.",
            labels=["outcome"],
        )
        for outcome, count in sorted(server.counts.items()):
            family.add_metric([outcome], count)
        yield family
        yield GaugeMetricFamily(
            PREFIX + "radsec_open_connections",
            "RadSec connections established now.",
            value=server.open_connections,
        )


def _histogram(name: str, documentation: str, histogram: Histogram) -> Metric:
    buckets = [(_le(bound), count) for bound, count in histogram.cumulative()]
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=histogram.sum)


class DaemonMetrics:
    """A daemon's registry and what ``/metrics`` serves from it."""

    def __init__(self, daemon: Observed) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = DaemonCollector(daemon)
        self.registry.register(self.collector)

    def watch_pools(self, pool_use: PoolUse) -> None:
        self.collector.pool_use = pool_use

    async def exposition(self) -> bytes:
        """The text exposition, with pool use read first if its snapshot is stale."""
        if self.collector.pool_use is not None:
            await self.collector.pool_use.refresh()
        return generate_latest(self.registry)
