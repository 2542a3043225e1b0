"""Commands for setting up and trying out: import-freeradius, test-auth."""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from radius_contracts import testauth
from radius_contracts.cli.admin import Commands, with_services
from radius_contracts.settings import Settings

if TYPE_CHECKING:
    from radius_contracts.services.registry import Services

# test-auth takes its secret from here when --secret is not given: argv is visible in ps.
TEST_SECRET_ENV = "RADIUS_CONTRACTS_TEST_SECRET"  # noqa: S105  (a variable name)


def register(commands: Commands, config: argparse.ArgumentParser) -> None:
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
    importer.set_defaults(run=_import, logs=True)
    _add_test_auth(commands, config)


def _add_test_auth(commands: Commands, config: argparse.ArgumentParser) -> None:
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
    test.set_defaults(run=_test_auth, logs=True)


def _shown(config: Mapping[str, object]) -> str:
    """A contract's mapped fields for the report; secrets never reach a terminal or a log."""
    from radius_contracts.services.base import REDACTED, SECRET_KEYS

    return ", ".join(
        f"{key} {REDACTED if key in SECRET_KEYS else value}" for key, value in config.items()
    )


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from radius_contracts.services import import_freeradius as fr
    from radius_contracts.services.base import REDACTED, Actor

    actor = Actor(name="import-freeradius", via="cli")

    async def run(services: Services) -> int:
        plan = fr.plan_import(await fr.read_freeradius(args.url))
        result = await fr.apply_plan(services, plan, actor, dry_run=args.dry_run)
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

    # A dry run changes nothing, not even the schema.
    return asyncio.run(with_services(settings, run, migrate=not args.dry_run))


def _test_auth(args: argparse.Namespace, settings: Settings) -> int:
    from radius_contracts.startup import load_catalog

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
