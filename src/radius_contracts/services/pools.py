"""IP pools: address ranges the daemon leases from, or names it passes on to the NAS."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.aaa.pools import PoolSpace
from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import Contract, Pool
from radius_contracts.db.types import utcnow
from radius_contracts.domain import PoolFamily, PoolMode
from radius_contracts.errors import Conflict, InvalidInput
from radius_contracts.services.base import CrudService
from radius_contracts.store import common, leases
from radius_contracts.store.common import usage

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(ranges: list[str]) -> list[Network]:
    return [ipaddress.ip_network(r) for r in ranges]


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """How much of a pool is leased right now."""

    pool_id: int
    name: str
    family: PoolFamily
    mode: PoolMode
    size: int  # addresses (ipv4) or prefixes (ipv6, ipv6-pd) the pool can lease
    held: int  # leases whose expiry is in the future
    offered: int  # held, waiting for Accounting-Start
    bound: int  # held, confirmed by accounting
    free: int  # size - held


class Pools(CrudService[Pool]):
    model = Pool
    label = "pool"
    entity = "pools"
    filters = ("active", "family", "mode")
    search = ("name", "description")

    async def _check(self, session: AsyncSession, row: Pool | None, data: dict[str, Any]) -> None:
        family = PoolFamily(data.get("family", row.family if row else PoolFamily.IPV4))
        ranges = data.get("ranges", row.ranges if row else [])
        prefix_length = data.get("prefix_length", row.prefix_length if row else None)
        if "family" in data or "ranges" in data or "prefix_length" in data:
            data["prefix_length"] = self._check_shape(family, _networks(ranges), prefix_length)
            await self._check_overlap(session, row, _networks(ranges))
        if row is not None and "name" in data and data["name"] != row.name:
            users = await self._contracts_using(session, row.name)
            if users:
                raise Conflict(f"pool {row.name!r} is used by {users}; cannot rename", field="name")

    @staticmethod
    def _check_shape(
        family: PoolFamily, networks: list[Network], prefix_length: int | None
    ) -> int | None:
        version = 4 if family is PoolFamily.IPV4 else 6
        for index, network in enumerate(networks):
            if network.version != version:
                raise InvalidInput(
                    f"{network} is not an IPv{version} range for a {family} pool",
                    field=f"ranges[{index}]",
                )
        for index, network in enumerate(networks):
            for other in networks[index + 1 :]:
                if network.overlaps(other):
                    raise InvalidInput(
                        f"{network} overlaps {other} in the same pool", field=f"ranges[{index}]"
                    )
        if family is PoolFamily.IPV4:
            if prefix_length not in (None, 32):
                raise InvalidInput("IPv4 pools lease single addresses", field="prefix_length")
            return None
        if prefix_length is None:
            if family is PoolFamily.IPV6_PD:
                raise InvalidInput(
                    "an ipv6-pd pool needs the delegated prefix length", field="prefix_length"
                )
            prefix_length = 64  # RFC 4862 SLAAC needs a /64 per subscriber link
        for index, network in enumerate(networks):
            if network.prefixlen > prefix_length:
                raise InvalidInput(
                    f"{network} is smaller than one /{prefix_length}", field=f"ranges[{index}]"
                )
        return int(prefix_length)

    async def _check_overlap(
        self, session: AsyncSession, row: Pool | None, networks: list[Network]
    ) -> None:
        stmt = select(Pool)
        if row is not None:
            stmt = stmt.where(Pool.id != row.id)
        for other in (await session.scalars(stmt)).all():
            for other_network in _networks(other.ranges):
                for index, network in enumerate(networks):
                    if network.version == other_network.version and network.overlaps(other_network):
                        raise Conflict(
                            f"{network} overlaps {other_network} of pool {other.name!r}",
                            field=f"ranges[{index}]",
                        )

    async def _contracts_using(self, session: AsyncSession, name: str) -> str | None:
        return await usage(
            session,
            "contracts",
            Contract.number,
            or_(Contract.pool_name_ipv4 == name, Contract.pool_name_ipv6 == name),
        )

    async def _users(self, session: AsyncSession, row: Pool) -> list[str]:
        phrase = await self._contracts_using(session, row.name)
        return [phrase] if phrase else []

    async def held_by_pool(self) -> dict[int, int]:
        """Leases held now, by pool id, for every pool at once (the metrics' pool use)."""
        with wrap_db_errors():
            async with self.context.sessions() as session:
                return await leases.held_by_pool(session, utcnow())

    async def usage(self, pool_id: int) -> PoolUsage:
        """Leases held now; a ``nas`` pool is leased by the NAS itself, so it holds none here."""
        with wrap_db_errors():
            async with self.context.sessions() as session:
                row = await common.get(session, Pool, pool_id, self.label)
                mode = PoolMode(row.mode)
                held: dict[str, int] = {}
                if mode is PoolMode.MANAGED:
                    held = await leases.usage(session, pool_id, utcnow())
        family = PoolFamily(row.family)
        size = PoolSpace.of(family, row.ranges, row.prefix_length).size
        total = sum(held.values())
        return PoolUsage(
            pool_id=row.id,
            name=row.name,
            family=family,
            mode=mode,
            size=size,
            held=total,
            offered=held.get(leases.OFFERED, 0),
            bound=held.get(leases.BOUND, 0),
            free=max(size - total, 0),
        )
