"""auth-log: every Access-Request outcome, "why can't this customer log in?"."""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table

from radius_contracts.cli import output
from radius_contracts.cli.admin import Commands
from radius_contracts.cli.client import EXIT_USAGE, CliError, DaemonApi
from radius_contracts.cli.lookup import Names, find_contract, find_nas
from radius_contracts.settings import Settings

# --follow asks again for this much before the newest entry it has: entries are written in
# batches (about a second after the answer), so one answered earlier may arrive later.
FOLLOW_OVERLAP = timedelta(seconds=60)
FOLLOW_PAGES = 20  # at most this many pages per poll: a flood is shown in part, not queued
_AGO = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# Column widths in --follow mode, where each batch is printed as it comes and must line up.
_WIDTHS = {"time": 19, "result": 6, "reason": 30, "method": 8, "NAS": 16, "username": 24,
           "calling station": 17, "contract": 14, "count": 5}  # fmt: skip


def register(commands: Commands, remote: argparse.ArgumentParser) -> None:
    log = commands.add_parser(
        "auth-log",
        parents=[remote],
        help="Access-Request outcomes, unknown usernames included (--rejects, --follow)",
        description="Every Access-Request the daemon answered, with why it was rejected: "
        "oldest first, newest last, like a log (--json: as the API gives them, newest first). "
        "Requests for an unknown username are counted per username and NAS (count).",
    )
    result = log.add_mutually_exclusive_group()
    result.add_argument("--rejects", action="store_true", help="only rejected requests")
    result.add_argument("--accepts", action="store_true", help="only accepted requests")
    log.add_argument("--username", help="User-Name as the NAS sent it")
    log.add_argument("--nas", help="a NAS's id, name or address")
    log.add_argument("--contract", help="a contract's number or username")
    log.add_argument(
        "--since",
        type=_moment,
        help="from this time on: 2025-01-31T08:00 (local time) or 15m, 2h, 1d ago",
    )
    log.add_argument("--until", type=_moment, help="up to this time, as --since")
    log.add_argument("--limit", type=int, default=50, help="entries at most (default 50)")
    log.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing new entries as they come (Ctrl-C stops); --json prints JSON Lines",
    )
    log.add_argument(
        "--interval", type=float, default=1.0, help="--follow asks every this many seconds"
    )
    log.set_defaults(run=_auth_log)


def _moment(text: str) -> datetime:
    """A time as an operator types it: ISO 8601 (this host's zone unless given) or `15m` ago."""
    ago = _AGO.match(text.strip())
    if ago:
        delta = timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
        return datetime.now(UTC) - delta
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is no time: give e.g. 2025-01-31T08:00, or 15m, 2h, 1d (ago)"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def _auth_log(args: argparse.Namespace, settings: Settings) -> int:
    if args.interval <= 0 or args.limit < 1:
        raise CliError("--interval must be > 0 and --limit at least 1", EXIT_USAGE)
    with DaemonApi.connect(args, settings) as api:
        names = Names(api)
        filters: dict[str, Any] = {
            "result": "reject" if args.rejects else "accept" if args.accepts else None,
            "username": args.username,
            "until": args.until.isoformat() if args.until else None,
        }
        if args.nas:
            filters["nas_id"] = find_nas(names, args.nas)
        if args.contract:
            filters["contract_id"] = find_contract(api, args.contract)["id"]
        since = args.since.isoformat() if args.since else None
        page = api.get("/auth-log", **filters, since=since, limit=args.limit)
        if not args.follow:
            if args.json:
                output.print_json(page)
                return 0
            _print(page["items"][::-1], names, fixed=False, header=True)
            note = output.footer(len(page["items"]), page["total"], "entries")
            if note:
                output.console().print(note, style="dim")
            return 0
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how --follow ends
            _follow(api, args, names, filters, page["items"])
    return 0


def _follow(
    api: DaemonApi,
    args: argparse.Namespace,
    names: Names,
    filters: dict[str, Any],
    first: list[dict[str, Any]],
) -> None:
    seen = {row["id"] for row in first}
    newest = max((datetime.fromisoformat(row["at"]) for row in first), default=datetime.now(UTC))
    _show(first[::-1], args, names, header=True)
    header = False  # printed above, with the first rows or alone
    while True:
        time.sleep(args.interval)
        since = (newest - FOLLOW_OVERLAP).isoformat()
        fresh: list[dict[str, Any]] = []
        for number in range(FOLLOW_PAGES):
            page = api.get("/auth-log", **filters, since=since, limit=1000, offset=number * 1000)
            fresh += [row for row in page["items"] if row["id"] not in seen]
            if len(page["items"]) < 1000:
                break
        if not fresh:
            continue
        fresh.sort(key=lambda row: (row["at"], row["id"]))
        seen.update(row["id"] for row in fresh)
        newest = max(newest, datetime.fromisoformat(fresh[-1]["at"]))
        _show(fresh, args, names, header=header)
        header = False


def _show(
    rows: list[dict[str, Any]], args: argparse.Namespace, names: Names, *, header: bool
) -> None:
    if args.json:
        for row in rows:
            output.print_json_line(row)
    elif rows or header:
        _print(rows, names, fixed=True, header=header)


def _print(rows: list[dict[str, Any]], names: Names, *, fixed: bool, header: bool) -> None:
    console = output.console()
    if not rows and not fixed:
        console.print("no entries")
        return
    grid: Table = output.table(*_WIDTHS)
    grid.show_header = header
    if fixed:
        for column in grid.columns:
            column.width = _WIDTHS[str(column.header)]
            column.overflow = "ellipsis"
            column.no_wrap = True
    for row in rows:
        count = row.get("count") or 1
        grid.add_row(
            output.when(row["at"]),
            output.styled(row["result"]),
            row["reason"],
            row["method"] or "",
            names.nas(row["nas_id"]),
            row["username"] or "",
            row["calling_station_id"] or "",
            names.contract(row.get("contract_id")),
            str(count) if count > 1 else "",
        )
    console.print(grid)
