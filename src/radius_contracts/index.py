"""The in-memory authorization index: everything a warm Access-Request needs, no database.

DESIGN §2: contracts, NAS, layouts and pools live here as frozen snapshots, built at start and
updated after every committed change (the services await :meth:`AuthIndex.changed` before the
API answers), so a change is used by the next request. Lookups are plain dict reads; updates
replace whole snapshots or whole tables, so a reader never sees half a change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from types import MappingProxyType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from radius_contracts.domain import (
    ContractSnapshot,
    LayoutPurpose,
    LayoutSnapshot,
    NasSnapshot,
    PoolSnapshot,
)
from radius_contracts.radius.clients import ClientTable, NasClient
from radius_contracts.store import authz

log = logging.getLogger("radius_contracts.index")

# Tables small enough to reload whole on any change to them.
_CATALOGUE_ENTITIES = frozenset(
    {"nas", "manufacturers", "pops", "layouts", "radius_attributes", "pools"}
)


def username_key(name: str) -> str:
    """Usernames are unique and looked up case-insensitively (see services.contracts)."""
    return name.lower()


class AuthIndex:
    """Contracts by username and MAC, active NAS, layouts and pools, all in memory."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._by_id: dict[int, ContractSnapshot] = {}
        self._by_username: dict[str, ContractSnapshot] = {}
        self._by_mac: dict[str, ContractSnapshot] = {}
        self._nas: Mapping[int, NasSnapshot] = MappingProxyType({})
        self._layouts: Mapping[tuple[int | None, LayoutPurpose], LayoutSnapshot] = MappingProxyType(
            {}
        )
        self._pools: Mapping[str, PoolSnapshot] = MappingProxyType({})
        self.clients = ClientTable()
        # Bumped whenever NAS, layouts or pools change: cached replies built before are stale.
        self.catalogue_version = 0
        self.loaded_at = 0.0  # monotonic time of the last full load

    # -- lookups (hot path) -------------------------------------------------------------------

    def contract_by_username(self, name: str) -> ContractSnapshot | None:
        return self._by_username.get(username_key(name))

    def contract_by_mac(self, mac: str) -> ContractSnapshot | None:
        """The contract bound to ``mac`` (normalised aa:bb:cc:dd:ee:ff)."""
        return self._by_mac.get(mac)

    def contract(self, contract_id: int) -> ContractSnapshot | None:
        return self._by_id.get(contract_id)

    def nas(self, nas_id: int) -> NasSnapshot | None:
        return self._nas.get(nas_id)

    def layout(self, manufacturer_id: int, purpose: LayoutPurpose) -> LayoutSnapshot | None:
        """The manufacturer's active layout for ``purpose``, else the any-manufacturer one."""
        return self._layouts.get((manufacturer_id, purpose)) or self._layouts.get((None, purpose))

    def pool(self, name: str) -> PoolSnapshot | None:
        return self._pools.get(name)

    def all_nas(self) -> list[NasSnapshot]:
        """Every active NAS (not for the hot path)."""
        return list(self._nas.values())

    def __len__(self) -> int:
        return len(self._by_id)

    # -- loading ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Build everything from the database (start-up, and after a reload)."""
        started = time.monotonic()
        by_id: dict[int, ContractSnapshot] = {}
        async with self._sessions() as session:
            await self._load_catalogue(session)
            async for snapshot in authz.contracts(session):
                by_id[snapshot.id] = snapshot
        by_username: dict[str, ContractSnapshot] = {}
        by_mac: dict[str, ContractSnapshot] = {}
        for snapshot in by_id.values():
            by_username[username_key(snapshot.config.username)] = snapshot
            if snapshot.config.mac:
                by_mac[snapshot.config.mac] = snapshot
        self._by_id, self._by_username, self._by_mac = by_id, by_username, by_mac
        self.loaded_at = time.monotonic()
        log.info(
            "authorization index: %d contracts, %d NAS, %d layouts in %.1fs",
            len(by_id),
            len(self._nas),
            len(self._layouts),
            self.loaded_at - started,
        )

    async def changed(self, entity: str, row_id: int) -> None:
        """A committed change (a services listener): refresh what it touched."""
        if entity == "contracts":
            async with self._sessions() as session:
                self._put_contract(row_id, await authz.contract(session, row_id))
        elif entity in _CATALOGUE_ENTITIES:
            async with self._sessions() as session:
                await self._load_catalogue(session)

    async def _load_catalogue(self, session: AsyncSession) -> None:
        nas = {row.id: row for row in await authz.nas(session)}
        layouts = {(row.manufacturer_id, row.purpose): row for row in await authz.layouts(session)}
        pools = {row.name: row for row in await authz.pools(session)}
        clients = ClientTable(
            (
                row.address,
                NasClient(row.id, row.secret.encode(), row.require_message_authenticator),
            )
            for row in nas.values()
        )
        self._nas = MappingProxyType(nas)
        self._layouts = MappingProxyType(layouts)
        self._pools = MappingProxyType(pools)
        self.clients = clients
        self.catalogue_version += 1

    def _put_contract(self, contract_id: int, snapshot: ContractSnapshot | None) -> None:
        old = self._by_id.pop(contract_id, None)
        if old is not None:
            key = username_key(old.config.username)
            if self._by_username.get(key) is old:
                del self._by_username[key]
            if old.config.mac and self._by_mac.get(old.config.mac) is old:
                del self._by_mac[old.config.mac]
        if snapshot is None:
            return
        self._by_id[contract_id] = snapshot
        self._by_username[username_key(snapshot.config.username)] = snapshot
        if snapshot.config.mac:
            self._by_mac[snapshot.config.mac] = snapshot
