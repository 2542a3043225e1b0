"""Manufacturers and POPs: the simple catalogue entries NAS and layouts hang off."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import Layout, Manufacturer, Nas, Pop
from radius_contracts.errors import InvalidInput
from radius_contracts.services.attributes import checked_vendor_id
from radius_contracts.services.base import ChangesLayouts, CrudService
from radius_contracts.store.common import usage


class Manufacturers(ChangesLayouts, CrudService[Manufacturer]):
    # Deactivating one takes its layouts out of use: their sessions get what can change live.
    model = Manufacturer
    label = "manufacturer"
    entity = "manufacturers"
    filters = ("active", "vendor_id")
    search = ("name", "dictionary_vendor")

    async def _check(
        self, session: AsyncSession, row: Manufacturer | None, data: dict[str, Any]
    ) -> None:
        self._check_coa(data)
        name = data.get("dictionary_vendor")
        if not name:
            return
        known = self.context.catalog.vendor(name)
        if known is None:
            raise InvalidInput(
                f"no vendor {name!r} in the loaded dictionaries", field="dictionary_vendor"
            )
        data["dictionary_vendor"] = known[0]
        data["vendor_id"] = checked_vendor_id(
            known, data.get("vendor_id", row.vendor_id if row else None)
        )

    def _check_coa(self, data: dict[str, Any]) -> None:
        """CoA attribute names must be in the loaded dictionaries; stored as spelt there."""
        catalog = self.context.catalog

        def known(name: str, field: str) -> str:
            spec = catalog.get(name)
            if spec is None:
                raise InvalidInput(f"no attribute {name!r} in the loaded dictionaries", field=field)
            return spec.name

        if data.get("coa_attributes") is not None:
            data["coa_attributes"] = list(
                dict.fromkeys(
                    known(name, f"coa_attributes[{i}]")
                    for i, name in enumerate(data["coa_attributes"])
                )
            )
        if data.get("coa_deactivate") is not None:
            data["coa_deactivate"] = {
                known(on, f"coa_deactivate.{on}"): known(off, f"coa_deactivate.{on}")
                for on, off in data["coa_deactivate"].items()
            }
        if data.get("coa_identifiers") is not None:
            data["coa_identifiers"] = list(dict.fromkeys(data["coa_identifiers"]))

    async def _users(self, session: AsyncSession, row: Manufacturer) -> list[str]:
        found = [
            await usage(session, "NAS", Nas.name, Nas.manufacturer_id == row.id),
            await usage(session, "layouts", Layout.name, Layout.manufacturer_id == row.id),
        ]
        return [phrase for phrase in found if phrase]


class Pops(CrudService[Pop]):
    model = Pop
    label = "POP"
    entity = "pops"
    search = ("name", "city", "description")

    async def _users(self, session: AsyncSession, row: Pop) -> list[str]:
        phrase = await usage(session, "NAS", Nas.name, Nas.pop_id == row.id)
        return [phrase] if phrase else []
