"""audit: who changed what, when and through which system."""

from __future__ import annotations

import argparse
import json
from typing import Any

from radius_contracts.cli import output
from radius_contracts.cli.admin import Commands
from radius_contracts.cli.client import DaemonApi
from radius_contracts.cli.lookup import find_contract
from radius_contracts.settings import Settings


def register(commands: Commands, remote: argparse.ArgumentParser) -> None:
    audit = commands.add_parser(
        "audit",
        parents=[remote],
        help="who changed what, when, and through which system (newest first)",
        description="Changes show the fields as they were sent; secrets show as ***.",
    )
    audit.add_argument("--entity", help="e.g. contracts, nas, layouts, pools, tokens")
    audit.add_argument("--id", type=int, dest="entity_id", help="the changed object's id")
    audit.add_argument("--contract", help="changes to this contract (number or username)")
    audit.add_argument("--actor", help="token name, e.g. billing")
    audit.add_argument("--via", help="api, cli, job, …")
    audit.add_argument("--action", help="e.g. create, update, delete, suspend")
    audit.add_argument("--limit", type=int, default=50, help="entries at most (default 50)")
    audit.set_defaults(run=_audit)


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    with DaemonApi.connect(args, settings) as api:
        filters: dict[str, Any] = {
            "entity": args.entity,
            "entity_id": args.entity_id,
            "actor": args.actor,
            "via": args.via,
            "action": args.action,
            "limit": args.limit,
        }
        if args.contract:
            filters["entity"] = "contracts"
            filters["entity_id"] = find_contract(api, args.contract)["id"]
        page = api.get("/audit", **filters)
    if args.json:
        output.print_json(page)
        return 0
    console = output.console()
    if not page["items"]:
        console.print("no audit entries")
        return 0
    grid = output.table("time", "actor", "via", "action", "entity", "id", "changes")
    for row in page["items"]:
        grid.add_row(
            output.when(row["at"]),
            row["actor"] or "",
            row["via"] or "",
            row["action"],
            row["entity"],
            "" if row["entity_id"] is None else str(row["entity_id"]),
            json.dumps(row["changes"], ensure_ascii=False, separators=(", ", ": ")),
        )
    console.print(grid)
    note = output.footer(len(page["items"]), page["total"], "entries")
    if note:
        console.print(note, style="dim")
    return 0
