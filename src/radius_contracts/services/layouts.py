"""Layouts: per-manufacturer reply attributes, linted against the dictionary when saved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.aaa.render import invalid_layout, lint_layout
from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import Layout, LayoutAttribute, Manufacturer, RadiusAttribute
from radius_contracts.errors import Conflict, InvalidInput
from radius_contracts.radius.dictionary import AttributeSpec, split_tag
from radius_contracts.services.attributes import Attributes, spec_of
from radius_contracts.services.base import Actor, ChangesLayouts, CrudService, audit, stamp
from radius_contracts.store import common


class _Specs:
    """The lint's view of the catalogue: active attributes by name, case-insensitive."""

    def __init__(self, specs: Mapping[str, AttributeSpec]) -> None:
        self._specs = specs

    def get(self, name: str) -> AttributeSpec | None:
        return self._specs.get(name.lower())


class Layouts(ChangesLayouts, CrudService[Layout]):
    model = Layout
    label = "layout"
    entity = "layouts"
    filters = ("active", "manufacturer_id", "purpose")
    search = ("name", "description")

    async def _check(self, session: AsyncSession, row: Layout | None, data: dict[str, Any]) -> None:
        manufacturer_id = data.get("manufacturer_id")
        if manufacturer_id is not None and await session.get(Manufacturer, manufacturer_id) is None:
            raise InvalidInput(
                f"manufacturer {manufacturer_id} does not exist", field="manufacturer_id"
            )
        if "attributes" in data:
            data["attributes"] = await self._resolve_rows(session, data["attributes"])
        await self._check_single_active(session, row, data)

    async def _resolve_rows(
        self, session: AsyncSession, rows: Sequence[Mapping[str, str]]
    ) -> list[tuple[RadiusAttribute, str, int | None]]:
        """Lint every row (422 naming the first bad one) and resolve names to catalogue rows."""
        pairs = [(r["attribute"], r["template"]) for r in rows]
        names = [name.partition(":")[0] for name, _ in pairs]  # "Tunnel-Type:1" (RFC 2868)
        by_name = await Attributes(self.context).active_by_name(session, names)
        specs = {key: spec_of(row, self.context.catalog) for key, row in by_name.items()}
        problems = lint_layout(pairs, _Specs(specs))
        if problems:
            raise invalid_layout(problems)
        resolved = []
        for reference, template in pairs:
            name, tag = split_tag(reference)  # lint_layout refused a bad tag
            resolved.append((by_name[name.lower()], template, tag))
        return resolved

    async def _check_single_active(
        self, session: AsyncSession, row: Layout | None, data: Mapping[str, Any]
    ) -> None:
        """At most one active layout per manufacturer and purpose: the choice must be unique."""
        active = data.get("active", row.active if row else True)
        if not active:
            return
        manufacturer_id = data.get("manufacturer_id", row.manufacturer_id if row else None)
        purpose = data.get("purpose", row.purpose if row else "active")
        stmt = select(Layout.name).where(
            Layout.active.is_(True),
            Layout.purpose == purpose,
            Layout.manufacturer_id.is_(None)
            if manufacturer_id is None
            else Layout.manufacturer_id == manufacturer_id,
        )
        if row is not None:
            stmt = stmt.where(Layout.id != row.id)
        other = (await session.scalars(stmt.limit(1))).first()
        if other is not None:
            raise Conflict(
                f"layout {other!r} is already the active {purpose} layout for this manufacturer; "
                "deactivate it first",
                field="active" if row is not None and "active" in data else "manufacturer_id",
            )

    def _apply(self, row: Layout, data: Mapping[str, Any]) -> None:
        for key, value in data.items():
            if key == "attributes":
                row.rows = [
                    LayoutAttribute(
                        position=position, attribute=attribute, template=template, tag=tag
                    )
                    for position, (attribute, template, tag) in enumerate(value)
                ]
            else:
                setattr(row, key, value)

    async def replace_rows(
        self, actor: Actor, layout_id: int, rows: Sequence[Mapping[str, str]]
    ) -> Layout:
        before = await self._before(layout_id)
        with wrap_db_errors():
            async with self.context.transaction() as session:
                layout = await common.get(session, Layout, layout_id, self.label)
                resolved = await self._resolve_rows(session, rows)
                self._apply(layout, {"attributes": resolved})
                stamp(layout, actor, created=False)
                audit(session, actor, "update", self.entity, layout_id, {"attributes": list(rows)})
        return await self._committed(layout, before)
