"""SIGHUP: what a reload may change, and the reload itself.

A reload re-reads the config file and validates it whole; then only the keys in
:data:`RUNTIME_KEYS` take their new values. Every other key that changed (sockets, the
database, the API, state_dir, sizes of queues and pools built at start) keeps its old value,
and the daemon names it in a warning, so the running process and its settings never disagree.

:class:`Reloader` does it: everything new (settings, dictionaries, NAS, layouts and pools from
the database, RadSec's TLS files) is built aside first, and only when all of it could be read
is it swapped in, in one synchronous step, so no packet is handled half way through a reload
and a bad file leaves the running set serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from radius_contracts import logging as daemon_logging
from radius_contracts import sdnotify
from radius_contracts.errors import RadiusContractsError
from radius_contracts.index import AuthIndex, Catalogue
from radius_contracts.radius.dictionary import AttributeCatalog
from radius_contracts.radius.radsec_tls import TlsFilesError
from radius_contracts.radsec_setup import load_tls, radsec_options
from radius_contracts.services.auth_log import part_rows
from radius_contracts.settings import Settings
from radius_contracts.startup import load_catalog

if TYPE_CHECKING:
    from radius_contracts.aaa.auth_log import AuthLogWriter
    from radius_contracts.aaa.handler import AccessHandler
    from radius_contracts.radius.coa import CoaSender
    from radius_contracts.radius.dedup import ReplyCache
    from radius_contracts.radius.protocol import RadiusProtocol
    from radius_contracts.radius.radsec import RadsecServer
    from radius_contracts.services.registry import Services
    from radius_contracts.workers.pool import WorkerPool

# The daemon's logger: operators find "reloaded: ..." and "reload failed ..." under it.
log = logging.getLogger("radius_contracts.daemon")

DATABASE_TIMEOUT = 10.0
"""Seconds a reload waits for the database to read NAS, layouts and pools; then it fails."""
_ATTEMPTS = 3  # reads of the catalogue while API changes keep replacing it

RUNTIME_KEYS = frozenset(
    {
        "logging.level",
        "logging.format",
        "radius.dictionary",
        "radius.extra_dictionary_dirs",
        "radius.reject_delay",
        "radius.reply_message",
        "radius.duplicate_window",
        "radius.max_delayed_rejects",
        "radius.chap_challenge_window",
        "accounting.interim_interval",
        "auth_log.retention_days",
        "auth_log.max_rows",
        "auth_log.flush_interval",
        "auth_log.max_pending",
        "auth_log.unknown_rows_per_minute",
        "coa.timeout",
        "coa.tries",
        "coa.backoff",
        # RadSec: new TLS files for new handshakes (established connections keep theirs), and
        # the limits; enabled, bind and port need a restart.
        "radsec.certificate",
        "radsec.private_key",
        "radsec.ca_file",
        "radsec.handshake_timeout",
        "radsec.idle_timeout",
        "radsec.max_connections",
        "radsec.max_in_flight",
        "radsec.radius_1_1",
    }
)
"""Dotted keys a reload applies; their consumers read them on every use or take new values."""


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """Dotted keys whose value differs between ``old`` and ``new``, sorted."""
    before, after = _flatten(old.model_dump()), _flatten(new.model_dump())
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def merge(old: Settings, new: Settings) -> Settings:
    """``old`` with the keys of :data:`RUNTIME_KEYS` taken from ``new``."""
    updates: dict[str, dict[str, Any]] = {}
    for key in RUNTIME_KEYS:
        section, _, name = key.partition(".")
        updates.setdefault(section, {})[name] = getattr(getattr(new, section), name)
    # Both are validated already: copying whole sections keeps each one valid.
    return old.model_copy(
        update={
            section: getattr(old, section).model_copy(update=values)
            for section, values in updates.items()
        }
    )


class Reloadable(Protocol):
    """What a reload reads and swaps in: the running daemon's parts (None: not running)."""

    settings: Settings

    @property
    def services(self) -> Services | None: ...
    @property
    def index(self) -> AuthIndex | None: ...
    @property
    def handler(self) -> AccessHandler | None: ...
    @property
    def protocols(self) -> Sequence[RadiusProtocol]: ...
    @property
    def radsec(self) -> RadsecServer | None: ...
    @property
    def reply_caches(self) -> Sequence[ReplyCache]: ...
    @property
    def coa_sender(self) -> CoaSender | None: ...
    @property
    def auth_log(self) -> AuthLogWriter | None: ...
    @property
    def worker_pool(self) -> WorkerPool | None: ...


class Reloader:
    """Runs the daemon's reloads, one at a time; a SIGHUP during a reload queues exactly one
    more, which then sees every file as it is by then."""

    def __init__(
        self,
        daemon: Reloadable,
        reread: Callable[[], Settings],
        spawn: Callable[[Coroutine[Any, Any, None], str], object],
    ) -> None:
        """``reread`` builds the settings afresh (the CLI re-reads its config file and the
        environment); ``spawn`` runs a background task the daemon waits for at stop."""
        self._daemon = daemon
        self._reread = reread
        self._spawn = spawn
        self._running: asyncio.Task[None] | None = None
        self._again = False
        # For /metrics: reloads applied, and reloads that kept the old set.
        self.ok = 0
        self.failed = 0

    def request(self) -> None:
        """SIGHUP: re-read config and dictionaries, rebuild NAS, layouts and pools, swap them in."""
        self._again = True
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(
                self._while_asked(), name="reload"
            )

    async def cancel(self) -> None:
        """Stop a reload in progress (at shutdown); it still sends its READY=1."""
        self._again = False
        if self._running is not None and not self._running.done():
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running

    async def _while_asked(self) -> None:
        while self._again:
            self._again = False
            # Type=notify-reload (systemd ≥ 253) wants the monotonic time with RELOADING=1.
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            sdnotify.notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")
            try:
                await self._once()
            except Exception:
                # A bug, not a bad file: say so loudly, and keep serving with what is installed.
                self.failed += 1
                log.exception("reload failed unexpectedly")
            finally:
                # Sent after a failed reload too: the old set is still serving.
                sdnotify.notify("READY=1")

    async def _once(self) -> None:
        index = self._daemon.index
        assert index is not None
        try:
            for _attempt in range(_ATTEMPTS):
                staged = await self._stage()
                # A change committed through the API while we read has installed a catalogue
                # of its own, maybe newer than ours: read again rather than put ours over it.
                if staged.catalogue_version == index.catalogue_version:
                    break
        except _ReloadFailed as exc:
            self.failed += 1
            log.error("reload failed, keeping the running configuration: %s", exc)
            return
        changed = self._apply(staged)
        self.ok += 1
        catalogue = staged.catalogue
        log.info(
            "reloaded: %d dictionary attributes, %d NAS, %d layouts, %d pools; settings "
            "changed: %s",
            len(staged.catalog),
            len(catalogue.nas),
            len(catalogue.layouts),
            len(catalogue.pools),
            ", ".join(changed) or "none",
        )
        pool = self._daemon.worker_pool
        if pool is not None:
            # The workers read their files and the catalogue again, each swapping in at once.
            for problem in await pool.reload(self._daemon.settings):
                log.error("reload: %s", problem)
        # New dictionary attributes join the catalogue table, for layouts saved from now on.
        await self._sync_attributes(staged.catalog)

    async def _stage(self) -> _Staged:
        """Everything a reload swaps in, built aside; raises _ReloadFailed saying what is wrong."""
        daemon = self._daemon
        assert daemon.index is not None
        version = daemon.index.catalogue_version
        try:
            settings = self._reread()
        except RadiusContractsError as exc:
            raise _ReloadFailed(exc.detail) from None
        except OSError as exc:
            raise _ReloadFailed(f"config file {exc.filename}: {exc.strerror}") from None
        try:
            # Off the event loop: a large dictionary set takes a while to parse.
            catalog = await asyncio.to_thread(load_catalog, merge(daemon.settings, settings))
        except RadiusContractsError as exc:
            raise _ReloadFailed(exc.detail) from None
        except OSError as exc:
            raise _ReloadFailed(f"dictionary {exc.filename}: {exc.strerror}") from None
        try:
            catalogue = await asyncio.wait_for(daemon.index.read_catalogue(), DATABASE_TIMEOUT)
        except TimeoutError:
            raise _ReloadFailed(
                f"database: no answer within {DATABASE_TIMEOUT:g}s reading NAS, layouts and pools"
            ) from None
        except Exception as exc:
            raise _ReloadFailed(f"database: {first_line(exc)}") from None
        tls: ssl.SSLContext | None = None
        tls_error: str | None = None
        if daemon.radsec is not None:
            # Read every time: a renewed certificate often keeps its file name.
            try:
                tls = await asyncio.to_thread(load_tls, settings.radsec)
            except TlsFilesError as exc:
                daemon.radsec.add("tls_reload_failed")
                tls_error = str(exc)
        return _Staged(settings, catalog, catalogue, version, tls, tls_error)

    def _apply(self, staged: _Staged) -> list[str]:
        """Swap the staged set in. Synchronous: no packet is handled half way through it."""
        daemon = self._daemon
        services, index = daemon.services, daemon.index
        assert services is not None and index is not None
        old, new = daemon.settings, staged.settings
        changed = changed_keys(old, new)
        settings = daemon.settings = merge(old, new)
        services.context.catalog = staged.catalog
        # Else API changes kept replacing the catalogue while we read: theirs is as new as ours.
        if staged.catalogue_version == index.catalogue_version:
            plans = index.install_catalogue(staged.catalogue)
            if plans:
                # Plans edited behind the daemon's back: their contracts follow, a slice at
                # a time (no CoA: nothing was committed through this node).
                self._spawn(_recompute(index, plans), "recompute-plans")
        radius = settings.radius
        if daemon.handler is not None:
            daemon.handler.configure(
                interim_interval=settings.accounting.interim_interval,
                reply_message=radius.reply_message,
                chap_challenge_window=radius.chap_challenge_window,
            )
        for protocol in daemon.protocols:
            protocol.options = dataclasses.replace(
                protocol.options,
                reject_delay=radius.reject_delay,
                duplicate_window=radius.duplicate_window,
                max_delayed_rejects=radius.max_delayed_rejects,
            )
        if daemon.radsec is not None:
            radsec = daemon.radsec
            radsec.dispatch.options = dataclasses.replace(
                radsec.dispatch.options,
                reject_delay=radius.reject_delay,
                duplicate_window=radius.duplicate_window,
                max_delayed_rejects=radius.max_delayed_rejects,
            )
            if staged.tls_error is not None:
                # Certificates that cannot be used: keep the running ones (and their paths).
                log.error("reload: RadSec keeps its running certificates: %s", staged.tls_error)
                settings = daemon.settings = settings.model_copy(update={"radsec": old.radsec})
                changed = [key for key in changed if not key.startswith("radsec.")]
            elif staged.tls is not None:
                radsec.reload(staged.tls, radsec_options(settings.radsec))
        for replies in daemon.reply_caches:
            replies.window = radius.duplicate_window  # from its next rotation on
        if daemon.coa_sender is not None:
            coa = settings.coa
            daemon.coa_sender.configure(timeout=coa.timeout, tries=coa.tries, backoff=coa.backoff)
        if daemon.auth_log is not None:
            auth_log = settings.auth_log
            daemon.auth_log.retention_days = auth_log.retention_days
            daemon.auth_log.max_rows = auth_log.max_rows
            daemon.auth_log.flush_interval = auth_log.flush_interval
            daemon.auth_log.max_pending = auth_log.max_pending
            services.auth_log.bound.per_minute = auth_log.unknown_rows_per_minute
            services.auth_log.part_rows = part_rows(auth_log.max_rows)
        if settings.logging != old.logging:
            daemon_logging.configure(settings.logging)
        restart = [key for key in changed if key not in RUNTIME_KEYS]
        if restart:
            log.warning(
                "reload: %s changed but take effect only at a restart; keeping the running values",
                ", ".join(restart),
            )
        return [key for key in changed if key in RUNTIME_KEYS]

    async def _sync_attributes(self, catalog: AttributeCatalog) -> None:
        services = self._daemon.services
        assert services is not None
        try:
            added = await services.attributes.sync(catalog)
        except RadiusContractsError as exc:
            log.error("could not add new dictionary attributes to the catalogue: %s", exc.detail)
            return
        except Exception as exc:
            log.error("could not add new dictionary attributes to the catalogue: %s",
                      first_line(exc))  # fmt: skip
            return
        if added:
            log.info("added %d dictionary attributes to the catalogue", added)


async def _recompute(index: AuthIndex, plans: set[int]) -> None:
    await index.recompute_plans(plans)


class _ReloadFailed(Exception):
    """A reload that keeps the running set; the message says which file or key, and why."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Staged:
    settings: Settings
    catalog: AttributeCatalog
    catalogue: Catalogue
    catalogue_version: int  # the index's, when reading began
    tls: ssl.SSLContext | None = None  # RadSec's new TLS files, when they could be used
    tls_error: str | None = None  # else why not


def first_line(exc: BaseException) -> str:
    """What an operator needs of a database error: the driver's own first line.

    SQLAlchemy errors carry the statement after the first line; the driver's error (e.g.
    "connection refused") is the news.
    """
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0]}" if lines else type(orig).__name__
