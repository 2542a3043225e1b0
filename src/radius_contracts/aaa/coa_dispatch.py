"""Sends CoA and Disconnect-Requests for sessions, one at a time per session, and logs outcomes.

Jobs come from aaa.live after a change is committed. Each session has at most one request in
flight: a job for a session that is busy waits, and a newer job replaces a waiting one (a
Disconnect is never replaced by a CoA), so a NAS never applies an older change after a newer
one. The RADIUS client (radius.coa.CoaSender) bounds how many requests are outstanding and
retransmits; this module adds the fallback (a refused or unanswered CoA becomes a Disconnect
when the manufacturer's policy says so) and writes every outcome to the CoA log.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Literal, Protocol

from radius_contracts.aaa.coa_plan import (
    CoaError,
    Pairs,
    destination,
    encode_pairs,
    identification,
)
from radius_contracts.domain import CoaRecord, NasSnapshot, SessionTarget
from radius_contracts.radius import codec
from radius_contracts.radius.coa import CoaResult
from radius_contracts.radius.dictionary import AttributeSpec

__all__ = ["CoaDispatcher", "CoaJob", "Sender"]

log = logging.getLogger("radius_contracts.aaa.coa")

Kind = Literal["coa", "disconnect"]
_CODES = {"coa": codec.Code.COA_REQUEST, "disconnect": codec.Code.DISCONNECT_REQUEST}


class Sender(Protocol):
    """Sends one request and waits for its answer (radius.coa.CoaSender; with RadSec,
    radius.radsec.RadsecCoaSender, which sends over the NAS's TLS connection when it has one).

    ``route`` gives the NAS's UDP address and port; it is asked only when the request goes by
    UDP, so a NAS reachable over its RadSec connection needs none (a NAS known by a network
    whose session reported no NAS-IP-Address). What ``route`` raises reaches the caller."""

    async def send_to(
        self,
        nas_id: int,
        route: Callable[[], tuple[str, int]],
        secret: bytes,
        code: int,
        attributes: bytes,
    ) -> CoaResult: ...


@dataclass(slots=True)
class CoaJob:
    """One request to send for one session."""

    target: SessionTarget
    nas: NasSnapshot
    kind: Kind
    reason: str
    attributes: Pairs = ()  # what a CoA changes (the identification is added when sent)
    fallback: bool = False  # a CoA that is not ACKed is followed by a Disconnect
    cause: str = "contract"  # what asked for it: contract, layout, plan, window, quota, …
    # Resolved with the last record written for this job (its fallback's, if it had one).
    waiters: list[asyncio.Future[CoaRecord]] = field(default_factory=list)

    def wait(self) -> asyncio.Future[CoaRecord]:
        future: asyncio.Future[CoaRecord] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        return future


class CoaDispatcher:
    """See the module docstring. ``record`` receives every outcome (e.g. a BatchLog)."""

    def __init__(
        self,
        sender: Sender,
        lookup: Callable[[str], AttributeSpec | None],
        record: Callable[[CoaRecord], None],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sender = sender
        self._lookup = lookup
        self._record = record
        self._clock = clock
        self._busy: set[int] = set()  # session ids with a request in flight
        self._waiting: dict[int, CoaJob] = {}  # session id → the job to send next
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (kind, outcome) → count
        # (cause, kind, outcome) → count; e.g. quota changes' CoA by how they ended.
        self.by_cause: Counter[tuple[str, str, str]] = Counter()
        self.superseded = 0  # waiting jobs replaced by newer ones

    @property
    def pending(self) -> int:
        """Sessions with a request in flight or waiting."""
        return len(self._busy) + len(self._waiting)

    def submit(self, job: CoaJob) -> None:
        """Send ``job`` as soon as its session has nothing else in flight."""
        session_id = job.target.id
        if session_id not in self._busy:
            self._busy.add(session_id)
            self._idle.clear()
            task = asyncio.get_running_loop().create_task(self._run(job), name="coa")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        waiting = self._waiting.get(session_id)
        if waiting is not None:
            self.superseded += 1
            if waiting.kind == "disconnect" and job.kind == "coa":
                # The session is being ended anyway; the CoA's waiters learn how that went.
                waiting.waiters += job.waiters
                return
            job.waiters += waiting.waiters
        self._waiting[session_id] = job

    async def _run(self, job: CoaJob) -> None:
        session_id = job.target.id
        try:
            current: CoaJob | None = job
            while current is not None:
                await self._send_job(current)
                current = self._waiting.pop(session_id, None)
        finally:
            self._busy.discard(session_id)
            if not self._busy:
                self._idle.set()

    async def _send_job(self, job: CoaJob) -> None:
        try:
            record = await self._send(job, job.kind, job.reason, job.attributes)
            if record.outcome != "ack" and job.kind == "coa" and job.fallback:
                cause = f" (Error-Cause {record.error_cause})" if record.error_cause else ""
                reason = f"{job.reason}; CoA {record.outcome}{cause}"
                record = await self._send(job, "disconnect", reason, ())
        except Exception as exc:  # a bug, not the NAS: keep the dispatcher alive
            log.exception("CoA for session %d failed", job.target.id)
            for waiter in job.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for waiter in job.waiters:
            if not waiter.done():
                waiter.set_result(record)

    async def _send(self, job: CoaJob, kind: Kind, reason: str, changes: Pairs) -> CoaRecord:
        target, nas = job.target, job.nas
        requested = self._clock()
        pairs: Pairs = changes
        try:
            pairs = identification(target, nas.coa) + changes
            data = encode_pairs(self._lookup, pairs)
            result = await self._sender.send_to(
                nas.id, partial(destination, nas, target), nas.secret.encode(), _CODES[kind], data
            )
        except CoaError as exc:
            return self._done(job, kind, reason, pairs, requested, ("error", None, 0), str(exc))
        outcome = (result.outcome, result.error_cause, result.attempts)
        return self._done(job, kind, reason, pairs, requested, outcome, None)

    def _done(
        self,
        job: CoaJob,
        kind: Kind,
        reason: str,
        pairs: Pairs,
        requested: datetime,
        result: tuple[str, int | None, int],  # outcome, Error-Cause, attempts
        detail: str | None,
    ) -> CoaRecord:
        outcome, error_cause, attempts = result
        record = CoaRecord(
            session_id=job.target.id,
            contract_id=job.target.contract_id,
            nas_id=job.nas.id,
            kind=kind,
            reason=reason,
            attributes=pairs,
            requested_at=requested,
            finished_at=self._clock(),
            outcome=outcome,
            error_cause=error_cause,
            attempts=attempts,
            detail=detail,
        )
        self.outcomes[(kind, outcome)] += 1
        self.by_cause[(job.cause, kind, outcome)] += 1
        if outcome != "ack":
            log.info(
                "%s for session %d on NAS %s: %s%s%s",
                "CoA" if kind == "coa" else "Disconnect",
                job.target.id,
                job.nas.name,
                outcome,
                f" (Error-Cause {error_cause})" if error_cause else "",
                f": {detail}" if detail else "",
            )
        self._record(record)
        return record

    async def close(self, grace: float) -> None:
        """Let requests in flight finish for up to ``grace`` seconds, then cancel the rest."""
        for job in self._waiting.values():
            for waiter in job.waiters:
                waiter.cancel()
        self._waiting.clear()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("stopping with %d CoA requests unanswered", len(self._busy))
            for task in list(self._tasks):
                task.cancel()
