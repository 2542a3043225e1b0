"""A worker's logins decided by the main process's session view (workers.claims): both ends
of the real pipe protocol, the main process's answers made as workers.pool makes them."""

from __future__ import annotations

import asyncio
import socket

from radius_contracts.aaa.authorize import Refusal
from radius_contracts.aaa.claims import Claim
from radius_contracts.aaa.sessions import OpenSession, SessionView
from radius_contracts.workers.channel import Channel
from radius_contracts.workers.claims import (
    MainProcessClaims,
    decide_for_worker,
    withdraw_for_worker,
)


def login(station: str, nas: int = 1) -> OpenSession:
    return OpenSession(nas, "", None, station, None, None)


def ready_view() -> SessionView:
    view = SessionView(start_wait=60.0)
    view.finish_reload([], view.begin_reload())
    return view


def test_the_main_process_decides_in_order_and_counts_what_it_admitted() -> None:
    view = ready_view()
    requests = [
        (1, 7, 1, *login("02:00:00:00:00:01").place),
        (2, 7, 1, *login("02:00:00:00:00:02").place),  # a second device: over the limit
        (3, 7, 1, *login("02:00:00:00:00:01").place),  # the first again: re-authentication
        (4, 8, 1, *login("02:00:00:00:00:02").place),  # another contract
    ]
    results = decide_for_worker(view, requests)
    assert [number for number, _ in results] == [1, 2, 3, 4]
    assert [refusal is None for _, refusal in results] == [True, False, True, True]
    assert results[1][1] == "simultaneous use limit of 1 reached"
    assert view.refused == 1
    # What it admitted counts for the next login, whichever worker it comes from.
    assert view.check(8, 1, login("02:00:00:00:00:03")) is not None
    # A withdrawn login (its pool was exhausted) frees its place, named by its place alone.
    withdraw_for_worker(view, 8, login("02:00:00:00:00:02").place)
    assert view.check(8, 1, login("02:00:00:00:00:03")) is None


def test_a_view_not_loaded_refuses() -> None:
    view = SessionView(start_wait=60.0)
    [(number, refusal)] = decide_for_worker(view, [(5, 7, 1, *login("a").place)])
    assert number == 5 and refusal is not None and "not available" in refusal


def test_a_workers_logins_go_over_the_pipe_in_one_message_and_come_back_decided() -> None:
    async def run() -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        worker_end, main_end = await Channel.open(ours), await Channel.open(theirs)
        main_view, worker_view = ready_view(), ready_view()
        claims = MainProcessClaims(worker_end, worker_view)
        runner = asyncio.ensure_future(claims.run())
        decided = [
            claims.decide(7, 1, login("02:00:00:00:00:01")),
            claims.decide(7, 1, login("02:00:00:00:00:02")),
        ]
        message = await asyncio.wait_for(main_end.receive(), 2)
        assert message[0] == "claims" and len(message[1]) == 2  # one message per loop turn
        main_end.send("claimed", decide_for_worker(main_view, message[1]))
        # What the worker's receive loop does with the answer:
        answer = await asyncio.wait_for(worker_end.receive(), 2)
        assert answer[0] == "claimed"
        claims.claimed(answer[1])
        first, second = [await asyncio.wait_for(future, 2) for future in decided]
        assert first == Claim(None)
        assert isinstance(second, Refusal) and "limit of 1" in second
        assert claims.decided["main"] == 2
        assert worker_view.check(7, 1, login("02:00:00:00:00:03")) is not None
        # Withdrawn: both views forget it.
        await claims.withdraw(7, login("02:00:00:00:00:01"), first)
        withdrawn = await asyncio.wait_for(main_end.receive(), 2)
        assert withdrawn[0] == "withdraw"
        withdraw_for_worker(main_view, withdrawn[1], withdrawn[2:])
        assert main_view.check(7, 1, login("02:00:00:00:00:03")) is None
        assert worker_view.check(7, 1, login("02:00:00:00:00:03")) is None
        # The main process goes away: a login waiting for it is refused, not left hanging.
        waiting = claims.decide(7, 1, login("02:00:00:00:00:04"))
        claims.gone()
        assert isinstance(await asyncio.wait_for(waiting, 2), Refusal)
        claims.close()
        await asyncio.wait_for(runner, 2)
        worker_end.close()
        main_end.close()

    asyncio.run(run())
