"""Who is online, in memory: the simultaneous-use check at Access-Request without the database.

The view holds every open session per contract, loaded at start and updated after each
committed accounting batch (and, with several nodes on PostgreSQL, reloaded periodically to
see the sessions other nodes recorded). Logins accepted but not yet confirmed by an
Accounting-Start count too, for a while, so two routers dialling in at once cannot both get
in. A re-authentication from the place a session already occupies (same Calling-Station-Id,
or same NAS and port) replaces that session instead of counting against it: the NAS lost
the old one (RFC 5080 §2.2.1 retransmits aside, this is the common stale case).

The check never fails open: until the view is loaded, or when it could not be refreshed,
contracts with a limit are refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from radius_contracts.aaa.authorize import Refusal
from radius_contracts.domain import station_key
from radius_contracts.store.accounting import Applied, SessionState

__all__ = ["NOT_READY", "OpenSession", "SessionView"]

NOT_READY = Refusal("session state is not available; simultaneous use cannot be checked")
"""Why a login of a contract with a limit is refused before the session view has loaded."""


@dataclass(slots=True)
class OpenSession:
    """An open session as the check sees it (also an accepted login awaiting its Start).

    ``calling_station_id`` is kept normalised (see station_key): sessions are compared many
    times, and are made once.
    """

    nas_id: int
    key: str  # Acct-Session-Id; "" for a login awaiting its Start
    started_at: datetime | None
    calling_station_id: str | None
    nas_port: int | None
    nas_port_id: str | None
    expires: float = 0.0  # monotonic deadline of a login awaiting its Start

    def __post_init__(self) -> None:
        self.calling_station_id = station_key(self.calling_station_id)

    @property
    def place(self) -> tuple[int, str | None, int | None, str | None]:
        """Where it comes from: NAS, station, NAS-Port, NAS-Port-Id (how a worker process names
        a login to the main process, workers.claims)."""
        return (self.nas_id, self.calling_station_id, self.nas_port, self.nas_port_id)


def same_place(a: OpenSession, b: OpenSession) -> bool:
    """Whether two sessions come from the same subscriber device or the same NAS port."""
    station = a.calling_station_id
    if station is not None and station == b.calling_station_id:
        return True
    if a.nas_id != b.nas_id:
        return False
    if a.nas_port_id is not None and a.nas_port_id == b.nas_port_id:
        return True
    if a.nas_port is not None and a.nas_port == b.nas_port:
        return True
    # Neither says where it comes from (a radtest-like probe): nothing tells them apart, so
    # the newer is taken for a re-authentication rather than a second device.
    return _anonymous(a) and _anonymous(b)


def _anonymous(session: OpenSession) -> bool:
    return (
        not session.calling_station_id and session.nas_port is None and session.nas_port_id is None
    )


def occupied(
    sessions: Iterable[OpenSession],
    pending: Iterable[OpenSession],
    login: OpenSession,
    now: float,
) -> int:
    """How many of a contract's places ``login`` would not take over: its open sessions and
    its accepted logins still awaiting their Start (``expires`` after ``now``), except those
    at the login's own place (it replaces them) and logins whose Start already arrived (they
    are counted as their session)."""
    count = 0
    others = []
    for session in sessions:
        if not same_place(session, login):
            count += 1
            others.append(session)
    for waiting in pending:
        if waiting.expires <= now or same_place(waiting, login):
            continue
        if not any(same_place(waiting, session) for session in others):
            count += 1
    return count


def _unchanged(session: OpenSession, state: SessionState) -> bool:
    """Whether ``state`` (a committed record of the session) says what ``session`` says."""
    return (
        session.started_at == state.started_at
        and session.nas_port == state.nas_port
        and session.nas_port_id == state.nas_port_id
        and session.calling_station_id == station_key(state.calling_station_id)
    )


def limit_reached(limit: int) -> Refusal:
    return Refusal(f"simultaneous use limit of {limit} reached")


class SessionView:
    """Open sessions and logins awaiting their Accounting-Start, per contract."""

    def __init__(self, *, start_wait: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._start_wait = start_wait
        self._clock = clock
        self._open: dict[int, dict[tuple[int, str], OpenSession]] = {}
        self._pending: dict[int, list[OpenSession]] = {}
        self._replays: list[list[Applied]] = []  # reloads reading meanwhile (begin_reload)
        self.ready = False  # loaded at least once, and the last refresh worked
        self.refused = 0  # logins refused for the limit (metrics)

    # -- the hot path -------------------------------------------------------------------------

    def check(self, contract_id: int, limit: int, login: OpenSession) -> Refusal | None:
        """Why ``login`` would exceed the contract's simultaneous-use ``limit``, if it would."""
        if not self.ready:
            return NOT_READY
        sessions = self._open.get(contract_id)
        pending = self._pending.get(contract_id)
        if not sessions and not pending:
            return None
        taken = occupied(sessions.values() if sessions else (), pending or (), login, self._clock())
        if taken >= limit:
            self.refused += 1
            return limit_reached(limit)
        return None

    def admit(self, contract_id: int, login: OpenSession) -> None:
        """Count an accepted ``login`` until its Accounting-Start arrives (or start_wait)."""
        if self._start_wait <= 0:
            return
        now = self._clock()
        login.expires = now + self._start_wait
        waiting = [
            w
            for w in self._pending.get(contract_id, ())
            if w.expires > now and not same_place(w, login)
        ]
        waiting.append(login)
        self._pending[contract_id] = waiting

    def withdraw(self, contract_id: int, login: OpenSession) -> None:
        """An admitted login was refused after all (e.g. its pool was exhausted): the one
        awaiting its Start from the same NAS, port and station (whatever its deadline: a worker
        process names it by those, see workers.claims) no longer counts."""
        pending = self._pending.get(contract_id)
        if not pending:
            return
        place = login.place
        for waiting in pending:
            if waiting.place == place:
                pending.remove(waiting)
                break
        if not pending:
            del self._pending[contract_id]

    def count(self, contract_id: int) -> int:
        """Open sessions of the contract (for the API and tests)."""
        return len(self._open.get(contract_id, ()))

    # -- updates ------------------------------------------------------------------------------

    def applied(self, applied: Applied) -> None:
        """An accounting batch was committed: follow its sessions and NAS reboots."""
        for replay in self._replays:
            replay.append(applied)
        self._apply(applied)

    def _apply(self, applied: Applied) -> None:
        # Sessions first, reboots last: a session written before an Accounting-On of the same
        # batch is reported as it was before the reboot, and the reboot (which removes only
        # sessions started before it) must then close it here too.
        for state in applied.sessions:
            if state.contract_id is None:
                continue
            key = (state.nas_id, state.key)
            if state.stopped_at is not None:
                sessions = self._open.get(state.contract_id)
                if sessions is not None:
                    sessions.pop(key, None)
                    if not sessions:
                        del self._open[state.contract_id]
                continue
            sessions = self._open.get(state.contract_id)
            session = sessions.get(key) if sessions is not None else None
            if session is None or not _unchanged(session, state):
                # An Interim-Update usually changes nothing the check reads: the session
                # seen so far is kept, rather than a new object for the collector to walk
                # (young objects are what its pauses cost, see radius/dedup.py).
                session = OpenSession(
                    state.nas_id,
                    state.key,
                    state.started_at,
                    state.calling_station_id,
                    state.nas_port,
                    state.nas_port_id,
                )
                if sessions is None:
                    sessions = self._open[state.contract_id] = {}
                sessions[key] = session
            pending = self._pending.get(state.contract_id)
            if pending:
                # Its Start arrived: the login now counts as this session.
                left = [w for w in pending if not same_place(w, session)]
                if left:
                    self._pending[state.contract_id] = left
                else:
                    del self._pending[state.contract_id]
        for nas_id, at in applied.reboots:
            self._nas_rebooted(nas_id, at)

    def _nas_rebooted(self, nas_id: int, at: datetime) -> None:
        for contract_id in list(self._open):
            sessions = self._open[contract_id]
            gone = [
                key
                for key, s in sessions.items()
                if s.nas_id == nas_id and (s.started_at is None or s.started_at <= at)
            ]
            for key in gone:
                del sessions[key]
            if not sessions:
                del self._open[contract_id]

    def begin_reload(self) -> list[Applied]:
        """A reload from the database starts: commits made while it reads are remembered in
        the list returned, to be applied again over what it read."""
        replay: list[Applied] = []
        self._replays.append(replay)
        return replay

    def finish_reload(
        self,
        rows: Iterable[tuple[int, OpenSession]],
        replay: list[Applied],
        contracts: Iterable[int] | None = None,
    ) -> None:
        """Replace the open sessions with ``rows`` (contract id, session) from the database:
        all of them, or those of ``contracts`` (sessions other nodes started or stopped)."""
        fresh: dict[int, dict[tuple[int, str], OpenSession]] = {}
        for contract_id, session in rows:
            fresh.setdefault(contract_id, {})[(session.nas_id, session.key)] = session
        self._replays.remove(replay)
        if contracts is None:
            self._open = fresh
        else:
            for contract_id in contracts:
                if contract_id in fresh:
                    self._open[contract_id] = fresh[contract_id]
                else:
                    self._open.pop(contract_id, None)
        # Batches in the order they were committed, over what was read before some of them:
        # each leaves its sessions as it found them, so applying one again changes nothing.
        for applied in replay:
            self._apply(applied)
        if contracts is None:
            self.ready = True

    def reload_failed(self, replay: list[Applied]) -> None:
        """The reload could not read the database; the view stays as it was."""
        self._replays.remove(replay)

    def sweep(self) -> int:
        """Forget logins whose Accounting-Start never came (run by the periodic jobs); returns
        how many."""
        now = self._clock()
        forgotten = 0
        for contract_id in list(self._pending):
            waiting = self._pending[contract_id]
            left = [w for w in waiting if w.expires > now]
            forgotten += len(waiting) - len(left)
            if left:
                self._pending[contract_id] = left
            else:
                del self._pending[contract_id]
        return forgotten
