"""Live sessions follow committed changes: CoA or Disconnect after contract and layout edits.

DESIGN §1: side effects happen after the commit. The services call in here once a change is
in the database and the authorization index holds it (they pass what the index held before);
the work itself (finding the contract's open sessions, rendering old and new replies per NAS,
sending) runs in a background task, so a NAS that never answers does not slow the API.

Decisions per session are aaa.coa_plan's; sending is aaa.coa_dispatch's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from radius_contracts.aaa.authorize import Refusal
from radius_contracts.aaa.coa_dispatch import CoaDispatcher, CoaJob
from radius_contracts.aaa.coa_plan import (
    CoaChange,
    DisconnectChange,
    Pairs,
    plan_change,
    plan_layout_change,
)
from radius_contracts.aaa.handler import AccessHandler
from radius_contracts.aaa.replies import RenderedAttribute
from radius_contracts.domain import (
    CoaRecord,
    ContractSnapshot,
    LayoutPurpose,
    NasSnapshot,
    SessionTarget,
)
from radius_contracts.errors import Conflict, NotFound
from radius_contracts.index import AuthIndex, Layouts, resolve_layout, username_key
from radius_contracts.plans import format_clock
from radius_contracts.store import coa as store

__all__ = ["LiveSessions", "Pacer"]

log = logging.getLogger("radius_contracts.aaa.live")

_FIRST_SLICE, _SLICE = 100, 1000  # contracts whose sessions are read and planned at a time


class Pacer:
    """Spaces calls to ``tick`` at most ``rate`` per second (bursts of up to one second's worth
    after idling)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._next = clock()

    async def tick(self) -> None:
        now = self._clock()
        self._next = max(self._next, now - 1.0) + self._interval
        if self._next > now:
            await asyncio.sleep(self._next - now)


def _pairs(rendered: tuple[RenderedAttribute, ...] | Refusal) -> Pairs | str:
    if isinstance(rendered, str):
        return str(rendered)
    return tuple((attribute.name, attribute.value) for attribute in rendered)


def _status_reason(before: ContractSnapshot | None, after: ContractSnapshot) -> str:
    if before is not None and before.status != after.status:
        return f"contract {after.status}"
    if before is not None and before.quota_state != after.quota_state:
        return "data quota used up" if after.quota_state == "over" else "data quota restored"
    if before is not None and before.plan != after.plan:
        if before.plan is not None and after.plan is not None and before.plan.id == after.plan.id:
            if before.window != after.window:
                return f"plan {after.plan.name}: time window {_window_name(after)}"
            return f"plan {after.plan.name} changed"
        return f"plan {after.plan.name if after.plan else 'removed'}"
    if before is not None and before.window != after.window and after.plan is not None:
        return f"plan {after.plan.name}: time window {_window_name(after)}"
    return "contract changed"


def _window_name(contract: ContractSnapshot) -> str:
    if contract.window is None or contract.plan is None:
        return "ended"
    window = contract.plan.windows[contract.window]
    return f"{format_clock(window.start)}-{format_clock(window.end)} began"


def _credentials_reason(before: ContractSnapshot, after: ContractSnapshot) -> str | None:
    """Why a change of login data ends the session (it was authenticated with the old)."""
    old, new = before.config, after.config
    if username_key(old.username) != username_key(new.username):
        return "username changed"
    if old.password != new.password:
        return "password changed"
    if old.mac != new.mac:
        return "MAC binding changed"
    return None


class LiveSessions:
    """Turns committed changes into CoA and Disconnect jobs for the sessions they touch."""

    def __init__(
        self,
        index: AuthIndex,
        handler: AccessHandler,
        sessions: async_sessionmaker[AsyncSession],
        dispatcher: CoaDispatcher,
        *,
        layout_rate: float = 200.0,
        plan_rate: float = 2000.0,
    ) -> None:
        self._index = index
        self._handler = handler
        self._sessions = sessions
        self.dispatcher = dispatcher
        self._layout_rate = layout_rate
        self.plan_rate = plan_rate
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the services call -----------------------------------------------------------------

    def contract(self, contract_id: int) -> ContractSnapshot | None:
        """The contract as the index holds it now (call before a change, pass it after)."""
        return self._index.contract(contract_id)

    def contracts_changed(
        self,
        before: dict[int, ContractSnapshot | None],
        *,
        cause: str = "contract",
        rate: float | None = None,
    ) -> None:
        """Contracts changed (the index already holds them): update their sessions.

        ``before`` maps each contract id to its snapshot before the change (None if new).
        ``cause`` says what changed them (contract, plan, window, quota: counted per cause);
        ``rate`` paces the requests (CoA per second) when many sessions may be touched.
        """
        changed = {
            contract_id: old
            for contract_id, old in before.items()
            if old != self._index.contract(contract_id)
        }
        if changed:
            self._spawn(self._contracts_changed(changed, cause, rate), f"coa-{cause}")

    def contracts_of_plan(self, plan_id: int) -> list[ContractSnapshot]:
        """The plan's contracts as the index holds them now (call before a plan change)."""
        return self._index.contracts_of_plan(plan_id)

    def plan_changed(self, before: dict[int, ContractSnapshot | None]) -> None:
        """A plan was committed: its contracts' sessions follow, paced at ``plan_rate``."""
        self.contracts_changed(before, cause="plan", rate=self.plan_rate)

    def disconnect(self, targets: Sequence[SessionTarget], reason: str) -> list[CoaJob]:
        """Disconnect these sessions (e.g. of a contract about to be deleted)."""
        jobs = []
        for target in targets:
            nas = self._nas_of(target)
            if nas is not None:
                job = CoaJob(target, nas, "disconnect", reason)
                self.dispatcher.submit(job)
                jobs.append(job)
        return jobs

    async def open_sessions_of(self, contract_ids: Iterable[int]) -> list[SessionTarget]:
        async with self._sessions() as session:
            return await store.open_sessions_of(session, contract_ids)

    async def disconnect_contracts(self, contract_ids: Sequence[int], reason: str) -> int:
        """Disconnect every open session of these contracts; returns how many were asked."""
        return len(self.disconnect(await self.open_sessions_of(contract_ids), reason))

    async def disconnect_session(self, session_id: int, reason: str) -> asyncio.Future[CoaRecord]:
        """Disconnect one open session; the future resolves with how the NAS answered.

        NotFound when there is no such session, Conflict when it is no longer open or its NAS
        is not active.
        """
        async with self._sessions() as session:
            target = await store.open_session(session, session_id)
            if target is None:
                if await store.session_exists(session, session_id):
                    raise Conflict(f"session {session_id} is not online", field="id")
                raise NotFound(f"session {session_id} does not exist")
        nas = self._nas_of(target)
        if nas is None:
            raise Conflict(f"the NAS of session {session_id} is not active", field="id")
        job = CoaJob(target, nas, "disconnect", reason)
        outcome = job.wait()
        self.dispatcher.submit(job)
        return outcome

    def layouts(self) -> Layouts:
        """The layouts in use now (call before a change, pass it to layouts_changed after)."""
        return self._index.layouts

    def layouts_changed(self, before: Layouts) -> None:
        """Layouts were committed: CoA every online session whose reply they change."""
        if before is not self._index.layouts:
            self._spawn(self._layouts_changed(before), "coa-layouts")

    async def close(self, grace: float) -> None:
        """Finish planning and sending (bounded by ``grace`` seconds), then stop."""
        deadline = time.monotonic() + grace
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
        await self.dispatcher.close(max(0.0, deadline - time.monotonic()))

    # -- the background work ------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._logged(work), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _logged(work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            log.exception("could not bring live sessions up to date")

    def _nas_of(self, target: SessionTarget) -> NasSnapshot | None:
        nas = self._index.nas(target.nas_id) if target.nas_id is not None else None
        if nas is None:
            log.info("session %d: its NAS is not active; nothing sent", target.id)
        return nas

    async def _contracts_changed(
        self, before: dict[int, ContractSnapshot | None], cause: str, rate: float | None
    ) -> None:
        ids = list(before)
        pacer = Pacer(rate) if rate is not None else None
        # A bulk change touches thousands of contracts: read and plan them a slice at a time,
        # a small one first, so the first requests are on their way while the rest is read.
        start, size = 0, _FIRST_SLICE
        while start < len(ids):
            part, start, size = ids[start : start + size], start + size, _SLICE
            for target in await self.open_sessions_of(part):
                assert target.contract_id is not None
                nas = self._nas_of(target)
                if nas is None:
                    continue
                old = before[target.contract_id]
                change = self._plan_contract(old, self._index.contract(target.contract_id), nas)
                if change is None:
                    continue
                if isinstance(change, DisconnectChange):
                    job = CoaJob(target, nas, "disconnect", change.reason, cause=cause)
                else:
                    fallback = nas.coa.disconnect_fallback
                    job = CoaJob(
                        target, nas, "coa", change.reason, change.attributes, fallback, cause=cause
                    )
                if pacer is not None:
                    await pacer.tick()
                self.dispatcher.submit(job)

    def _plan_contract(
        self, before: ContractSnapshot | None, after: ContractSnapshot | None, nas: NasSnapshot
    ) -> CoaChange | DisconnectChange | None:
        if after is None:
            return DisconnectChange("contract deleted")
        if before is not None:
            reason = _credentials_reason(before, after)
            if reason is not None:
                return DisconnectChange(reason)
        old = None
        if before is not None:
            rendered = _pairs(self._handler.rendered_reply(before, nas))
            old = None if isinstance(rendered, str) else rendered
        new = _pairs(self._handler.rendered_reply(after, nas))
        return plan_change(old, new, nas.coa, _status_reason(before, after))

    async def _layouts_changed(self, before: Layouts) -> None:
        after = self._index.layouts
        reasons: dict[int, str] = {}  # manufacturer id → why its sessions get a CoA
        for nas in self._index.all_nas():
            names = set()
            for purpose in LayoutPurpose:
                old = resolve_layout(before, nas.manufacturer_id, purpose)
                new = resolve_layout(after, nas.manufacturer_id, purpose)
                if (old.rows if old else None) != (new.rows if new else None):
                    named = new or old
                    names.add(named.name if named is not None else purpose.value)
            if names:
                reasons[nas.manufacturer_id] = f"layout {', '.join(sorted(names))} changed"
        nas_ids = [nas.id for nas in self._index.all_nas() if nas.manufacturer_id in reasons]
        if not nas_ids:
            return
        async with self._sessions() as session:
            targets = await store.open_sessions_on(session, nas_ids)
        # Paced outside the read: a large edit takes minutes at layout_rate.
        pacer = Pacer(self._layout_rate)
        sent = 0
        for target in targets:
            job = self._plan_layout(target, before, reasons)
            if job is not None:
                await pacer.tick()
                self.dispatcher.submit(job)
                sent += 1
        log.info("layout change: CoA for %d online sessions", sent)

    def _plan_layout(
        self, target: SessionTarget, before: Layouts, reasons: dict[int, str]
    ) -> CoaJob | None:
        nas = self._nas_of(target)
        contract = self._index.contract(target.contract_id) if target.contract_id else None
        if nas is None or contract is None or nas.manufacturer_id not in reasons:
            return None
        old = _pairs(self._handler.rendered_reply(contract, nas, before))
        new = _pairs(self._handler.rendered_reply(contract, nas))
        if isinstance(old, str) or isinstance(new, str):
            return None  # refused before or now: contract changes handle that, not layouts
        change = plan_layout_change(old, new, nas.coa, reasons[nas.manufacturer_id])
        if change is None:
            return None
        return CoaJob(target, nas, "coa", change.reason, change.attributes, cause="layout")
