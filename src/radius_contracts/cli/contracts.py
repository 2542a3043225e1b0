"""contract show: one contract, the reply each NAS would get, its last logins and sessions."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.text import Text

from radius_contracts.cli import output
from radius_contracts.cli.admin import Commands
from radius_contracts.cli.client import DaemonApi
from radius_contracts.cli.lookup import Names, every, find_contract, find_nas
from radius_contracts.cli.sessions import print_sessions
from radius_contracts.settings import Settings


def register(commands: Commands, remote: argparse.ArgumentParser) -> None:
    contract = commands.add_parser("contract", help="look at one contract")
    actions = contract.add_subparsers(dest="contract_command", required=True)
    show = actions.add_parser(
        "show",
        parents=[remote],
        help="the contract, its reply per active NAS, its last auth outcomes and sessions",
        description="The reply previews are what each active NAS would get now, computed by "
        "the daemon without sending anything (the password and MAC assumed right); NAS that "
        "would get the same reply share a row.",
    )
    show.add_argument("key", metavar="NUMBER|USERNAME", help="contract number, else username")
    show.add_argument("--nas", help="preview only for this NAS (id, name or address)")
    show.add_argument(
        "--limit", type=int, default=10, help="auth outcomes and sessions shown (default 10)"
    )
    show.set_defaults(run=_show)


def _show(args: argparse.Namespace, settings: Settings) -> int:
    with DaemonApi.connect(args, settings) as api:
        names = Names(api)
        contract = find_contract(api, args.key)
        cid = contract["id"]
        if args.nas:
            nas_ids = [find_nas(names, args.nas)]
        else:
            nas_ids = [row["id"] for row in every(api, "/nas", active=True)]
        previews = [
            {"nas_name": names.nas(nas_id), **api.get(f"/contracts/{cid}/preview", nas_id=nas_id)}
            for nas_id in nas_ids
        ]
        auth = api.get(f"/contracts/{cid}/auth-log", limit=args.limit)["items"]
        sessions = api.get("/sessions", contract_id=cid, limit=args.limit)["items"]
        if args.json:
            output.print_json(
                {"contract": contract, "previews": previews, "auth_log": auth, "sessions": sessions}
            )
            return 0
        _print_contract(contract)
        _print_previews(previews)
        _print_auth(auth, names)
        console = output.console()
        console.print()
        print_sessions(sessions, names, history=True, title="Sessions, newest first")
    return 0


def _print_contract(row: dict[str, Any]) -> None:
    config, customer = row["config"], row["customer"]

    def speeds(kind: str) -> str:
        low, high = config[f"min_{kind}"], config[f"max_{kind}"]
        return f"{high or 'unlimited'}" + (f" (at least {low})" if low else "")

    dates = f"{row['start_date'] or 'always'} → {row['end_date'] or 'open-ended'}"
    if row["auto_extend"]:
        dates += " (extends automatically)"
    use = config["simultaneous_use"]
    refs = ", ".join(f"{ref['app']}:{ref['external_id']}" for ref in row["external_refs"])
    fields = [
        ("status", output.styled(row["status"])),
        ("username", config["username"]),
        ("password", "set" if config["has_password"] else "none (MAC authentication only)"),
        ("customer", " ".join(filter(None, [customer["name"], _id(customer["external_id"])]))),
        ("dates", dates),
        ("upload", speeds("upload")),
        ("download", speeds("download")),
        ("IPv4", config["ipv4"] or _pool(config["pool_name_ipv4"])),
        ("IPv6", config["ipv6"] or _pool(config["pool_name_ipv6"])),
        ("delegated IPv6", config["delegated_ipv6_prefix"]),
        ("MAC binding", config["mac"] or "none"),
        ("sessions at once", "unlimited" if use is None else use),
        ("external refs", refs),
        ("custom fields", _custom(row["custom_fields"])),
        ("customer fields", _custom(customer["custom_fields"])),
        ("changed", f"{output.when(row['updated_at'])} by {row['updated_by'] or '?'} "
                    f"via {row['updated_via'] or '?'}"),
    ]  # fmt: skip
    shown = [(name, value) for name, value in fields if value not in (None, "")]
    title = f"Contract {row['number']} (id {row['id']})"
    output.console().print(output.key_values(shown, title=title))


def _id(external_id: str | None) -> str | None:
    return f"(id {external_id})" if external_id else None


def _pool(name: str | None) -> str | None:
    return f"from pool {name}" if name else None


def _custom(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in values.items())


def _print_previews(previews: list[dict[str, Any]]) -> None:
    console = output.console()
    console.print()
    if not previews:
        console.print("Reply per NAS: no active NAS")
        return
    groups: dict[str, list[dict[str, Any]]] = {}
    for preview in previews:
        key = json.dumps([preview["decision"], preview["reason"], preview["layout"],
                          preview["attributes"]])  # fmt: skip
        groups.setdefault(key, []).append(preview)
    grid = output.table("NAS", "decision", "layout", "reply", title="Reply per active NAS")
    for same in groups.values():
        first = same[0]
        reply = "\n".join(f"{a['attribute']} = {a['value']}" for a in first["attributes"])
        decision = output.styled(first["decision"])
        if first["decision"] == "reject":
            decision.append(f" ({first['reason']})")
        grid.add_row(
            output.joined((p["nas_name"] for p in same), limit=4),
            decision,
            first["layout"] or "",
            Text(reply),
        )
    console.print(grid)


def _print_auth(rows: list[dict[str, Any]], names: Names) -> None:
    console = output.console()
    console.print()
    if not rows:
        console.print("Auth outcomes: none recorded")
        return
    grid = output.table("time", "result", "reason", "method", "NAS", "calling station",
                        title="Last auth outcomes, newest first")  # fmt: skip
    for row in rows:
        grid.add_row(
            output.when(row["at"]),
            output.styled(row["result"]),
            row["reason"],
            row["method"] or "",
            names.nas(row["nas_id"]),
            row["calling_station_id"] or "",
        )
    console.print(grid)
