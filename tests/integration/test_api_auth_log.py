"""The auth log: written through the service, read back over HTTP, purged by age and by count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select

from conftest import Factory, RunningDaemon
from radius_contracts.aaa.auth_log import AuthEvent
from radius_contracts.db.models import AuthLogEntry
from radius_contracts.services import auth_log as auth_log_service
from radius_contracts.services.registry import Services
from radius_contracts.startup import engine_of


def services(daemon: RunningDaemon) -> Services:
    assert daemon.daemon.services is not None
    return daemon.daemon.services


def event(contract_id: int | None, **fields: Any) -> AuthEvent:
    values: dict[str, Any] = {
        "at": datetime.now(UTC),
        "contract_id": contract_id,
        "username": "ana@fiber",
        "nas_id": None,
        "calling_station_id": "00:11:22:33:44:55",
        "accept": False,
        "reason": "wrong password",
        "method": "pap",
        **fields,
    }
    return AuthEvent(**values)


def write(daemon: RunningDaemon, *events: AuthEvent) -> None:
    daemon.run(services(daemon).auth_log.write(list(events)))


def test_entries_read_back_newest_first(
    daemon: RunningDaemon, api: httpx.Client, make: Factory
) -> None:
    contract = make.contract()
    nas = make.nas()
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    write(
        daemon,
        event(contract["id"], at=base, nas_id=nas["id"]),
        event(contract["id"], at=base + timedelta(seconds=5), reason="MAC address mismatch"),
        event(
            contract["id"],
            at=base + timedelta(seconds=9),
            accept=True,
            reason="accepted",
            method="chap",
            calling_station_id=None,
        ),
    )

    response = api.get(f"/api/v1/contracts/{contract['id']}/auth-log")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 50, 0)
    newest, middle, oldest = body["items"]
    assert newest == {
        "id": newest["id"],
        "at": "2026-03-01T12:00:09Z",
        "result": "accept",
        "reason": "accepted",
        "method": "chap",
        "nas_id": None,
        "username": "ana@fiber",
        "calling_station_id": None,
    }
    assert middle["reason"] == "MAC address mismatch"
    assert (oldest["result"], oldest["nas_id"], oldest["method"]) == ("reject", nas["id"], "pap")
    assert oldest["calling_station_id"] == "00:11:22:33:44:55"
    assert newest["id"] > middle["id"] > oldest["id"]


def test_filter_by_result_and_paginate(
    daemon: RunningDaemon, api: httpx.Client, make: Factory
) -> None:
    contract = make.contract()
    other = make.contract()
    write(
        daemon,
        *(event(contract["id"], reason=f"reject {n}") for n in range(5)),
        event(contract["id"], accept=True, reason="accepted"),
        event(other["id"]),
    )
    path = f"/api/v1/contracts/{contract['id']}/auth-log"

    rejects = api.get(path, params={"result": "reject", "limit": 2, "offset": 1}).json()
    accepts = api.get(path, params={"result": "accept"}).json()

    assert rejects["total"] == 5
    assert [e["reason"] for e in rejects["items"]] == ["reject 3", "reject 2"]
    assert [e["result"] for e in accepts["items"]] == ["accept"]
    assert api.get(path).json()["total"] == 6
    bad = api.get(path, params={"result": "maybe"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_unknown_contract_is_a_404_problem(api: httpx.Client) -> None:
    response = api.get("/api/v1/contracts/2147483000/auth-log")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "contract 2147483000 does not exist" in response.json()["detail"]


def test_read_only_tokens_may_read_the_auth_log(readonly_api: httpx.Client, make: Factory) -> None:
    contract = make.contract()

    response = readonly_api.get(f"/api/v1/contracts/{contract['id']}/auth-log")

    assert response.status_code == 200
    assert response.json()["items"] == []


def test_dangling_references_and_odd_wire_values_are_stored(
    daemon: RunningDaemon, api: httpx.Client, make: Factory
) -> None:
    contract = make.contract()
    gone = make.nas()
    assert api.delete(f"/api/v1/nas/{gone['id']}").status_code == 204
    write(
        daemon,
        event(
            contract["id"],
            nas_id=gone["id"],  # deleted between the request and the write
            username="nul\x00byte" + "x" * 300,
            reason="r" * 400,
            at=datetime(2026, 3, 1, 12, 0),  # naive: taken as UTC
        ),
        event(2147483000),  # no such contract: kept without the reference
    )

    [entry] = api.get(f"/api/v1/contracts/{contract['id']}/auth-log").json()["items"]

    assert entry["nas_id"] is None
    assert entry["username"].startswith("nul\ufffdbyte") and len(entry["username"]) == 253
    assert len(entry["reason"]) == 255
    assert entry["at"] == "2026-03-01T12:00:00Z"


def test_deleting_a_contract_deletes_its_entries(
    daemon: RunningDaemon, api: httpx.Client, make: Factory
) -> None:
    contract = make.contract()
    write(daemon, event(contract["id"]), event(contract["id"]))
    assert api.delete(f"/api/v1/contracts/{contract['id']}").status_code == 204

    async def remaining() -> int:
        async with services(daemon).context.sessions() as session:
            stmt = select(func.count()).where(AuthLogEntry.contract_id == contract["id"])
            return int((await session.execute(stmt)).scalar_one())

    assert daemon.run(remaining()) == 0


@pytest.fixture
def empty_auth_log(daemon: RunningDaemon) -> None:
    """Start from an empty table: the purge tests count rows across the whole table."""
    writer = getattr(daemon.daemon, "auth_log", None)

    async def clear() -> None:
        if writer is not None:  # outcomes of earlier RADIUS tests: written now, not mid-test
            await writer.flush()
        async with engine_of(services(daemon)).begin() as connection:
            await connection.execute(delete(AuthLogEntry))

    daemon.run(clear())


def _ids(daemon: RunningDaemon) -> list[int]:
    async def ids() -> list[int]:
        async with services(daemon).context.sessions() as session:
            return list((await session.scalars(select(AuthLogEntry.id))).all())

    result: list[int] = daemon.run(ids())
    return sorted(result)


@pytest.mark.usefixtures("empty_auth_log")
def test_purge_by_age(daemon: RunningDaemon, make: Factory) -> None:
    contract = make.contract()
    now = datetime.now(UTC)
    write(
        daemon,
        *(event(contract["id"], at=now - timedelta(days=40 + n)) for n in range(3)),
        *(event(contract["id"], at=now - timedelta(days=n)) for n in range(2)),
    )

    deleted = daemon.run(
        services(daemon).auth_log.purge(older_than=now - timedelta(days=30), max_rows=1000)
    )

    assert deleted == 3
    assert len(_ids(daemon)) == 2


@pytest.mark.usefixtures("empty_auth_log")
def test_purge_by_max_rows_keeps_the_newest(
    daemon: RunningDaemon, make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth_log_service, "PURGE_CHUNK", 3)  # several chunks, one transaction each
    contract = make.contract()
    write(daemon, *(event(contract["id"], reason=str(n)) for n in range(10)))
    before = _ids(daemon)

    deleted = daemon.run(
        services(daemon).auth_log.purge(
            older_than=datetime.now(UTC) - timedelta(days=30), max_rows=4
        )
    )

    assert deleted == 6
    assert _ids(daemon) == before[-4:]
    assert (
        daemon.run(
            services(daemon).auth_log.purge(older_than=datetime(2000, 1, 1, tzinfo=UTC), max_rows=4)
        )
        == 0
    )
