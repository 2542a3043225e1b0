"""The bound on auth log rows for requests that matched no contract.

A brute-force run or a NAS with a broken PPPoE config sends thousands of User-Names that match
no contract. Each outcome still counts, but rows do not grow with them: outcomes without a
contract fold into one row per (minute, User-Name, NAS, result, reason) carrying a ``count``,
and at most ``per_minute`` such rows are made in one UTC minute; past that, the minute's
remaining ones fold into one row per (NAS, result, reason) with no username. So one minute adds
at most ``per_minute`` + (NASes times reasons) rows, whatever arrives.

This runs in the auth log writer, off the RADIUS hot path: the handler records every outcome
as before, and the folding happens when a batch is written. The state is per writer (per node);
it holds the current and the previous minutes' keys only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from radius_contracts.aaa.auth_log import AuthEvent
from radius_contracts.store.auth_log import Segment

__all__ = ["Folded", "Key", "UnknownBound"]

# Minutes of state kept behind the newest seen: outcomes from worker processes and retried
# batches arrive a few seconds late, never minutes (a replay after an outage walks forward).
_KEEP_MINUTES = 2


class Key(NamedTuple):
    minute: int  # UTC minutes since the epoch
    username: str | None  # None: past the minute's cap (or no User-Name at all)
    nas_id: int | None
    accept: bool
    reason: str


@dataclass(slots=True)
class Folded:
    """One row's worth of outcomes: the first one (written as is) and how many in all."""

    first: AuthEvent
    count: int = 1


@dataclass(slots=True)
class Plan:
    """What one batch does to the bounded rows: new rows to insert, counts to add."""

    new: dict[Key, Folded] = field(default_factory=dict)
    more: dict[Key, int] = field(default_factory=dict)  # key of an existing row -> added count


class UnknownBound:
    """Which row each contract-less outcome goes to; see the module docstring."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._rows: dict[Key, tuple[Segment, int]] = {}  # written rows: key -> (table, id)
        self._made: dict[int, int] = {}  # minute -> rows made with a username
        self._newest = 0
        self._pending_made: dict[int, int] = {}  # counted by plan(), kept by written()

    def where(self, key: Key) -> tuple[Segment, int] | None:
        """The table and id of the row already written for ``key``."""
        return self._rows.get(key)

    def plan(self, events: list[AuthEvent]) -> Plan:
        """Fold ``events`` (all without a contract) into new rows and added counts."""
        plan = Plan()
        made: dict[int, int] = {}
        for event in events:
            minute = int(event.at.timestamp() // 60)
            key = Key(minute, event.username, event.nas_id, event.accept, event.reason)
            if key not in self._rows and key not in plan.new and key.username is not None:
                used = self._made.get(minute, 0) + made.get(minute, 0)
                if used >= self.per_minute:
                    key = key._replace(username=None)  # over the cap: one row per NAS
                else:
                    made[minute] = made.get(minute, 0) + 1
            if key in self._rows:
                plan.more[key] = plan.more.get(key, 0) + 1
            elif key in plan.new:
                plan.new[key].count += 1
            else:
                plan.new[key] = Folded(event._replace(username=key.username))
        self._pending_made = made
        return plan

    def failed(self) -> None:
        """The batch planned last was not written: it used none of the cap."""
        self._pending_made = {}

    def written(self, rows: dict[Key, tuple[Segment, int]]) -> None:
        """The batch planned last committed: remember its new rows, forget old minutes."""
        self._rows.update(rows)
        for minute, count in self._pending_made.items():
            self._made[minute] = self._made.get(minute, 0) + count
        self._pending_made = {}
        if rows:
            self._newest = max(self._newest, *(key.minute for key in rows))
        oldest = self._newest - _KEEP_MINUTES
        if any(key.minute < oldest for key in self._rows):
            self._rows = {k: v for k, v in self._rows.items() if k.minute >= oldest}
            self._made = {m: n for m, n in self._made.items() if m >= oldest}
