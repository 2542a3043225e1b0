"""Managed pools: the address or prefix a contract gets at Access-Accept.

:meth:`Leaser.lease` offers an address (ipv4), a prefix (ipv6) or a delegated prefix (ipv6-pd)
for ``offer_timeout`` seconds; the accounting writer then calls :func:`bind` at
Accounting-Start and Interim-Update (held for the pool's ``lease_time``) and :func:`release` at
Accounting-Stop, inside its own transaction. :meth:`Leaser.expire` is the periodic job.

What a contract gets, in order: its own row again (sticky: the address it had last), else an
address no one ever leased, else the one that has been free the longest. Addresses fixed on
contracts are never leased. Pools are never listed whole: an IPv6 /32 of /64s has 2^32
candidates, so never-leased ones come from a cursor walking the pool in order, a batch at a
time, with the unique (pool, address) constraint deciding between daemon nodes that pick the
same one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from radius_contracts.db.types import utcnow
from radius_contracts.db.writer import write_transaction
from radius_contracts.domain import PoolFamily, PoolMode, PoolSnapshot
from radius_contracts.errors import RadiusContractsError
from radius_contracts.store import leases
from radius_contracts.store.leases import bind, release

__all__ = ["Leaser", "PoolExhausted", "PoolSpace", "bind", "release"]

log = logging.getLogger("radius_contracts.aaa")

_FIRST_BATCH = 64  # candidates checked against the database at once, doubled while all taken
_MAX_BATCH = 4096
_OWN_ROWS = 8
_RECLAIM_ROWS = 4
# Once a node has walked a whole pool, no never-leased address is left: rows are never
# deleted. Only an address no longer fixed (or an insert rolled back) can turn up again, so
# the walk starts over only when the pool would otherwise be exhausted, at most this often.
# A changed pool gets a new cursor at once.
_RESCAN = 600.0
_WARN_EVERY = 60.0


class PoolExhausted(RadiusContractsError):
    """No address of the pool is free: the Access-Request is to be rejected."""

    def __init__(self, pool: str) -> None:
        super().__init__(f"pool {pool!r} has no free address")
        self.pool = pool


@dataclass(frozen=True, slots=True)
class PoolSpace:
    """What a pool can lease, in order, computed from its ranges instead of listed.

    IPv4: every address of each range, except the network and broadcast addresses of ranges
    shorter than /31 (RFC 3021 point-to-point /31s and single /32s use every address). IPv6:
    every prefix of ``prefix_length`` in each range. Positions run over the ranges in the
    order given.
    """

    version: int
    prefix_length: int
    # (position of the first, its value as an int, how many) per range
    segments: tuple[tuple[int, int, int], ...]
    size: int

    @classmethod
    def of(
        cls, family: PoolFamily | str, ranges: Iterable[str], prefix_length: int | None
    ) -> PoolSpace:
        segments: list[tuple[int, int, int]] = []
        size = 0
        if PoolFamily(family) is PoolFamily.IPV4:
            version, length = 4, 32
            for text in ranges:
                network4 = ipaddress.IPv4Network(text, strict=False)
                first, count = int(network4.network_address), network4.num_addresses
                if network4.prefixlen < 31:
                    first, count = first + 1, count - 2
                segments.append((size, first, count))
                size += count
        else:
            version, length = 6, prefix_length or 64
            for text in ranges:
                network6 = ipaddress.IPv6Network(text, strict=False)
                if network6.prefixlen > length:
                    continue  # smaller than one lease (services.pools refuses these)
                count = 1 << (length - network6.prefixlen)
                segments.append((size, int(network6.network_address), count))
                size += count
        return cls(version, length, tuple(segments), size)

    @classmethod
    def of_pool(cls, pool: PoolSnapshot) -> PoolSpace:
        return cls.of(pool.family, pool.ranges, pool.prefix_length)

    @property
    def _step(self) -> int:
        return 1 << ((32 if self.version == 4 else 128) - self.prefix_length)

    def at(self, position: int) -> str:
        """The canonical address or prefix at ``position`` (0 ≤ position < size)."""
        if not 0 <= position < self.size:
            raise IndexError(position)
        return self.span(position, position + 1)[0]

    def span(self, start: int, stop: int) -> list[str]:
        """The canonical addresses or prefixes at positions ``start`` to ``stop - 1``.

        A node walks thousands at a time through a mostly leased pool, so this formats with
        inet_ntop (C) rather than ipaddress: 0.5 µs instead of 1.4 (IPv4) or 4.7 (IPv6).
        """
        found: list[str] = []
        step = self._step
        for begin, first, count in self.segments:
            low, high = max(start, begin), min(stop, begin + count)
            if low >= high:
                continue
            values = range(first + (low - begin) * step, first + (high - begin) * step, step)
            if self.version == 4:
                ntoa = socket.inet_ntoa
                found.extend(ntoa(value.to_bytes(4, "big")) for value in values)
            else:
                suffix = f"/{self.prefix_length}"
                found.extend(_ipv6_text(value) + suffix for value in values)
        return found

    def __contains__(self, address: object) -> bool:
        """Whether ``address`` (canonical text) is one this pool leases now."""
        if not isinstance(address, str):
            return False
        try:
            if self.version == 4:
                value = int(ipaddress.IPv4Address(address))
            else:
                network = ipaddress.IPv6Network(address, strict=True)
                if network.prefixlen != self.prefix_length:
                    return False
                value = int(network.network_address)
        except ValueError:
            return False
        step = self._step
        return any(first <= value < first + count * step for _, first, count in self.segments)


def _ipv6_text(value: int) -> str:
    text = socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))
    # The C library writes ::/96 and ::ffff:0:0/96 with a dotted tail; ipaddress does not.
    return str(ipaddress.IPv6Address(value)) if "." in text else text


class _Cursor:
    """Where this node is in its walk over a pool for never-leased addresses."""

    __slots__ = ("batch", "done_at", "key", "next", "queue", "refill", "space")

    def __init__(self, key: tuple[object, ...], space: PoolSpace) -> None:
        self.key = key
        self.space = space
        self.next = 0  # the next position not yet checked against the database
        self.queue: deque[str] = deque()  # checked: had no lease row then
        self.batch = _FIRST_BATCH
        self.done_at: float | None = None  # monotonic time the walk reached the end
        self.refill = asyncio.Lock()

    def rewind(self) -> bool:
        """Start the walk over if it ended long enough ago; whether it did."""
        if self.done_at is None or time.monotonic() - self.done_at < _RESCAN:
            return False
        self.next, self.done_at, self.batch = 0, None, _FIRST_BATCH
        return True


class Leaser:
    """Leases addresses of managed pools to contracts; safe with several nodes on one database.

    ``is_fixed(address)`` tells whether a canonical address or prefix is fixed on some contract
    (AuthIndex.is_fixed). ``exhausted`` counts, per pool name, the leases refused for want of
    a free address.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        offer_timeout: float,
        is_fixed: Callable[[str], bool],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._offer = timedelta(seconds=offer_timeout)
        self._is_fixed = is_fixed
        self._clock = clock
        self._cursors: dict[int, _Cursor] = {}
        self._warned: dict[str, float] = {}
        self.exhausted: dict[str, int] = {}
        bind_to = sessions.kw.get("bind")
        # SQLite's leases queue with the process's other writers (db.writer); PostgreSQL
        # runs them concurrently, each locking the rows it takes.
        self._row_locks = not (
            isinstance(bind_to, AsyncEngine) and bind_to.dialect.name == "sqlite"
        )

    async def lease(self, pool: PoolSnapshot, contract_id: int, *, share: bool = True) -> str:
        """Offer the contract an address of ``pool``: canonical text, e.g. ``10.0.0.5`` or
        ``2001:db8:0:1::/64``, held for ``offer_timeout`` seconds.

        ``share``: the contract's currently held lease may be handed out again (a single
        session authenticating again). Without it the contract gets an address it does not
        hold yet (another simultaneous session). Raises PoolExhausted when none is free.
        """
        if pool.mode is not PoolMode.MANAGED or not pool.id:
            raise ValueError(f"pool {pool.name!r} is not a managed pool")
        cursor = self._cursor(pool)
        now = self._clock()
        until = now + self._offer
        async with write_transaction(self._sessions) as session:
            address = await self._own(
                session, pool.id, cursor.space, contract_id, now, until, share
            )
            if address is None:
                address = await self._fresh(session, pool.id, cursor, contract_id, now, until)
            if address is None:
                address = await self._reclaim(
                    session, pool.id, cursor.space, contract_id, now, until
                )
            if address is None and cursor.rewind():
                address = await self._fresh(session, pool.id, cursor, contract_id, now, until)
        if address is None:
            self._exhausted(pool.name)
            raise PoolExhausted(pool.name)
        return address

    def exhausted_error(self, exc: BaseException) -> str | None:
        """The pool's name when ``exc`` is PoolExhausted, else None (handler.Leases)."""
        return exc.pool if isinstance(exc, PoolExhausted) else None

    async def expire(self) -> int:
        """The job: offered and bound leases past their time become expired; returns how many."""
        now = self._clock()
        async with self._sessions() as session:
            if not await leases.any_expiring(session, now):
                return 0  # most turns: no write transaction, no write lock (see close_stale)
        async with write_transaction(self._sessions) as session:
            return await leases.expire(session, now)

    # -- the three sources, in order of preference ----------------------------------------------

    async def _own(
        self,
        session: AsyncSession,
        pool_id: int,
        space: PoolSpace,
        contract_id: int,
        now: datetime,
        until: datetime,
        share: bool,
    ) -> str | None:
        rows = await leases.own(
            session, pool_id, contract_id, now, free_only=not share, limit=_OWN_ROWS
        )
        for lease_id, address in rows:
            if address in space and not self._is_fixed(address):
                taken = await leases.retake(
                    session, lease_id, contract_id, now, until, free_only=not share
                )
                if taken is not None:
                    return taken
        return None

    async def _fresh(
        self,
        session: AsyncSession,
        pool_id: int,
        cursor: _Cursor,
        contract_id: int,
        now: datetime,
        until: datetime,
    ) -> str | None:
        while True:
            address = await self._candidate(session, pool_id, cursor)
            if address is None:
                return None
            if self._is_fixed(address):
                continue  # fixed since its batch was read
            try:
                if await leases.insert(session, pool_id, address, contract_id, now, until):
                    return address
            except BaseException:
                cursor.queue.appendleft(address)
                raise
            # Another node leased it since its batch was read: try the next one.

    async def _candidate(self, session: AsyncSession, pool_id: int, cursor: _Cursor) -> str | None:
        """The next address this node has not seen leased, or None when the walk is done."""
        while not cursor.queue:
            async with cursor.refill:
                if cursor.queue:
                    break
                space = cursor.space
                if cursor.next >= space.size:
                    if cursor.done_at is None:
                        cursor.done_at = time.monotonic()
                    return None
                start = cursor.next
                cursor.next = min(start + cursor.batch, space.size)
                batch = [a for a in space.span(start, cursor.next) if not self._is_fixed(a)]
                used = await leases.existing(session, pool_id, batch)
                cursor.queue.extend(address for address in batch if address not in used)
                cursor.batch = _FIRST_BATCH if cursor.queue else min(cursor.batch * 2, _MAX_BATCH)
        return cursor.queue.popleft()

    async def _reclaim(
        self,
        session: AsyncSession,
        pool_id: int,
        space: PoolSpace,
        contract_id: int,
        now: datetime,
        until: datetime,
    ) -> str | None:
        skip: list[int] = []  # rows seen unusable, or taken by others meanwhile
        while True:
            # One row at a time, locked (PostgreSQL): a racing transaction skips it and
            # locks the next, so each takes a different one without waiting.
            rows = await leases.reclaimable(session, pool_id, now, skip=skip)
            if not rows and self._row_locks:
                # Every free row is locked by racing transactions, which may not all take
                # theirs (or may roll back): wait for them on the rows still usable here.
                rows = await leases.reclaimable(
                    session, pool_id, now, limit=_RECLAIM_ROWS, skip=skip, lock=False
                )
            if not rows:
                return None
            for lease_id, address in rows:
                if address in space and not self._is_fixed(address):
                    # The WHERE re-checks that the row is still free.
                    taken = await leases.take(session, lease_id, contract_id, now, until)
                    if taken is not None:
                        return taken
                skip.append(lease_id)  # fixed, outside the pool's ranges now, or taken

    # -- helpers -----------------------------------------------------------------------------

    def _cursor(self, pool: PoolSnapshot) -> _Cursor:
        key = (pool.family, pool.ranges, pool.prefix_length)
        cursor = self._cursors.get(pool.id)
        if cursor is None or cursor.key != key:
            cursor = _Cursor(key, PoolSpace.of_pool(pool))
            self._cursors[pool.id] = cursor
        return cursor

    def _exhausted(self, name: str) -> None:
        self.exhausted[name] = self.exhausted.get(name, 0) + 1
        now = time.monotonic()
        if now - self._warned.get(name, -_WARN_EVERY) >= _WARN_EVERY:
            self._warned[name] = now
            log.warning(
                "pool %r is exhausted: %d leases refused so far", name, self.exhausted[name]
            )
