"""NAS: the routers allowed to talk RADIUS to us, each with its shared secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import AcctSession, Manufacturer, Nas, Pop
from radius_contracts.errors import Conflict, InvalidInput
from radius_contracts.services.base import CrudService
from radius_contracts.store.common import usage


class NasService(CrudService[Nas]):
    model = Nas
    label = "NAS"
    entity = "nas"
    filters = ("active", "manufacturer_id", "pop_id", "address")
    search = ("name", "address", "description")
    sorts = ("id", "name", "address", "created_at", "updated_at")

    async def _check(self, session: AsyncSession, row: Nas | None, data: dict[str, Any]) -> None:
        for key, model, label in (
            ("manufacturer_id", Manufacturer, "manufacturer"),
            ("pop_id", Pop, "POP"),
        ):
            if data.get(key) is not None and await session.get(model, data[key]) is None:
                raise InvalidInput(f"{label} {data[key]} does not exist", field=key)
        address = data.get("address")
        if address is not None:
            # Two NAS entries for one source would make the shared secret ambiguous.
            stmt = select(Nas.name).where(Nas.address == address)
            if row is not None:
                stmt = stmt.where(Nas.id != row.id)
            other = (await session.scalars(stmt.limit(1))).first()
            if other is not None:
                raise Conflict(f"NAS {other!r} already has address {address}", field="address")

    async def _users(self, session: AsyncSession, row: Nas) -> list[str]:
        phrase = await usage(
            session,
            "open sessions",
            AcctSession.username,
            AcctSession.nas_id == row.id,
            AcctSession.stopped_at.is_(None),
        )
        return [phrase] if phrase else []
