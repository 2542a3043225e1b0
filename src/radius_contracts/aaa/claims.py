"""Simultaneous use decided once for every node and worker process: login claims.

One process alone decides from its in-memory session view (aaa.sessions), which nothing else
changes behind its back; so do the worker processes of a node that no other node shares the
database with, by asking their main process's view (workers.claims). Where several nodes
decide — nodes sharing a PostgreSQL database — two logins of one contract at the same moment
could each see a free place in their own view. So there, a login of a contract with a limit
is decided in the database: the decisions queued meanwhile go into one transaction (group
commit, as accounting), which locks their contracts, reads their open sessions and unexpired
claims, decides each login in arrival order with the same rule as the view
(sessions.occupied), and records a claim for each accepted one. Contracts without a limit,
and single-process daemons, never come here.

While the database cannot be reached, ``offline`` decides: ``local`` (the default) checks the
in-memory view, which has every node's sessions up to the outage (the change feed and the
periodic refresh bring them) and this process's own logins since; ``refuse`` refuses every
login of a contract with a limit. Each decision is counted by how it was made.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from radius_contracts.aaa.authorize import Refusal
from radius_contracts.aaa.sessions import (
    OpenSession,
    SessionView,
    limit_reached,
    occupied,
    same_place,
)
from radius_contracts.db.engine import is_sqlite
from radius_contracts.db.models import LoginClaim
from radius_contracts.db.writer import write_transaction
from radius_contracts.logging import RateLimitedLog
from radius_contracts.store import claims as store

__all__ = ["Claim", "ClaimDecider", "LoginClaims", "Offline", "decided_in_database"]

log = logging.getLogger("radius_contracts.aaa.claims")

Offline = Literal["local", "refuse"]
_MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class Claim:
    """An accepted login's place; ``id`` None when it was decided without the database."""

    id: int | None


_Item = tuple[int, int, OpenSession, "asyncio.Future[Claim | Refusal]"]


class ClaimDecider(Protocol):
    """What the handler asks where several processes decide: LoginClaims (the database) or,
    in a worker process, workers.claims.MainProcessClaims (the main process's view)."""

    decided: Counter[str]  # decisions by how they were made, for /metrics

    def decide(
        self, contract_id: int, limit: int, login: OpenSession
    ) -> Awaitable[Claim | Refusal]: ...

    async def withdraw(self, contract_id: int, login: OpenSession, claim: Claim) -> None: ...


def decided_in_database(decisions: str, database_url: str) -> bool:
    """Whether logins of contracts with a limit are decided in the database
    (``[accounting] simultaneous_use_decisions``): "auto" means where other nodes may decide
    too, i.e. on PostgreSQL. Elsewhere one process's view decides: the daemon's own, which
    its worker processes ask (workers.claims)."""
    if decisions == "auto":
        return not is_sqlite(database_url)
    return decisions == "database"


class LoginClaims:
    """See the module docstring. ``run`` is the writer loop; ``decide`` queues a login."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        view: SessionView,
        *,
        node: str,
        start_wait: float,
        offline: Offline = "local",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._view = view
        self._node = node
        self._start_wait = timedelta(seconds=start_wait)
        self.offline = offline
        self._clock = clock
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._warn = RateLimitedLog(log)
        # Decisions by how they were made: database, local (view, database unreachable),
        # refused (database unreachable, offline = refuse); for /metrics.
        self.decided: Counter[str] = Counter()

    def decide(
        self, contract_id: int, limit: int, login: OpenSession
    ) -> asyncio.Future[Claim | Refusal]:
        """Whether ``login`` may take a place of the contract's ``limit``: a Claim, or why not."""
        future: asyncio.Future[Claim | Refusal] = asyncio.get_running_loop().create_future()
        self._queue.append((contract_id, limit, login, future))
        self._wakeup.set()
        return future

    async def withdraw(self, contract_id: int, login: OpenSession, claim: Claim) -> None:
        """The login was refused after all (its pool was exhausted): free its place."""
        self._view.withdraw(contract_id, login)
        if claim.id is None:
            return
        try:
            async with write_transaction(self._sessions) as session:
                await store.withdraw(session, claim.id)
        except Exception as exc:  # it expires with start_wait anyway
            self._warn.warning("withdraw", "could not take back a login claim: %r", exc)

    async def run(self) -> None:
        while not (self._closing and not self._queue):
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), _MAX_BATCH))]
            try:
                results = await self._decide_in_database(batch)
                how = "database"
            except Exception as exc:
                self._warn.warning(
                    "offline",
                    "simultaneous use decided without the database (%s): %r",
                    self.offline,
                    exc,
                )
                results = [self._decide_offline(item) for item in batch]
                how = "local" if self.offline == "local" else "refused"
            for (contract_id, _limit, login, future), result in zip(batch, results, strict=True):
                self.decided[how] += 1
                if isinstance(result, Claim):
                    # This process's view counts its own logins too (for the offline rule).
                    self._view.admit(contract_id, login)
                elif how == "database":
                    self._view.refused += 1
                if not future.done():
                    future.set_result(result)

    def close(self) -> None:
        """Stop once the queue is empty (shutdown)."""
        self._closing = True
        self._wakeup.set()

    def _decide_offline(self, item: _Item) -> Claim | Refusal:
        contract_id, limit, login, _future = item
        if self.offline == "refuse":
            return Refusal("simultaneous use cannot be checked: the database is unreachable")
        refusal = self._view.check(contract_id, limit, login)
        return refusal if refusal is not None else Claim(None)

    async def _decide_in_database(self, batch: list[_Item]) -> list[Claim | Refusal]:
        now = self._clock()
        expires = now + self._start_wait
        ids = [contract_id for contract_id, _limit, _login, _future in batch]
        async with write_transaction(self._sessions) as session:
            # A write first: on SQLite it takes the write lock now, so this transaction
            # never has to turn a read lock into a write lock behind another process's.
            await session.execute(delete(LoginClaim).where(LoginClaim.expires_at <= now))
            await store.lock(session, ids)
            sessions: dict[int, list[OpenSession]] = {}
            for row in await store.open_sessions_of(session, ids):
                sessions.setdefault(row.contract_id, []).append(
                    OpenSession(
                        row.nas_id,
                        row.key,
                        row.started_at,
                        row.station,
                        row.nas_port,
                        row.nas_port_id,
                    )
                )
            pending: dict[int, list[tuple[int | None, OpenSession]]] = {}
            for claim in await store.claims_of(session, ids, now):
                waiting = OpenSession(claim.nas_id or 0, "", None, claim.station, claim.nas_port,
                                      claim.nas_port_id, math.inf)  # fmt: skip
                pending.setdefault(claim.contract_id, []).append((claim.id, waiting))
            results: list[Claim | Refusal | None] = []
            added: list[dict[str, object]] = []
            replaced: list[int] = []
            for contract_id, limit, login, _future in batch:
                theirs = pending.setdefault(contract_id, [])
                taken = occupied(sessions.get(contract_id, ()), [p for _, p in theirs], login, 0.0)
                if taken >= limit:
                    results.append(limit_reached(limit))
                    continue
                # A login from a place already claimed takes that claim over (re-authentication).
                replaced += [i for i, p in theirs if i is not None and same_place(p, login)]
                theirs[:] = [(i, p) for i, p in theirs if not same_place(p, login)]
                claimed = OpenSession(
                    login.nas_id, "", None, login.calling_station_id, login.nas_port,
                    login.nas_port_id, math.inf,
                )  # fmt: skip
                theirs.append((None, claimed))
                added.append(
                    {
                        "contract_id": contract_id,
                        "nas_id": login.nas_id,
                        "station": login.calling_station_id,
                        "nas_port": login.nas_port,
                        "nas_port_id": login.nas_port_id,
                        "node": self._node,
                        "claimed_at": now,
                        "expires_at": expires,
                    }
                )
                results.append(None)  # a claim, its id known once recorded
            claim_ids = iter(await store.record(session, added, replaced))
        return [Claim(next(claim_ids)) if result is None else result for result in results]
