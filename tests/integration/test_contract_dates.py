"""The contract-dates job against the running daemon: sessions opened over UDP, contracts made
through the API, and a recording ``disconnect`` in place of the CoA sender.

"Today" is a day in 1990, so that only this test's contracts have ended or start (the session
database is shared with other tests, whose contracts have present-day dates).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import LO_SECRET, Factory, RunningDaemon
from radius_client import RadiusClient, attr
from radius_contracts.contract_dates import ContractDates
from radius_contracts.db.models import AcctSession

TODAY = date(1990, 6, 15)


def accounting(daemon: RunningDaemon, status: str, session_id: str, user: str) -> None:
    assert daemon.daemon.acct_port is not None
    with RadiusClient(daemon.daemon.acct_port, LO_SECRET) as client:
        request = client.accounting_request(
            attr("Acct-Status-Type", status),
            attr("Acct-Session-Id", session_id),
            attr("User-Name", user),
        )
        assert client.exchange(request) is not None


class Recorder:
    """Stands in for the CoA sender: records each call, answers with the open sessions."""

    def __init__(self, daemon: RunningDaemon) -> None:
        assert daemon.daemon.services is not None
        self.sessions = daemon.daemon.services.context.sessions
        self.calls: list[tuple[list[int], str]] = []

    async def __call__(self, contract_ids: list[int], reason: str) -> int:
        self.calls.append((contract_ids, reason))
        async with self.sessions() as session:
            stmt = select(func.count()).where(
                AcctSession.contract_id.in_(contract_ids), AcctSession.stopped_at.is_(None)
            )
            return (await session.execute(stmt)).scalar_one()


@pytest.fixture
def contracts(
    daemon: RunningDaemon, make: Factory, lo_nas: dict[str, Any]
) -> Iterator[dict[str, dict[str, Any]]]:
    """One contract per case, each online (but "offline"), by case name; removed after."""
    cases: dict[str, dict[str, Any]] = {
        "ended": {"end_date": "1990-06-14"},
        "ended-earlier": {"end_date": "1990-06-10", "status": "suspended"},
        "auto-extended": {"end_date": "1990-06-14", "auto_extend": True},
        "cancelled": {"end_date": "1990-06-14", "status": "cancelled"},
        "inactive": {"end_date": "1990-06-14", "status": "inactive"},
        "ends-today": {"end_date": "1990-06-15"},
        "starts-today": {"start_date": "1990-06-15"},
        "starts-tomorrow": {"start_date": "1990-06-16"},
        "offline": {"end_date": "1990-06-14"},
    }
    made = {case: make.contract(**fields) for case, fields in cases.items()}
    opened: list[tuple[str, str]] = []
    for case, contract in made.items():
        if case == "offline":
            continue
        user = contract["config"]["username"]
        # Two sessions for one ended contract: the disconnect count is of sessions.
        for _ in range(2 if case == "ended" else 1):
            session_id = f"cd-{secrets.token_hex(6)}"
            accounting(daemon, "Start", session_id, user)
            opened.append((session_id, user))
    api = daemon.client(daemon.admin_token)
    for case, contract in made.items():
        online = api.get("/api/v1/sessions", params={"contract_id": contract["id"], "online": True})
        assert online.json()["total"] == {"offline": 0, "ended": 2}.get(case, 1), case
    yield made
    for session_id, user in opened:
        accounting(daemon, "Stop", session_id, user)
    for contract in made.values():  # the next test's "started" counts its own only
        assert api.delete(f"/api/v1/contracts/{contract['id']}").status_code == 204


def run(daemon: RunningDaemon, job: ContractDates) -> dict[str, int]:
    result: dict[str, int] = daemon.run(job.run())
    return result


def test_ended_contracts_lose_their_sessions_and_starting_ones_are_counted(
    daemon: RunningDaemon, contracts: dict[str, dict[str, Any]]
) -> None:
    assert daemon.daemon.services is not None
    sessions = daemon.daemon.services.context.sessions
    ended, earlier = contracts["ended"]["id"], contracts["ended-earlier"]["id"]
    recorder = Recorder(daemon)

    result = run(daemon, ContractDates(sessions, disconnect=recorder, today=lambda: TODAY))

    # One call per end date, oldest first, each with its reason.
    assert recorder.calls == [
        ([earlier], "contract ended on 1990-06-10"),
        ([ended], "contract ended on 1990-06-14"),
    ]
    assert result == {"ended": 2, "disconnected": 3, "started": 1}


def test_batches_follow_contract_ids_and_keep_one_reason_per_call(
    daemon: RunningDaemon, contracts: dict[str, dict[str, Any]]
) -> None:
    assert daemon.daemon.services is not None
    sessions = daemon.daemon.services.context.sessions
    ended, earlier = contracts["ended"]["id"], contracts["ended-earlier"]["id"]
    recorder = Recorder(daemon)

    job = ContractDates(sessions, disconnect=recorder, today=lambda: TODAY, batch=1)
    result = run(daemon, job)

    assert recorder.calls == [
        ([ended], "contract ended on 1990-06-14"),
        ([earlier], "contract ended on 1990-06-10"),
    ]
    assert result == {"ended": 2, "disconnected": 3, "started": 1}


def test_without_a_disconnect_the_job_only_counts(
    daemon: RunningDaemon, contracts: dict[str, dict[str, Any]]
) -> None:
    assert daemon.daemon.services is not None
    job = ContractDates(daemon.daemon.services.context.sessions, today=lambda: TODAY)
    assert run(daemon, job) == {"ended": 2, "disconnected": 0, "started": 1}
