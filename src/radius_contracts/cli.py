"""Command line: serve, migrate, check-config, token create|list|revoke, import-freeradius,
test-auth."""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from radius_contracts import __version__, testauth
from radius_contracts import logging as daemon_logging
from radius_contracts.change_feed import ChangeFeed
from radius_contracts.daemon import engine_of, load_catalog, open_services, serve
from radius_contracts.db.engine import is_sqlite
from radius_contracts.domain import TokenRole
from radius_contracts.errors import RadiusContractsError
from radius_contracts.jobs import node_name
from radius_contracts.services import import_freeradius as fr
from radius_contracts.services.base import REDACTED, SECRET_KEYS, Actor
from radius_contracts.services.registry import Services
from radius_contracts.settings import Settings, load_settings

CLI_ACTOR = Actor(name="cli", via="cli")
IMPORT_ACTOR = Actor(name="import-freeradius", via="cli")
# test-auth takes its secret from here when --secret is not given: argv is visible in ps.
TEST_SECRET_ENV = "RADIUS_CONTRACTS_TEST_SECRET"  # noqa: S105  (a variable name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radius-contracts", description="RADIUS AAA daemon for ISP contracts."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "--config",
        type=Path,
        help="TOML config file (default: $RADIUS_CONTRACTS_CONFIG, else built-in defaults)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", parents=[config], help="run the daemon")
    commands.add_parser("migrate", parents=[config], help="create or upgrade the database schema")
    commands.add_parser(
        "check-config", parents=[config], help="validate config and dictionaries, then exit"
    )
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
    importer = commands.add_parser(
        "import-freeradius",
        parents=[config],
        help="create NAS and contracts from a FreeRADIUS rlm_sql database",
    )
    importer.add_argument(
        "--url", required=True, help="SQLAlchemy URL: sqlite:///PATH or postgresql://..."
    )
    importer.add_argument(
        "--dry-run", action="store_true", help="report what would be created; change nothing"
    )
    _add_test_auth(commands, config)
    return parser


def _add_test_auth(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], config: argparse.ArgumentParser
) -> None:
    test = commands.add_parser(
        "test-auth",
        parents=[config],
        help="send an Access-Request like a NAS and print the reply (like radtest)",
        description="Exit status: 0 Access-Accept, 1 Access-Reject or -Challenge, "
        "2 no answer, a bad reply or a usage error.",
    )
    test.add_argument("user")
    test.add_argument("password")
    test.add_argument("--server", default="127.0.0.1", help="default: 127.0.0.1")
    test.add_argument(
        "--port", type=int, help="default: the config's [radius] auth_port, else 1812"
    )
    test.add_argument(
        "--secret", help=f"the NAS's shared secret (default: ${TEST_SECRET_ENV}); never printed"
    )
    test.add_argument(
        "--nas-ip", default="127.0.0.1", help="NAS-IP-Address to send (default: 127.0.0.1)"
    )
    test.add_argument(
        "--source", help="local address to send from, e.g. the NAS's address (default: any)"
    )
    method = test.add_mutually_exclusive_group()
    method.add_argument("--chap", action="store_true", help="CHAP instead of PAP")
    method.add_argument("--mschapv2", action="store_true", help="MS-CHAPv2 instead of PAP")
    test.add_argument("--calling-station-id", help="e.g. the subscriber's MAC address")
    test.add_argument("--timeout", type=float, default=3.0, help="seconds per try (default: 3)")
    test.add_argument(
        "--retries", type=int, default=2, help="retransmits of the same packet (default: 2)"
    )


async def _with_services(
    settings: Settings, work: Callable[[Services], Awaitable[int]], *, migrate: bool = True
) -> int:
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


async def _migrate(services: Services) -> int:
    print("database schema is up to date")
    return 0


def _token_command(args: argparse.Namespace) -> Callable[[Services], Awaitable[int]]:
    async def create(services: Services) -> int:
        row, token = await services.tokens.create(CLI_ACTOR, args.name, TokenRole(args.role))
        print(f"created {row.role} token {row.name!r}; it is shown only once:")
        print(token)
        return 0

    async def list_tokens(services: Services) -> int:
        for row in await services.tokens.list():
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            print(f"{row.name}\t{row.role}\t{row.prefix}…\t{state}")
        return 0

    async def revoke(services: Services) -> int:
        row = await services.tokens.revoke(CLI_ACTOR, args.name)
        print(f"revoked token {row.name!r}")
        return 0

    commands = {"create": create, "list": list_tokens, "revoke": revoke}
    return commands[args.token_command]


def _shown(config: Mapping[str, object]) -> str:
    """A contract's mapped fields for the report; secrets never reach a terminal or a log."""
    return ", ".join(
        f"{key} {REDACTED if key in SECRET_KEYS else value}" for key, value in config.items()
    )


def _import_command(args: argparse.Namespace) -> Callable[[Services], Awaitable[int]]:
    async def run(services: Services) -> int:
        plan = fr.plan_import(await fr.read_freeradius(args.url))
        result = await fr.apply_plan(services, plan, IMPORT_ACTOR, dry_run=args.dry_run)
        verb = "would create" if args.dry_run else "created"
        for name in result.created_manufacturers:
            print(f"{verb} manufacturer {name}")
        for nas in result.created_nas:
            print(
                f"{verb} NAS {nas.name}: address {nas.address}, manufacturer {nas.manufacturer},"
                f" secret {REDACTED}"
            )
        for contract in result.created_contracts:
            print(
                f"{verb} contract {contract.number} ({contract.status}): {_shown(contract.config)}"
            )
        for issue in result.issues:
            print(f"cannot map: {issue}")
        for issue in result.skipped:
            print(f"skipped: {issue}")
        print(
            f"{'dry run: ' if args.dry_run else ''}{verb} {len(result.created_nas)} NAS and"
            f" {len(result.created_contracts)} contracts; skipped {len(result.skipped)};"
            f" {len(result.issues)} attributes not mapped"
        )
        return 0

    return run


def _check_config(settings: Settings) -> int:
    catalog = load_catalog(settings)
    print(f"config ok; {len(catalog)} attributes from {settings.radius.dictionary}")
    print(f"database: {settings.database_url.split('://', 1)[0]}, state in {settings.state_dir}")
    return 0


def _test_auth(args: argparse.Namespace, settings: Settings) -> int:
    secret = args.secret if args.secret is not None else os.environ.get(TEST_SECRET_ENV)
    if not secret:
        print(
            f"radius-contracts: error: test-auth needs --secret or ${TEST_SECRET_ENV}",
            file=sys.stderr,
        )
        return testauth.EXIT_TROUBLE
    if args.timeout <= 0 or args.retries < 0:
        print("radius-contracts: error: --timeout must be > 0, --retries >= 0", file=sys.stderr)
        return testauth.EXIT_TROUBLE
    try:
        testauth.nas_address_attribute(args.nas_ip)
    except ValueError:
        print(f"radius-contracts: error: --nas-ip {args.nas_ip!r} is no address", file=sys.stderr)
        return testauth.EXIT_TROUBLE
    options = testauth.Options(
        user=args.user,
        password=args.password,
        secret=secret.encode(),
        server=args.server,
        # auth_port 0 (an ephemeral port, tests only) cannot be sent to.
        port=args.port or settings.radius.auth_port or 1812,
        method="chap" if args.chap else "mschapv2" if args.mschapv2 else "pap",
        nas_ip=args.nas_ip,
        source=args.source,
        calling_station_id=args.calling_station_id,
        timeout=args.timeout,
        retries=args.retries,
    )
    catalog = load_catalog(settings)
    try:
        return testauth.run(options, catalog, functools.partial(print, flush=True))
    except OSError as exc:
        # e.g. an unknown host name, or a --source address this host does not have
        print(f"radius-contracts: error: {exc.strerror or exc}", file=sys.stderr)
        return testauth.EXIT_TROUBLE


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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config_file = getattr(args, "config", None)
        settings = load_settings(config_file)
        daemon_logging.configure(settings.logging)
        if args.command == "serve":
            # SIGHUP reads the same file (or $RADIUS_CONTRACTS_CONFIG) and environment again.
            reread = functools.partial(load_settings, config_file)
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(serve(settings, reread))
            return 0
        if args.command == "test-auth":
            return _test_auth(args, settings)
        if args.command == "check-config":
            return _check_config(settings)
        if args.command == "migrate":
            return asyncio.run(_with_services(settings, _migrate))
        if args.command == "import-freeradius":
            # A dry run changes nothing, not even the schema.
            work = _import_command(args)
            return asyncio.run(_with_services(settings, work, migrate=not args.dry_run))
        return asyncio.run(_with_services(settings, _token_command(args)))
    except RadiusContractsError as exc:
        print(f"radius-contracts: error: {exc.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
