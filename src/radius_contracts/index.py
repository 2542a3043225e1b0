"""The in-memory authorization index: everything a warm Access-Request needs, no database.

DESIGN §2: contracts, NAS, layouts and pools live here as frozen snapshots, built at start and
updated after every committed change (the services await :meth:`AuthIndex.changed` before the
API answers), so a change is used by the next request. Lookups are plain dict reads; updates
replace whole snapshots or whole tables, so a reader never sees half a change.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from types import MappingProxyType
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from radius_contracts.domain import (
    ConnectionConfig,
    ContractSnapshot,
    LayoutPurpose,
    LayoutSnapshot,
    NasSnapshot,
    PoolFamily,
    PoolSnapshot,
)
from radius_contracts.plans import PlanSnapshot, QuotaState, effective_config, quota_period
from radius_contracts.radius.clients import RADSEC_SECRET, ClientTable, NasClient
from radius_contracts.store import authz

log = logging.getLogger("radius_contracts.index")

# Tables small enough to reload whole on any change to them.
_CATALOGUE_ENTITIES = frozenset(
    {"nas", "manufacturers", "pops", "layouts", "radius_attributes", "pools", "plans"}
)
# Contracts given new snapshots at a time when a plan or window changes: the event loop (and
# RADIUS with it) is let go between slices.
_SLICE = 2000


def username_key(name: str) -> str:
    """Usernames are unique and looked up case-insensitively (see services.contracts)."""
    return name.lower()


Layouts = Mapping[tuple[int | None, LayoutPurpose], LayoutSnapshot]


def resolve_layout(
    layouts: Layouts, manufacturer_id: int, purpose: LayoutPurpose
) -> LayoutSnapshot | None:
    """The manufacturer's layout for ``purpose`` in ``layouts``, else the any-manufacturer one."""
    return layouts.get((manufacturer_id, purpose)) or layouts.get((None, purpose))


_V6_BITS = 128
_T = TypeVar("_T")


def _mask(length: int) -> int:
    return ((1 << length) - 1) << (_V6_BITS - length)


def _parse(value: str) -> tuple[str, tuple[int, int] | None]:
    """Canonical text of an address or prefix, and (network, length) when it is IPv6."""
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return value, None
    if network.version == 4:
        return (str(network.network_address) if network.prefixlen == 32 else str(network)), None
    if "/" not in value:
        return str(network.network_address), (int(network.network_address), _V6_BITS)
    return str(network), (int(network.network_address), network.prefixlen)


class FixedAddresses(Set[str]):
    """Addresses and prefixes fixed on contracts (``ipv4``, ``ipv6``, ``delegated_ipv6_prefix``).

    A set of canonical strings ("10.0.0.5", "2001:db8:0:1::/64") that managed pools never
    lease. Each value is counted rather than just present: while an address moves from one
    contract to another, the two index updates may arrive in either order.

    IPv6 prefixes of different lengths can overlap without being equal (a fixed /56 holds 256
    of a pool's /64s; a fixed /64 sits inside one of a pool's delegated /56s), so
    :meth:`overlaps` also looks up each candidate's covering prefixes, one per fixed length,
    and the longer fixed prefixes it would cover, kept truncated to each pool prefix length.
    """

    def __init__(self) -> None:
        self._count: dict[str, int] = {}
        # IPv6 fixed prefixes: length → network (as int) → count.
        self._v6: dict[int, dict[int, int]] = {}
        # For each watched length L: the fixed IPv6 prefixes longer than L, cut to L.
        self._inside: dict[int, dict[int, int]] = {}

    def __contains__(self, value: object) -> bool:
        return value in self._count

    def __iter__(self) -> Iterator[str]:
        return iter(self._count)

    def __len__(self) -> int:
        return len(self._count)

    @classmethod
    def _from_iterable(cls, values: Iterable[_T]) -> Set[_T]:
        # What Set's operators (&, |, -) build: a plain set, not another index.
        return frozenset(values)

    def add(self, value: str) -> None:
        text, v6 = _parse(value)
        self._count[text] = self._count.get(text, 0) + 1
        if v6 is not None:
            self._bump(v6, 1)

    def discard(self, value: str) -> None:
        text, v6 = _parse(value)
        count = self._count.get(text, 0)
        if count == 0:
            return
        if count == 1:
            del self._count[text]
        else:
            self._count[text] = count - 1
        if v6 is not None:
            self._bump(v6, -1)

    def _bump(self, v6: tuple[int, int], step: int) -> None:
        network, length = v6
        _add(self._v6.setdefault(length, {}), network, step)
        for watched, cut in self._inside.items():
            if length > watched:
                _add(cut, network & _mask(watched), step)

    def watch(self, lengths: Iterable[int]) -> None:
        """Keep the longer fixed prefixes cut to each of ``lengths`` (the pools' prefix sizes)."""
        wanted = set(lengths)
        if wanted == set(self._inside):
            return
        inside: dict[int, dict[int, int]] = {}
        for watched in wanted:
            cut: dict[int, int] = {}
            mask = _mask(watched)
            for length, networks in self._v6.items():
                if length > watched:
                    for network, count in networks.items():
                        _add(cut, network & mask, count)
            inside[watched] = cut
        self._inside = inside

    def overlaps(self, address: str) -> bool:
        """Whether ``address`` (canonical) is, covers or lies inside a fixed address."""
        if address in self._count:
            return True
        if ":" not in address or not self._v6:
            return False
        _text, v6 = _parse(address)
        if v6 is None:
            return False
        network, length = v6
        for fixed_length, networks in self._v6.items():
            if fixed_length <= length and network & _mask(fixed_length) in networks:
                return True
        cut = self._inside.get(length)
        if cut is not None:
            return network in cut
        # A prefix length no pool in the index uses: look through the longer fixed prefixes.
        mask = _mask(length)
        return any(
            fixed & mask == network
            for fixed_length, networks in self._v6.items()
            if fixed_length > length
            for fixed in networks
        )

    def add_config(self, config: ConnectionConfig) -> None:
        for value in (config.ipv4, config.ipv6, config.delegated_ipv6_prefix):
            if value:
                self.add(value)

    def discard_config(self, config: ConnectionConfig) -> None:
        for value in (config.ipv4, config.ipv6, config.delegated_ipv6_prefix):
            if value:
                self.discard(value)


def _add(counts: dict[int, int], key: int, step: int) -> None:
    count = counts.get(key, 0) + step
    if count > 0:
        counts[key] = count
    else:
        counts.pop(key, None)


def _pool_lengths(pools: Iterable[PoolSnapshot]) -> set[int]:
    return {
        pool.prefix_length
        for pool in pools
        if pool.family is not PoolFamily.IPV4 and pool.prefix_length is not None
    }


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The small tables, read together: active NAS (and their client table), layouts, pools,
    plans."""

    nas: Mapping[int, NasSnapshot]
    clients: ClientTable
    # RadSec's view (RFC 6614 §2.3: secret "radsec" unless the NAS sets one; TLS protects
    # the packets, so Message-Authenticator is checked when present, not required).
    radsec_clients: ClientTable
    radsec_pins: Mapping[int, str]
    layouts: Layouts
    pools: Mapping[str, PoolSnapshot]
    plans: Mapping[int, PlanSnapshot]


async def read_catalogue(session: AsyncSession) -> Catalogue:
    nas = {row.id: row for row in await authz.nas(session)}
    layouts = {(row.manufacturer_id, row.purpose): row for row in await authz.layouts(session)}
    pools = {row.name: row for row in await authz.pools(session)}
    plans = {row.id: row for row in await authz.plans(session)}
    clients = ClientTable(
        (
            row.address,
            NasClient(row.id, row.secret.encode(), row.require_message_authenticator, row.name),
        )
        for row in nas.values()
    )
    radsec_clients = ClientTable(
        (
            row.address,
            NasClient(
                row.id,
                row.radsec_secret.encode() if row.radsec_secret else RADSEC_SECRET,
                False,
                row.name,
            ),
        )
        for row in nas.values()
    )
    pins = {row.id: row.radsec_pin for row in nas.values() if row.radsec_pin}
    return Catalogue(
        MappingProxyType(nas),
        clients,
        radsec_clients,
        MappingProxyType(pins),
        MappingProxyType(layouts),
        MappingProxyType(pools),
        MappingProxyType(plans),
    )


class _InForce:
    """The plan's window in force now (as opposed to a given one)."""


IN_FORCE = _InForce()


class AuthIndex:
    """Contracts by username and MAC, active NAS, layouts, pools and plans, all in memory.

    Contracts on a plan are held as their plan makes them now (plans.effective_config): the
    plan's time window in force, and whether the contract is over its data quota in the
    current period. Whatever changes that (a plan edit, a window boundary, a quota crossing)
    gives the contracts concerned new snapshots, like an edit of the contracts themselves.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        zone: tzinfo = UTC,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self.zone = zone
        self._clock = clock
        self._plans: Mapping[int, PlanSnapshot] = MappingProxyType({})
        self._by_plan: dict[int, set[int]] = {}
        self._windows: dict[int, int | None] = {}  # plan id → its window in force
        self._over: dict[int, date] = {}  # contract id → start of the period it is over in
        self._by_id: dict[int, ContractSnapshot] = {}
        self._by_username: dict[str, ContractSnapshot] = {}
        self._by_mac: dict[str, ContractSnapshot] = {}
        self._nas: Mapping[int, NasSnapshot] = MappingProxyType({})
        self._layouts: Layouts = MappingProxyType({})
        self._pools: Mapping[str, PoolSnapshot] = MappingProxyType({})
        self._fixed = FixedAddresses()
        self.clients = ClientTable()
        self.radsec_clients = ClientTable()
        self.radsec_pins: Mapping[int, str] = MappingProxyType({})
        # Bumped whenever NAS, layouts or pools change: cached replies built before are stale.
        self.catalogue_version = 0
        self.loaded_at = 0.0  # monotonic time of the last full load
        self.changed_at = 0.0  # monotonic time a load or a committed change last applied
        self._written: dict[int, tuple[ContractSnapshot, bool]] = {}  # see written()

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

    @property
    def layouts(self) -> Layouts:
        """Every active layout by (manufacturer id or None, purpose): replaced whole on reload,
        so a reference taken before a change still shows the layouts as they were."""
        return self._layouts

    def pool(self, name: str) -> PoolSnapshot | None:
        return self._pools.get(name)

    @property
    def fixed_addresses(self) -> FixedAddresses:
        """Every address and prefix fixed on a contract, as canonical strings (set-like)."""
        return self._fixed

    def is_fixed(self, address: str) -> bool:
        """Whether a pool must not lease ``address``: it overlaps one fixed on a contract."""
        return self._fixed.overlaps(address)

    def all_nas(self) -> list[NasSnapshot]:
        """Every active NAS (not for the hot path)."""
        return list(self._nas.values())

    def all_pools(self) -> list[PoolSnapshot]:
        """Every pool (not for the hot path)."""
        return list(self._pools.values())

    def plan(self, plan_id: int) -> PlanSnapshot | None:
        return self._plans.get(plan_id)

    def all_plans(self) -> list[PlanSnapshot]:
        return list(self._plans.values())

    def contracts_of_plan(self, plan_id: int) -> list[ContractSnapshot]:
        """The contracts on a plan, as held now (not for the hot path)."""
        by_id = self._by_id
        return [by_id[i] for i in self._by_plan.get(plan_id, ()) if i in by_id]

    def local_now(self) -> datetime:
        """The ISP's wall-clock time (settings.timezone)."""
        return self._clock().astimezone(self.zone)

    def quota_over(self) -> int:
        """Contracts held as over their quota now (metrics)."""
        return sum(
            1 for contract_id in self._over if (c := self._by_id.get(contract_id)) is not None
            and c.quota_state is QuotaState.OVER
        )  # fmt: skip

    def quota_contracts(self) -> int:
        """Contracts whose plan has a quota (metrics; walks the plans' contract sets)."""
        return sum(
            len(self._by_plan.get(plan.id, ())) for plan in self._plans.values() if plan.quota
        )

    def __len__(self) -> int:
        return len(self._by_id)

    # -- loading ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Build everything from the database (start-up, and after a reload)."""
        started = time.monotonic()
        by_id: dict[int, ContractSnapshot] = {}
        now = self.local_now()
        async with self._sessions() as session:
            await self._load_catalogue(session)
            self._over = await authz.quota_over(session, now.date())
            async for snapshot in authz.contracts(session):
                by_id[snapshot.id] = snapshot
        self._windows = {plan.id: plan.window_at(now) for plan in self._plans.values()}
        by_plan: dict[int, set[int]] = {}
        by_username: dict[str, ContractSnapshot] = {}
        by_mac: dict[str, ContractSnapshot] = {}
        fixed = FixedAddresses()
        fixed.watch(_pool_lengths(self._pools.values()))
        for contract_id, stored in by_id.items():
            if stored.plan_id is not None:
                by_plan.setdefault(stored.plan_id, set()).add(contract_id)
                by_id[contract_id] = self._effective(stored, now.date())
        self._by_plan = by_plan
        for snapshot in by_id.values():
            by_username[username_key(snapshot.config.username)] = snapshot
            if snapshot.config.mac:
                by_mac[snapshot.config.mac] = snapshot
            fixed.add_config(snapshot.config)
        self._by_id, self._by_username, self._by_mac = by_id, by_username, by_mac
        self._fixed = fixed
        self.loaded_at = self.changed_at = time.monotonic()
        log.info(
            "authorization index: %d contracts, %d NAS, %d layouts in %.1fs",
            len(by_id),
            len(self._nas),
            len(self._layouts),
            self.loaded_at - started,
        )

    def written(self, entity: str, rows: Sequence[Mapping[str, Any]], *, created: bool) -> None:
        """Rows just written, with all their columns (the services' on_written hook, called
        just before the change event for them): :meth:`changed_many` installs these contracts
        instead of reading them back. Quota states are not contract columns: a new contract
        has none, a changed one keeps its own (the quota keeper reports their changes)."""
        if entity == "contracts":
            for values in rows:
                snapshot = authz.snapshot_of(values)
                self._written[snapshot.id] = (snapshot, created)

    async def changed(self, entity: str, row_id: int) -> None:
        """A committed change (a services listener): refresh what it touched."""
        await self.changed_many(entity, [row_id])

    async def changed_many(self, entity: str, ids: Sequence[int]) -> None:
        """Committed changes to rows ``ids`` of ``entity``: refresh what they touched."""
        if entity == "contracts" and self._written:
            # Contracts this node just wrote: their snapshots came with the commit (see
            # written()); nothing to read back.
            fresh = [self._written.pop(contract_id, None) for contract_id in ids]
            for known in fresh:
                if known is not None:
                    snapshot, created = known
                    if created:
                        self._over.pop(snapshot.id, None)
                    self._put_contract(snapshot.id, snapshot)
            ids = [contract_id for contract_id, got in zip(ids, fresh, strict=True) if got is None]
            if not ids:
                self.changed_at = time.monotonic()
                return
        if entity in ("contracts", "quota"):
            today = self.local_now().date()
            async with self._sessions() as session:
                over = await authz.quota_over(session, today, ids)
                found = await authz.contracts_by_id(session, ids) if entity == "contracts" else {}
            for contract_id in ids:
                if contract_id in over:
                    self._over[contract_id] = over[contract_id]
                else:
                    self._over.pop(contract_id, None)
            if entity == "contracts":
                for contract_id in ids:
                    self._put_contract(contract_id, found.get(contract_id))
            else:
                self._refresh(ids, today)
        elif entity in _CATALOGUE_ENTITIES:
            async with self._sessions() as session:
                plans = await self._load_catalogue(session)
            await self.recompute_plans(plans)
        else:
            return
        self.changed_at = time.monotonic()

    async def _load_catalogue(self, session: AsyncSession) -> set[int]:
        return self.install_catalogue(await read_catalogue(session))

    async def read_catalogue(self) -> Catalogue:
        """NAS, layouts and pools as the database has them now, not installed (a reload builds
        them aside, then swaps them in with :meth:`install_catalogue`)."""
        async with self._sessions() as session:
            return await read_catalogue(session)

    def install_catalogue(self, catalogue: Catalogue) -> set[int]:
        """Replace NAS, client table, layouts, pools and plans; synchronous, so no packet sees
        a mix. Returns the plans that changed: their contracts are given new snapshots by
        :meth:`recompute_plans` (until then they keep the plan as it was)."""
        self._nas = catalogue.nas
        self._layouts = catalogue.layouts
        self._pools = catalogue.pools
        old, self._plans = self._plans, catalogue.plans
        self._fixed.watch(_pool_lengths(catalogue.pools.values()))
        self.clients = catalogue.clients
        self.radsec_clients = catalogue.radsec_clients
        self.radsec_pins = catalogue.radsec_pins
        self.catalogue_version += 1
        return {
            plan_id
            for plan_id in old.keys() | catalogue.plans.keys()
            if old.get(plan_id) != catalogue.plans.get(plan_id)
        }

    # -- plans: what makes contracts' snapshots change without an edit of their own -------------

    def _effective(
        self, stored: ContractSnapshot, today: date, window: int | _InForce | None = IN_FORCE
    ) -> ContractSnapshot:
        """``stored`` (or a snapshot of it) as its plan makes it now; ``window`` (an index or
        None) instead of the plan's window in force, when given."""
        plan = self._plans.get(stored.plan_id) if stored.plan_id is not None else None
        own = stored.stored_config
        if plan is None:
            if stored.plan is None and stored.own_config is None:
                return stored
            return dataclasses.replace(
                stored, config=own, plan=None, quota_state=None, window=None, own_config=None
            )
        state = None
        if plan.quota is not None:
            state = QuotaState.NORMAL
            started = self._over.get(stored.id)
            if started is not None:
                current, _end = quota_period(plan.quota.period, stored.billing_day, today)
                if started == current:
                    state = QuotaState.OVER
        if isinstance(window, _InForce):
            window = self._windows.get(plan.id)
        elif window is not None and not 0 <= window < len(plan.windows):
            window = None  # the windows were edited since
        config = effective_config(own, plan, window, state is QuotaState.OVER)
        own_config = None if config is own else own
        if (
            stored.plan is plan
            and stored.quota_state is state
            and stored.window == window
            and stored.config == config
            and stored.own_config == own_config
        ):
            return stored
        return dataclasses.replace(
            stored,
            config=config,
            plan=plan,
            quota_state=state,
            window=window,
            own_config=own_config,
        )

    def _refresh(self, ids: Iterable[int], today: date) -> dict[int, ContractSnapshot]:
        """Re-derive these contracts from their plans; returns the changed ones as they were."""
        before: dict[int, ContractSnapshot] = {}
        for contract_id in ids:
            old = self._by_id.get(contract_id)
            if old is None:
                continue
            new = self._effective(old, today)
            if new is not old:
                self._replace(old, new)
                before[contract_id] = old
        if before:
            self.changed_at = time.monotonic()
        return before

    def _replace(self, old: ContractSnapshot, new: ContractSnapshot) -> None:
        """Swap a contract's snapshot for one with the same username, MAC and addresses."""
        self._by_id[new.id] = new
        key = username_key(new.config.username)
        if self._by_username.get(key) is old:
            self._by_username[key] = new
        mac = new.config.mac
        if mac and self._by_mac.get(mac) is old:
            self._by_mac[mac] = new

    async def recompute_plans(self, plan_ids: Iterable[int]) -> dict[int, ContractSnapshot]:
        """The plans changed: their windows and contracts follow (a slice at a time).

        Returns the contracts whose snapshot changed, as they were before.
        """
        now = self.local_now()
        before: dict[int, ContractSnapshot] = {}
        for plan_id in plan_ids:
            plan = self._plans.get(plan_id)
            if plan is None:
                self._windows.pop(plan_id, None)
            else:
                self._windows[plan_id] = plan.window_at(now)
            before.update(await self._refresh_sliced(list(self._by_plan.get(plan_id, ())), now))
        return before

    async def apply_windows(self) -> dict[int, ContractSnapshot]:
        """Move every plan whose window in force changed by now (a boundary passed).

        Returns the contracts whose snapshot changed, as they were before.
        """
        now = self.local_now()
        before: dict[int, ContractSnapshot] = {}
        for plan in list(self._plans.values()):
            window = plan.window_at(now)
            if self._windows.get(plan.id) == window:
                continue
            self._windows[plan.id] = window
            before.update(await self._refresh_sliced(list(self._by_plan.get(plan.id, ())), now))
        return before

    async def as_in_window(
        self, plan_id: int, window: int | None
    ) -> dict[int, ContractSnapshot | None]:
        """The plan's contracts as they would be in ``window`` (None: outside every window):
        what their sessions got before a boundary, for the CoA that moves them."""
        today = self.local_now().date()
        contracts = self.contracts_of_plan(plan_id)
        found: dict[int, ContractSnapshot | None] = {}
        for start in range(0, len(contracts), _SLICE):
            if start:
                await asyncio.sleep(0)
            for contract in contracts[start : start + _SLICE]:
                found[contract.id] = self._effective(contract, today, window)
        return found

    def window_of(self, plan_id: int) -> int | None:
        """The window in force for the plan, as the index last evaluated it."""
        return self._windows.get(plan_id)

    async def _refresh_sliced(self, ids: list[int], now: datetime) -> dict[int, ContractSnapshot]:
        before: dict[int, ContractSnapshot] = {}
        for start in range(0, len(ids), _SLICE):
            if start:
                await asyncio.sleep(0)
            before.update(self._refresh(ids[start : start + _SLICE], now.date()))
        return before

    def over_since(self, contract_id: int) -> date | None:
        """Start of the period the contract is held as over its quota in, if it is."""
        return self._over.get(contract_id)

    def set_quota_over(self, changes: Mapping[int, date | None]) -> dict[int, ContractSnapshot]:
        """Contracts went over their cap (the period's start) or back under it (None).

        Returns the contracts whose snapshot changed, as they were before.
        """
        for contract_id, started in changes.items():
            if started is None:
                self._over.pop(contract_id, None)
            else:
                self._over[contract_id] = started
        return self._refresh(changes, self.local_now().date())

    def _put_contract(self, contract_id: int, snapshot: ContractSnapshot | None) -> None:
        old = self._by_id.pop(contract_id, None)
        if old is not None:
            if old.plan_id is not None:
                members = self._by_plan.get(old.plan_id)
                if members is not None:
                    members.discard(contract_id)
            key = username_key(old.config.username)
            if self._by_username.get(key) is old:
                del self._by_username[key]
            if old.config.mac and self._by_mac.get(old.config.mac) is old:
                del self._by_mac[old.config.mac]
            self._fixed.discard_config(old.config)
        if snapshot is None:
            self._over.pop(contract_id, None)
            return
        if snapshot.plan_id is not None:
            self._by_plan.setdefault(snapshot.plan_id, set()).add(contract_id)
            snapshot = self._effective(snapshot, self.local_now().date())
        self._by_id[contract_id] = snapshot
        self._by_username[username_key(snapshot.config.username)] = snapshot
        if snapshot.config.mac:
            self._by_mac[snapshot.config.mac] = snapshot
        self._fixed.add_config(snapshot.config)
