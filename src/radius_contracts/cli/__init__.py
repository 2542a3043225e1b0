"""The ``radius-contracts`` command line.

Two kinds of commands. ``serve``, ``migrate``, ``check-config``, ``token``,
``import-freeradius`` and ``test-auth`` run the daemon or work on its config and database
(admin, tools). ``sessions``, ``auth-log``, ``contract show``, ``disconnect`` and ``audit`` talk
to a running daemon's API like any other client (sessions, auth_log, contracts, audit, through
client.DaemonApi), so they work from wherever the API is reachable and see what the daemon sees.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from radius_contracts import __version__
from radius_contracts.cli import admin, audit, auth_log, client, contracts, sessions, tools
from radius_contracts.errors import RadiusContractsError
from radius_contracts.settings import load_settings

__all__ = ["main"]

_EPILOG = f"""\
exit status of sessions, auth-log, contract show, disconnect and audit:
  0  done
  {client.EXIT_API}  the daemon answered with an error (e.g. no such contract)
  {client.EXIT_USAGE}  bad arguments or config
  {client.EXIT_UNREACHABLE}  the daemon cannot be reached
  {client.EXIT_REFUSED}  no token, or the daemon refused it
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radius-contracts",
        description="RADIUS AAA daemon for ISP contracts.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "--config",
        type=Path,
        help="TOML config file (default: $RADIUS_CONTRACTS_CONFIG, else built-in defaults)",
    )
    remote = argparse.ArgumentParser(add_help=False, parents=[config])
    client.add_arguments(remote)
    commands = parser.add_subparsers(dest="command", required=True)
    admin.register(commands, config)
    tools.register(commands, config)
    for group in (sessions, auth_log, contracts, audit):
        group.register(commands, remote)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(getattr(args, "config", None))
        if getattr(args, "logs", False):
            # Only the commands that do the daemon's work log; the others print.
            from radius_contracts import logging as daemon_logging

            daemon_logging.configure(settings.logging)
        status: int = args.run(args, settings)
        return status
    except RadiusContractsError as exc:
        print(f"radius-contracts: error: {exc.detail}", file=sys.stderr)
        return client.EXIT_USAGE
    except client.CliError as exc:
        print(f"radius-contracts: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
