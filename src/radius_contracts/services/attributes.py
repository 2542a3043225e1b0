"""The RADIUS attribute catalogue: the loaded dictionaries plus operator-added attributes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import Layout, LayoutAttribute, RadiusAttribute
from radius_contracts.errors import Conflict, InvalidInput
from radius_contracts.radius.dictionary import AttributeCatalog, AttributeSpec
from radius_contracts.services.base import ChangesLayouts, CrudService
from radius_contracts.store.common import usage

log = logging.getLogger("radius_contracts.services")

DICTIONARY = "dictionary"
OPERATOR = "operator"
# Fields an operator may change on an attribute that comes from a dictionary file.
DICTIONARY_EDITABLE = frozenset({"description", "active"})


def spec_of(row: RadiusAttribute, catalog: AttributeCatalog) -> AttributeSpec:
    """The attribute as the renderer and encoder see it; named VALUEs come from the dictionary."""
    known = catalog.get(row.name) if row.source == DICTIONARY else None
    return AttributeSpec(
        name=row.name,
        code=row.code,
        type=row.type,
        vendor=row.vendor,
        vendor_id=row.vendor_id,
        has_tag=row.has_tag,
        encrypt=row.encrypt,
        values=dict(known.values) if known else {},
    )


def checked_vendor_id(vendor: tuple[str, int], vendor_id: int | None) -> int:
    """The dictionary vendor's number; a different ``vendor_id`` given with it is a 422."""
    name, number = vendor
    if vendor_id is not None and vendor_id != number:
        raise InvalidInput(
            f"vendor {name} has vendor id {number}, not {vendor_id}", field="vendor_id"
        )
    return number


class Attributes(ChangesLayouts, CrudService[RadiusAttribute]):
    # An attribute switched off (or renamed) leaves the layout rows that use it: CoA follows.
    model = RadiusAttribute
    label = "attribute"
    entity = "radius_attributes"
    filters = ("active", "vendor", "vendor_id", "source", "type", "code")
    search = ("name", "vendor", "description")
    sorts = ("id", "name", "vendor", "code", "created_at", "updated_at")

    async def sync(self, catalog: AttributeCatalog) -> int:
        """Add dictionary attributes missing from the table; returns how many were added.

        Existing rows keep their operator-set ``active`` flag and description; the type and
        code follow the dictionary files, which are the authority for their attributes.
        """
        with wrap_db_errors():
            async with self.context.transaction() as session:
                existing = {
                    row.name.lower(): row
                    for row in (await session.scalars(select(RadiusAttribute)))
                }
                added = 0
                for spec in catalog:
                    row = existing.get(spec.name.lower())
                    if row is None:
                        session.add(_row_from_spec(spec))
                        added += 1
                    elif row.source == DICTIONARY:
                        row.code, row.type, row.vendor = spec.code, spec.type, spec.vendor
                        row.vendor_id, row.has_tag, row.encrypt = (
                            spec.vendor_id,
                            spec.has_tag,
                            spec.encrypt,
                        )
                    else:
                        log.warning(
                            "operator attribute %s shadows the dictionary attribute of that name",
                            row.name,
                        )
        return added

    async def active_by_name(
        self, session: AsyncSession, names: Iterable[str]
    ) -> dict[str, RadiusAttribute]:
        """Active catalogue rows by lower-cased name, for the names asked for."""
        wanted = {name.lower() for name in names}
        if not wanted:
            return {}
        rows = await session.scalars(
            select(RadiusAttribute).where(
                func.lower(RadiusAttribute.name).in_(wanted), RadiusAttribute.active.is_(True)
            )
        )
        return {row.name.lower(): row for row in rows}

    async def _check(
        self, session: AsyncSession, row: RadiusAttribute | None, data: dict[str, Any]
    ) -> None:
        if row is not None and row.source == DICTIONARY:
            fixed = sorted(set(data) - DICTIONARY_EDITABLE)
            if fixed:
                raise InvalidInput(
                    f"{row.name} comes from the dictionary files; only description and active "
                    "can change",
                    field=fixed[0],
                )
        if row is not None and data.get("active") is False:
            phrase = await self._layouts_using(session, row, active_only=True)
            if phrase:
                raise Conflict(f"{row.name} is used by {phrase}", field="active")
        if row is None:
            data["source"] = OPERATOR
            self._resolve_vendor(data)
        if "name" in data:
            same = await session.scalars(
                select(RadiusAttribute.name).where(
                    func.lower(RadiusAttribute.name) == data["name"].lower(),
                    RadiusAttribute.id != (row.id if row else -1),
                )
            )
            if same.first():
                raise Conflict(f"an attribute named {data['name']!r} already exists", field="name")
        vendor_id = data.get("vendor_id", row.vendor_id if row else None)
        code = data.get("code", row.code if row else None)
        if "code" in data or "vendor_id" in data:
            clash = await session.scalars(
                select(RadiusAttribute.name).where(
                    RadiusAttribute.vendor_id == vendor_id,
                    RadiusAttribute.code == code,
                    RadiusAttribute.id != (row.id if row else -1),
                )
            )
            other = clash.first()
            if other:
                raise Conflict(
                    f"vendor {vendor_id} attribute {code} is already defined as {other}",
                    field="code",
                )

    def _resolve_vendor(self, data: dict[str, Any]) -> None:
        catalog = self.context.catalog
        name = data.get("vendor")
        known = catalog.vendor(name) if name else None
        if known:
            data["vendor"] = known[0]
            data["vendor_id"] = checked_vendor_id(known, data.get("vendor_id"))
        elif not name and data.get("vendor_id") is not None:
            by_number = {number: vendor for vendor, number in catalog.vendors.items()}
            data["vendor"] = by_number.get(data["vendor_id"])
        if data.get("vendor_id") is None:
            raise InvalidInput(
                "operator-added attributes are vendor-specific: give vendor or vendor_id",
                field="vendor_id",
            )

    async def _layouts_using(
        self, session: AsyncSession, row: RadiusAttribute, *, active_only: bool = False
    ) -> str | None:
        where = [
            Layout.id.in_(
                select(LayoutAttribute.layout_id).where(LayoutAttribute.attribute_id == row.id)
            )
        ]
        if active_only:
            where.append(Layout.active.is_(True))
        return await usage(session, "layouts", Layout.name, *where)

    async def _users(self, session: AsyncSession, row: RadiusAttribute) -> list[str]:
        if row.source == DICTIONARY:
            return ["the dictionary files it comes from (deactivate it instead)"]
        phrase = await self._layouts_using(session, row)
        return [phrase] if phrase else []


def _row_from_spec(spec: AttributeSpec) -> RadiusAttribute:
    return RadiusAttribute(
        name=spec.name,
        vendor=spec.vendor,
        vendor_id=spec.vendor_id,
        code=spec.code,
        type=spec.type,
        has_tag=spec.has_tag,
        encrypt=spec.encrypt,
        source=DICTIONARY,
        active=True,
        created_by="dictionary",
        created_via="daemon",
    )
