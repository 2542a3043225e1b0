"""Who is online, and sending them off: sessions, disconnect."""

from __future__ import annotations

import argparse
from typing import Any

from radius_contracts.cli import output
from radius_contracts.cli.admin import Commands
from radius_contracts.cli.client import EXIT_API, EXIT_USAGE, CliError, DaemonApi
from radius_contracts.cli.lookup import Names, find_contract, find_nas
from radius_contracts.settings import Settings


def register(commands: Commands, remote: argparse.ArgumentParser) -> None:
    sessions = commands.add_parser(
        "sessions",
        parents=[remote],
        help="online sessions: username, contract, NAS, address, start, bytes",
        description="Sessions as the NAS report them in accounting, newest first. Bytes up "
        "are what the subscriber sent, bytes down what it received.",
    )
    sessions.add_argument(
        "--all", action="store_true", help="closed sessions too (history), with how they ended"
    )
    sessions.add_argument("--username", help="User-Name, exact but case-insensitive")
    sessions.add_argument("--contract", help="a contract's number or username")
    sessions.add_argument("--nas", help="a NAS's id, name or address")
    sessions.add_argument(
        "--ip", help="an address, or a prefix: who had it (with --all, also in the past)"
    )
    sessions.add_argument("--limit", type=int, default=50, help="rows at most (default 50)")
    sessions.set_defaults(run=_sessions)

    disconnect = commands.add_parser(
        "disconnect",
        parents=[remote],
        help="send a Disconnect-Request for sessions, or for every session of a contract",
        description="Sends the session's NAS a Disconnect-Request (RFC 5176). The contract is "
        "left as it is, so the subscriber may connect again: suspend it to prevent that.",
    )
    disconnect.add_argument("session", nargs="*", type=int, help="session ids (see `sessions`)")
    disconnect.add_argument(
        "--contract", help="instead: every online session of this contract (number or username)"
    )
    disconnect.add_argument(
        "--wait",
        action="store_true",
        help="wait for each NAS's answer (up to the [coa] timeout with retries) and print it; "
        "exit 1 unless every NAS acknowledged",
    )
    disconnect.set_defaults(run=_disconnect)


def _sessions(args: argparse.Namespace, settings: Settings) -> int:
    with DaemonApi.connect(args, settings) as api:
        names = Names(api)
        filters: dict[str, Any] = {
            "online": None if args.all else True,
            "username": args.username,
            "ip": args.ip,
            "limit": args.limit,
        }
        if args.contract:
            filters["contract_id"] = find_contract(api, args.contract)["id"]
        if args.nas:
            filters["nas_id"] = find_nas(names, args.nas)
        page = api.get("/sessions", **filters)
        if args.json:
            output.print_json(page)
            return 0
        print_sessions(page["items"], names, history=args.all)
        note = output.footer(len(page["items"]), page["total"], "sessions")
        if note:
            output.console().print(note, style="dim")
    return 0


def print_sessions(
    items: list[dict[str, Any]], names: Names, *, history: bool, title: str | None = None
) -> None:
    console = output.console()
    if not items:
        console.print("no sessions" + ("" if history else " online"))
        return
    columns = ["session", "username", "contract", "NAS", "address", "started", "time"]
    columns += ["bytes up", "bytes down"] + (["stopped", "cause"] if history else [])
    grid = output.table(*columns, title=title)
    for row in items:
        address = output.joined(
            [row["framed_ip"], row["framed_ipv6_address"], row["delegated_ipv6_prefix"]]
        )
        cells = [
            str(row["id"]),
            row["username"],
            names.contract(row["contract_id"]),
            names.nas(row["nas_id"]),
            address,
            output.when(row["started_at"]),
            output.duration(row["started_at"], row["stopped_at"]),
            output.size(row["input_octets"]),
            output.size(row["output_octets"]),
        ]
        if history:
            cells += [output.when(row["stopped_at"]) or "online", row["terminate_cause"] or ""]
        grid.add_row(*cells)
    console.print(grid)


def _disconnect(args: argparse.Namespace, settings: Settings) -> int:
    if bool(args.session) == bool(args.contract):
        raise CliError("disconnect takes session ids or --contract (one of the two)", EXIT_USAGE)
    with DaemonApi.connect(args, settings) as api:
        if args.contract:
            contract = find_contract(api, args.contract)
            sent = api.post(f"/contracts/{contract['id']}/disconnect")
            if args.json:
                output.print_json(sent)
            elif sent["sessions"]:
                ids = ", ".join(str(i) for i in sent["sessions"])
                print(f"contract {contract['number']}: Disconnect-Request sent for sessions {ids}")
            else:
                print(f"contract {contract['number']}: no session online")
            return 0
        answers = [
            api.post(f"/sessions/{session}/disconnect", wait=args.wait or None)
            for session in args.session
        ]
    if args.json:
        output.print_json(answers)
    elif args.wait:
        _print_outcomes(answers)
    else:
        for answer in answers:
            print(f"session {answer['session_id']}: Disconnect-Request sent")
    if args.wait and any(answer.get("outcome") != "ack" for answer in answers):
        raise CliError("not every NAS acknowledged the Disconnect-Request", EXIT_API)
    return 0


def _print_outcomes(answers: list[dict[str, Any]]) -> None:
    grid = output.table("session", "outcome", "error cause", "attempts", "detail")
    for answer in answers:
        grid.add_row(
            str(answer["session_id"]),
            output.styled(answer["outcome"]),
            str(answer["error_cause"] or ""),
            str(answer["attempts"]),
            answer["detail"] or "",
        )
    output.console().print(grid)
