"""The in-memory session view behind the simultaneous-use check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from radius_contracts.aaa.sessions import OpenSession, SessionView, same_place
from radius_contracts.store.accounting import Applied, SessionState

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def login(station: str | None = None, nas: int = 1, port: int | None = None) -> OpenSession:
    return OpenSession(nas, "", None, station, port, None)


def state(
    contract: int, key: str, station: str, *, stopped: bool = False, nas: int = 1
) -> SessionState:
    return SessionState(
        None, contract, nas, key, T0, T0, T0 if stopped else None, station, None, None,
        None, None, None,
    )  # fmt: skip


def view(start_wait: float = 60.0) -> tuple[SessionView, Clock]:
    clock = Clock()
    sessions = SessionView(start_wait=start_wait, clock=clock)
    sessions.finish_reload([], sessions.begin_reload())
    return sessions, clock


def test_same_place_by_station_in_any_notation_or_by_port() -> None:
    assert same_place(login("AA-BB-CC-DD-EE-FF"), login("aa:bb:cc:dd:ee:ff", nas=2))
    assert same_place(login("x", port=7), login("y", port=7))
    assert not same_place(login("x", port=7), login("y", nas=2, port=7))
    assert not same_place(login("x"), login("y"))
    assert same_place(login(), login())  # nothing tells two anonymous logins apart


def test_not_ready_refuses_contracts_with_a_limit() -> None:
    sessions = SessionView(start_wait=60)
    assert sessions.check(1, 1, login("a")) is not None


def test_open_sessions_count_and_stops_free() -> None:
    sessions, _ = view()
    sessions.applied(Applied(sessions=[state(1, "s1", "a")]))
    assert sessions.check(1, 1, login("b")) == "simultaneous use limit of 1 reached"
    assert sessions.check(1, 1, login("a")) is None  # the same device replaces it
    assert sessions.check(1, 2, login("b")) is None
    sessions.applied(Applied(sessions=[state(1, "s1", "a", stopped=True)]))
    assert sessions.check(1, 1, login("b")) is None and sessions.count(1) == 0


def test_an_interim_update_that_moves_the_session_is_followed() -> None:
    sessions, _ = view()
    sessions.applied(Applied(sessions=[state(1, "s1", "a")]))
    sessions.applied(Applied(sessions=[state(1, "s1", "a")]))  # an Interim-Update
    assert sessions.check(1, 1, login("a")) is None
    # The NAS now reports the session from another device: that one is where it is.
    sessions.applied(Applied(sessions=[state(1, "s1", "b")]))
    assert sessions.check(1, 1, login("b")) is None
    assert sessions.check(1, 1, login("a")) == "simultaneous use limit of 1 reached"
    assert sessions.count(1) == 1


def test_admitted_logins_count_until_their_start_or_the_wait_ends() -> None:
    sessions, clock = view(start_wait=30)
    first = login("a")
    sessions.admit(1, first)
    assert sessions.check(1, 1, login("b")) is not None
    # Its Start arrives: it counts once, as the session.
    sessions.applied(Applied(sessions=[state(1, "s1", "a")]))
    assert sessions.check(1, 2, login("b")) is None
    sessions.admit(1, login("c"))
    clock.now += 31
    assert sessions.check(1, 2, login("b")) is None


def test_withdrawn_login_stops_counting() -> None:
    sessions, _ = view()
    first = login("a")
    sessions.admit(1, first)
    sessions.withdraw(1, first)
    assert sessions.check(1, 1, login("b")) is None


def test_reboot_drops_the_nas_sessions_started_before() -> None:
    sessions, _ = view()
    sessions.applied(Applied(sessions=[state(1, "s1", "a"), state(2, "s2", "b", nas=2)]))
    sessions.applied(Applied(reboots=[(1, T0 + timedelta(seconds=1))]))
    assert sessions.count(1) == 0 and sessions.count(2) == 1


def test_commits_during_a_reload_are_not_lost() -> None:
    sessions, _ = view()
    replay = sessions.begin_reload()
    sessions.applied(Applied(sessions=[state(1, "s1", "a")]))  # committed while reading
    sessions.finish_reload([], replay)  # the read did not see it
    assert sessions.count(1) == 1


def test_a_reload_of_some_contracts_leaves_the_others_and_keeps_commits_made_meanwhile() -> None:
    sessions, _ = view()
    sessions.applied(Applied(sessions=[state(1, "s1", "a"), state(2, "s2", "b")]))
    replay = sessions.begin_reload()
    sessions.applied(Applied(sessions=[state(1, "s3", "c")]))  # committed while reading
    # Contract 1 as read (s1 stopped by another node, s3 not seen yet); contract 2 untouched.
    sessions.finish_reload([], replay, contracts=[1])
    assert (sessions.count(1), sessions.count(2)) == (1, 1)
    assert sessions.ready
