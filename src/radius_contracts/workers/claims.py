"""Simultaneous use for worker processes decided by the main process, over the workers' pipes.

Where no other node decides (SQLite, or ``simultaneous_use_decisions = "local"``), the main
process's session view is the only one that sees every session of this host: accounting is
written there, and every worker's accepted logins can be counted there too. So a worker asks
it instead of the database: one ``claims`` message per turn of the worker's event loop carries
the logins it must decide, the main process checks and admits each against its view in arrival
order (the same rule as a single process, aaa.sessions) and answers with one ``claimed``
message. Measured against the database's login claims (bench/README): a login decided this way
costs a fraction of a SQLite write transaction, and no process waits for SQLite's write lock.

Messages (workers.channel):

- worker → main ``("claims", [(number, contract_id, limit, nas_id, station, nas_port,
  nas_port_id), …])``
- main → worker ``("claimed", [(number, refusal or None), …])``
- worker → main ``("withdraw", contract_id, nas_id, station, nas_port, nas_port_id)``: an
  accepted login was refused after all (its pool was exhausted).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

from radius_contracts.aaa.authorize import Refusal
from radius_contracts.aaa.claims import Claim
from radius_contracts.aaa.sessions import OpenSession, SessionView
from radius_contracts.workers.channel import Channel, ChannelClosed

__all__ = ["MainProcessClaims", "decide_for_worker", "withdraw_for_worker"]

_GONE = Refusal("simultaneous use cannot be checked: the main process is gone")


def _login(place: Sequence[Any]) -> OpenSession:
    """The OpenSession a message names by its ``place``."""
    nas_id, station, nas_port, nas_port_id = place
    return OpenSession(nas_id, "", None, station, nas_port, nas_port_id)


# -- the worker's side ---------------------------------------------------------------------------


class MainProcessClaims:
    """A worker's login decisions, made by the main process (see the module docstring).

    The same calls as aaa.claims.LoginClaims, which the handler uses where the database
    decides.
    """

    def __init__(self, channel: Channel, view: SessionView) -> None:
        self._channel = channel
        self._view = view
        self._numbers = 0
        self._waiting: dict[int, tuple[int, OpenSession, asyncio.Future[Claim | Refusal]]] = {}
        self._outgoing: list[tuple[Any, ...]] = []
        self._stopped = asyncio.Event()
        # Decisions by how they were made, for /metrics: "main" here.
        self.decided: Counter[str] = Counter()

    def decide(
        self, contract_id: int, limit: int, login: OpenSession
    ) -> asyncio.Future[Claim | Refusal]:
        """Whether ``login`` may take a place of the contract's ``limit``: a Claim, or why not."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Claim | Refusal] = loop.create_future()
        self._numbers += 1
        number = self._numbers
        self._waiting[number] = (contract_id, login, future)
        if not self._outgoing:
            # Everything decided in this turn of the loop goes in one message.
            loop.call_soon(self._send)
        self._outgoing.append((number, contract_id, limit, *login.place))
        return future

    def _send(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        try:
            self._channel.send("claims", outgoing)
        except ChannelClosed:
            for number, *_rest in outgoing:
                self._answer(number, _GONE)

    def claimed(self, results: Sequence[tuple[int, str | None]]) -> None:
        """The main process's answers (a ``claimed`` message)."""
        for number, refusal in results:
            self._answer(number, Refusal(refusal) if refusal is not None else Claim(None))

    def _answer(self, number: int, result: Claim | Refusal) -> None:
        waiting = self._waiting.pop(number, None)
        if waiting is None:
            return
        contract_id, login, future = waiting
        self.decided["main"] += 1
        if isinstance(result, Claim):
            # This worker's view counts its own logins too, as with the database's claims.
            # (A refusal is counted once, by the main process's view.)
            self._view.admit(contract_id, login)
        if not future.done():
            future.set_result(result)

    async def withdraw(self, contract_id: int, login: OpenSession, claim: Claim) -> None:
        """The login was refused after all (its pool was exhausted): free its place."""
        self._view.withdraw(contract_id, login)
        with contextlib.suppress(ChannelClosed):  # the main process is gone: its view with it
            self._channel.send("withdraw", contract_id, *login.place)

    def gone(self) -> None:
        """The main process went away: nothing waiting will be answered."""
        for number in list(self._waiting):
            self._answer(number, _GONE)

    async def run(self) -> None:
        """Nothing to write: the main process decides. Returns at close()."""
        await self._stopped.wait()

    def close(self) -> None:
        self._stopped.set()


# -- the main process's side ----------------------------------------------------------------------


def decide_for_worker(
    view: SessionView, requests: Sequence[Sequence[Any]]
) -> list[tuple[int, str | None]]:
    """A ``claims`` message's logins decided against the main process's ``view``, in order:
    each accepted one is admitted there, so the next (from any worker) counts it."""
    results: list[tuple[int, str | None]] = []
    for number, contract_id, limit, *place in requests:
        login = _login(place)
        refusal = view.check(contract_id, limit, login)
        if refusal is None:
            view.admit(contract_id, login)
        results.append((number, refusal if refusal is None else str(refusal)))
    return results


def withdraw_for_worker(view: SessionView, contract_id: int, place: Sequence[Any]) -> None:
    """A ``withdraw`` message: the admitted login at that place no longer counts."""
    view.withdraw(contract_id, _login(place))
