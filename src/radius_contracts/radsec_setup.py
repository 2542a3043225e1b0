"""Building the RadSec door (RFC 6614) from settings: TLS files, limits, the listener.

Kept out of daemon.py, which composes it: the daemon calls :func:`start_radsec` once and
:func:`load_tls` again on SIGHUP.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from radius_contracts.index import AuthIndex
from radius_contracts.radius.dedup import ReplyCache
from radius_contracts.radius.dictionary import AttributeCatalog
from radius_contracts.radius.protocol import (
    AcctHandler,
    AuthHandler,
    ListenerOptions,
    RadiusProtocol,
    Stats,
)
from radius_contracts.radius.radius11 import alpn_protocols
from radius_contracts.radius.radsec import RadsecOptions, RadsecServer
from radius_contracts.radius.radsec_tls import TlsFilesError, tls_context
from radius_contracts.settings import RadsecSettings

__all__ = ["load_tls", "radsec_options", "start_radsec"]

log = logging.getLogger("radius_contracts.radsec")


def radsec_options(settings: RadsecSettings) -> RadsecOptions:
    return RadsecOptions(
        handshake_timeout=settings.handshake_timeout,
        idle_timeout=settings.idle_timeout,
        max_connections=settings.max_connections,
        max_in_flight=settings.max_in_flight,
        radius_1_1=settings.radius_1_1,
    )


def load_tls(settings: RadsecSettings) -> ssl.SSLContext:
    """The server TLS context of ``settings``; TlsFilesError says which file is wrong."""
    if settings.certificate is None or settings.private_key is None or settings.ca_file is None:
        raise TlsFilesError("radsec needs certificate, private_key and ca_file")
    return tls_context(
        settings.certificate,
        settings.private_key,
        settings.ca_file,
        alpn=alpn_protocols(settings.radius_1_1),
        tls13_only=settings.radius_1_1 == "require",
    )


async def start_radsec(
    settings: RadsecSettings,
    index: AuthIndex,
    auth: AuthHandler | None,
    acct: AcctHandler | None,
    stats: Stats,
    options: ListenerOptions,
    replies: ReplyCache,
    catalog: Callable[[], AttributeCatalog | None],
) -> tuple[RadsecServer, int]:
    """Listen for RadSec; returns the server and its bound port. SystemExit when the TLS files
    cannot be used or the port cannot be bound: a daemon asked to serve RadSec does not start
    without it."""
    try:
        context = await asyncio.to_thread(load_tls, settings)
    except TlsFilesError as exc:
        raise SystemExit(f"RadSec: {exc}") from None
    dispatch = RadiusProtocol(
        "radsec", lambda: index.radsec_clients, auth, stats, options, replies, acct
    )
    server = RadsecServer(
        dispatch,
        lambda: index.radsec_clients,
        context,
        radsec_options(settings),
        pins=lambda: index.radsec_pins,
        catalog=catalog,
    )
    try:
        port = await server.start(settings.bind, settings.port)
    except OSError as exc:
        raise SystemExit(
            f"RadSec could not listen on {', '.join(settings.bind)} port {settings.port}: "
            f"{exc.strerror or exc}"
        ) from None
    return server, port
