"""Commands that run the daemon or work on its database directly: serve, migrate, check-config,
token create|list|revoke.

The daemon's modules are imported inside the commands: the operator commands that only talk
to a running daemon's API (sessions, auth-log, …) start in a tenth of the time without them.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from radius_contracts.domain import TokenRole
from radius_contracts.settings import Settings, load_settings

if TYPE_CHECKING:
    from radius_contracts.services.registry import Services

# The object add_subparsers() returns (a class argparse does not subscript at run time).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(commands: Commands, config: argparse.ArgumentParser) -> None:
    serve = commands.add_parser("serve", parents=[config], help="run the daemon")
    serve.set_defaults(run=_serve, logs=True)
    migrate = commands.add_parser(
        "migrate", parents=[config], help="create or upgrade the database schema"
    )
    migrate.set_defaults(run=_migrate, logs=True)
    check = commands.add_parser(
        "check-config", parents=[config], help="validate config and dictionaries, then exit"
    )
    check.set_defaults(run=_check_config, logs=True)
    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser(
        "create", parents=[config], help="create a token; prints it alone on the last line"
    )
    create.add_argument("name")
    create.add_argument("--role", choices=[r.value for r in TokenRole], default="admin")
    token_commands.add_parser("list", parents=[config], help="list tokens (never the secrets)")
    revoke = token_commands.add_parser("revoke", parents=[config], help="revoke a token")
    revoke.add_argument("name")
    token.set_defaults(run=_token, logs=True)


async def with_services(
    settings: Settings, work: Callable[[Services], Awaitable[int]], *, migrate: bool = True
) -> int:
    """Open the database as the daemon does (migrating it first unless told not to), run
    ``work`` and close it again."""
    from radius_contracts.change_feed import ChangeFeed
    from radius_contracts.db.engine import is_sqlite
    from radius_contracts.jobs import node_name
    from radius_contracts.startup import engine_of, open_services

    services = await open_services(settings, run_migrations=migrate)
    feed = None
    try:
        if not is_sqlite(settings.database_url):
            # Daemons on this database learn of what the command commits (e.g. an import)
            # through the change feed, as they learn of each other's API changes.
            feed = ChangeFeed(settings.database_url, f"cli:{node_name('')}", _ignore, _nothing)
            await feed.start()
            services.context.listeners.append(feed.publish)
        return await work(services)
    finally:
        if feed is not None:
            await feed.close()
        await engine_of(services).dispose()


async def _ignore(_entity: str, _ids: Sequence[int]) -> None:
    """A command applies no other node's changes: it has no index."""


async def _nothing() -> None:
    pass


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from radius_contracts.daemon import serve

    # SIGHUP reads the same file (or $RADIUS_CONTRACTS_CONFIG) and environment again.
    reread = functools.partial(load_settings, args.config)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(settings, reread))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (DESIGN §1): its datagram transport costs a fraction of
    asyncio's per packet. RADIUS_CONTRACTS_LOOP=asyncio forces the standard loop."""
    if os.environ.get("RADIUS_CONTRACTS_LOOP") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def done(_services: Services) -> int:
        print("database schema is up to date")
        return 0

    return asyncio.run(with_services(settings, done))


def _check_config(args: argparse.Namespace, settings: Settings) -> int:
    from radius_contracts.startup import database_file, load_catalog
    from radius_contracts.state_files import loose_modes

    catalog = load_catalog(settings)
    if settings.radsec.enabled:
        from radius_contracts.errors import ConfigError
        from radius_contracts.radius.radsec_tls import TlsFilesError
        from radius_contracts.radsec_setup import load_tls

        try:
            load_tls(settings.radsec)
        except TlsFilesError as exc:
            raise ConfigError(f"radsec: {exc}", field="radsec") from None
    print(f"config ok; {len(catalog)} attributes from {settings.radius.dictionary}")
    print(f"database: {settings.database_url.split('://', 1)[0]}, state in {settings.state_dir}")
    # The daemon makes them private when it starts; until then, say what others can read.
    for problem in loose_modes(settings.state_dir, database_file(settings)):
        print(f"warning: {problem}; `serve` makes it private (0700/0600)", file=sys.stderr)
    if settings.radsec.enabled:
        print(f"radsec: TLS files ok, port {settings.radsec.port}")
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from radius_contracts.services.base import Actor

    actor = Actor(name="cli", via="cli")

    async def create(services: Services) -> int:
        row, token = await services.tokens.create(actor, args.name, TokenRole(args.role))
        print(f"created {row.role} token {row.name!r}; it is shown only once:")
        print(token)
        return 0

    async def list_tokens(services: Services) -> int:
        for row in await services.tokens.list():
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            print(f"{row.name}\t{row.role}\t{row.prefix}…\t{state}")
        return 0

    async def revoke(services: Services) -> int:
        row = await services.tokens.revoke(actor, args.name)
        print(f"revoked token {row.name!r}")
        return 0

    commands = {"create": create, "list": list_tokens, "revoke": revoke}
    return asyncio.run(with_services(settings, commands[args.token_command]))
