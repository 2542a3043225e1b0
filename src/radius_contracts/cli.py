"""Command line: serve, migrate, check-config, token create|list|revoke, import-freeradius."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from radius_contracts import __version__
from radius_contracts import logging as daemon_logging
from radius_contracts.daemon import engine_of, load_catalog, open_services, serve
from radius_contracts.domain import TokenRole
from radius_contracts.errors import RadiusContractsError
from radius_contracts.services import import_freeradius as fr
from radius_contracts.services.base import REDACTED, SECRET_KEYS, Actor
from radius_contracts.services.registry import Services
from radius_contracts.settings import Settings, load_settings

CLI_ACTOR = Actor(name="cli", via="cli")
IMPORT_ACTOR = Actor(name="import-freeradius", via="cli")


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
    return parser


async def _with_services(
    settings: Settings, work: Callable[[Services], Awaitable[int]], *, migrate: bool = True
) -> int:
    services = await open_services(settings, run_migrations=migrate)
    try:
        return await work(services)
    finally:
        await engine_of(services).dispose()


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
        settings = load_settings(getattr(args, "config", None))
        daemon_logging.configure(settings.logging)
        if args.command == "serve":
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(serve(settings))
            return 0
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
