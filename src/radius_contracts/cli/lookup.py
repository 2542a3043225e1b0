"""What an operator types (a contract number, a username, a NAS name) as API ids, and ids as
the names people know."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from radius_contracts.cli.client import EXIT_API, CliError, DaemonApi

PAGE = 1000  # the API's largest page


class Names:
    """NAS names and contract numbers for the ids in listings, each fetched once."""

    def __init__(self, api: DaemonApi) -> None:
        self._api = api
        self._nas: dict[int, dict[str, Any]] | None = None
        self._contracts: dict[int, str | None] = {}

    def all_nas(self) -> dict[int, dict[str, Any]]:
        if self._nas is None:
            self._nas = {row["id"]: row for row in every(self._api, "/nas")}
        return self._nas

    def nas(self, nas_id: int | None) -> str:
        if nas_id is None:
            return ""
        row = self.all_nas().get(nas_id)
        return row["name"] if row else f"#{nas_id}"

    def contract(self, contract_id: int | None) -> str:
        if contract_id is None:
            return ""
        if contract_id not in self._contracts:
            row = self._api.get_or_none(f"/contracts/{contract_id}")
            self._contracts[contract_id] = row["number"] if row else None
        return self._contracts[contract_id] or f"#{contract_id}"


def every(api: DaemonApi, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a collection, page after page."""
    items: list[dict[str, Any]] = []
    while True:
        page = api.get(path, limit=PAGE, offset=len(items), **params)
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["total"]:
            return items


def find_contract(api: DaemonApi, key: str) -> dict[str, Any]:
    """The contract with this number, else the one with this username (case-insensitive)."""
    row = api.get_or_none(f"/contracts/by-number/{quote(key, safe='')}")
    if row is not None:
        return dict(row)
    found = api.get("/contracts", username=key, limit=1)["items"]
    if found:
        return dict(found[0])
    raise CliError(f"no contract has the number or username {key!r}", EXIT_API)


def find_nas(names: Names, key: str) -> int:
    """A NAS id from its id, name or address."""
    everything = names.all_nas()
    if key.isdigit() and int(key) in everything:
        return int(key)
    for row in everything.values():
        if key in (row["name"], row["address"]):
            return int(row["id"])
    raise CliError(f"no NAS has the id, name or address {key!r}", EXIT_API)
