"""The bound on rows for requests that matched no contract (services.auth_log_bound)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from radius_contracts.aaa.auth_log import AuthEvent
from radius_contracts.services.auth_log_bound import Key, UnknownBound

MINUTE = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


def unknown(name: str | None, *, at: datetime = MINUTE, nas_id: int = 1) -> AuthEvent:
    return AuthEvent(at, None, name, nas_id, None, False, "unknown user", "pap")


def commit(bound: UnknownBound, events: list[AuthEvent]) -> dict[Key, int]:
    """Plan ``events`` and pretend the write succeeded; returns the new rows' counts."""
    plan = bound.plan(events)
    bound.written({key: (date(2026, 12, 6), n) for n, key in enumerate(plan.new)})
    return {key: folded.count for key, folded in plan.new.items()}


def test_one_row_per_name_and_nas_per_minute_with_a_count() -> None:
    bound = UnknownBound(per_minute=10)
    new = commit(bound, [unknown("a"), unknown("a"), unknown("a", nas_id=2), unknown("b")])
    assert sorted((k.username, k.nas_id, n) for k, n in new.items()) == [
        ("a", 1, 2),
        ("a", 2, 1),
        ("b", 1, 1),
    ]
    # The same name later in the minute adds to the written row instead of making one.
    plan = bound.plan([unknown("a", at=MINUTE + timedelta(seconds=30))])
    assert not plan.new and list(plan.more.values()) == [1]
    # The next minute starts a new row.
    assert len(bound.plan([unknown("a", at=MINUTE + timedelta(minutes=1))]).new) == 1


def test_past_the_cap_the_minute_folds_into_one_row_per_nas() -> None:
    bound = UnknownBound(per_minute=3)
    new = commit(bound, [unknown(f"n{i}") for i in range(100)])
    named = {k: n for k, n in new.items() if k.username is not None}
    folded = {k: n for k, n in new.items() if k.username is None}
    assert len(named) == 3 and list(folded.values()) == [97]
    # Across batches too: the cap counts what earlier batches made.
    later = bound.plan([unknown(f"m{i}") for i in range(5)])
    assert not later.new and list(later.more.values()) == [5]


def test_a_failed_write_changes_nothing() -> None:
    bound = UnknownBound(per_minute=1)
    bound.plan([unknown("a")])
    bound.failed()  # what the service does when the transaction failed
    retried = bound.plan([unknown("a")])
    assert [k.username for k in retried.new] == ["a"]  # not folded: the cap was not used up


def test_old_minutes_are_forgotten() -> None:
    bound = UnknownBound(per_minute=5)
    commit(bound, [unknown("a")])
    commit(bound, [unknown("b", at=MINUTE + timedelta(minutes=10))])
    assert bound.where(Key(int(MINUTE.timestamp() // 60), "a", 1, False, "unknown user")) is None
