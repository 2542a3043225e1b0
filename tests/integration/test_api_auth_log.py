"""The auth log: written through the service, read back over HTTP, purged by age and by count."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from conftest import Factory, RunningDaemon
from radius_contracts.aaa.auth_log import AuthEvent
from radius_contracts.errors import StorageUnavailable
from radius_contracts.services.registry import Services
from radius_contracts.startup import engine_of
from radius_contracts.store import auth_log as store

TODAY_NAIVE = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)


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
    # Today: the daemon's retention drops days past auth_log.retention_days.
    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
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
        "at": f"{base.date()}T00:00:09Z",
        "result": "accept",
        "reason": "accepted",
        "method": "chap",
        "nas_id": None,
        "contract_id": contract["id"],
        "username": "ana@fiber",
        "calling_station_id": None,
        "count": 1,
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
            at=TODAY_NAIVE,  # naive: taken as UTC
        ),
        event(2147483000),  # no such contract: kept without the reference
    )

    [entry] = api.get(f"/api/v1/contracts/{contract['id']}/auth-log").json()["items"]

    assert entry["nas_id"] is None
    assert entry["username"].startswith("nul\ufffdbyte") and len(entry["username"]) == 253
    assert len(entry["reason"]) == 255
    assert entry["at"] == f"{TODAY_NAIVE.date()}T00:00:00Z"


def _select(daemon: RunningDaemon, **where: Any) -> list[store.AuthLogRow]:
    async def rows() -> list[store.AuthLogRow]:
        async with services(daemon).context.sessions() as session:
            connection = await session.connection()
            found, _ = await store.select_page(
                connection, store.AuthLogFilter(**where), limit=100_000, offset=0
            )
            return found

    result: list[store.AuthLogRow] = daemon.run(rows())
    return result


def test_deleting_a_contract_deletes_its_entries(
    daemon: RunningDaemon, api: httpx.Client, make: Factory
) -> None:
    contract = make.contract()
    yesterday = datetime.now(UTC) - timedelta(days=1)
    write(daemon, event(contract["id"]), event(contract["id"], at=yesterday))
    assert len(_select(daemon, contract_id=contract["id"])) == 2
    assert api.delete(f"/api/v1/contracts/{contract['id']}").status_code == 204

    assert _select(daemon, contract_id=contract["id"]) == []  # from every day's table


@pytest.fixture
def empty_auth_log(daemon: RunningDaemon) -> None:
    """Start with no day tables: the purge tests look at every day."""
    writer = getattr(daemon.daemon, "auth_log", None)

    async def clear() -> None:
        if writer is not None:  # outcomes of earlier RADIUS tests: written now, not mid-test
            await writer.flush()
        async with engine_of(services(daemon)).begin() as connection:
            for day in await store.days(connection):
                await store.drop_day(connection, day)
        services(daemon).auth_log._forget_tables()

    daemon.run(clear())


def _days(daemon: RunningDaemon) -> list[date]:
    """The days with a table up to today (PostgreSQL's purge makes tomorrow's ahead)."""

    async def days() -> list[date]:
        async with engine_of(services(daemon)).connect() as connection:
            today = datetime.now(UTC).date()
            return [day for day in await store.days(connection) if day <= today]

    result: list[date] = daemon.run(days())
    return result


def _purge(daemon: RunningDaemon, older_than: datetime, max_rows: int = 1_000_000) -> int:
    dropped: int = daemon.run(
        services(daemon).auth_log.purge(older_than=older_than, max_rows=max_rows)
    )
    return dropped


@pytest.mark.usefixtures("empty_auth_log")
def test_purge_by_age_drops_whole_days(daemon: RunningDaemon, make: Factory) -> None:
    contract = make.contract()
    now = datetime.now(UTC)
    write(
        daemon,
        *(event(contract["id"], at=now - timedelta(days=40 + n)) for n in range(3)),
        event(contract["id"], at=now - timedelta(days=40)),
        *(event(contract["id"], at=now - timedelta(days=n)) for n in range(2)),
    )
    assert len(_days(daemon)) == 5

    assert _purge(daemon, now - timedelta(days=30)) == 4

    assert _days(daemon) == sorted({(now - timedelta(days=n)).date() for n in range(2)})
    assert len(_select(daemon, contract_id=contract["id"])) == 2
    assert _purge(daemon, now - timedelta(days=30)) == 0  # nothing left to drop


@pytest.mark.usefixtures("empty_auth_log")
def test_purge_by_max_rows_drops_the_oldest_whole_days(
    daemon: RunningDaemon, make: Factory
) -> None:
    contract = make.contract()
    now = datetime.now(UTC)
    # 3 entries on each of 4 days, today included.
    write(
        daemon,
        *(
            event(contract["id"], at=now - timedelta(days=day), reason=f"{day}.{n}")
            for day in (3, 2, 1, 0)
            for n in range(3)
        ),
    )

    # 7 rows allowed: today and yesterday (6) fit, the day before would make 9.
    assert _purge(daemon, now - timedelta(days=30), max_rows=7) == 6

    assert [row.reason for row in _select(daemon)] == ["0.2", "0.1", "0.0", "1.2", "1.1", "1.0"]
    # Today's table stays, whatever max_rows says.
    assert _purge(daemon, now - timedelta(days=30), max_rows=1) == 3
    assert _days(daemon) == [now.date()]


def _tables(daemon: RunningDaemon) -> list[store.Segment]:
    async def tables() -> list[store.Segment]:
        async with engine_of(services(daemon)).connect() as connection:
            today = datetime.now(UTC).date()
            return [t for t in await store.segments(connection) if t.day <= today]

    result: list[store.Segment] = daemon.run(tables())
    return result


@pytest.mark.usefixtures("empty_auth_log")
def test_a_busy_day_goes_on_in_new_tables_that_retention_drops_whole(
    daemon: RunningDaemon, make: Factory
) -> None:
    """Today alone past max_rows: the writer starts a new table every part_rows entries, and
    retention drops today's older ones whole, keeping the newest (the soak's 1.8 M-row day)."""
    contract = make.contract()
    auth_log = services(daemon).auth_log
    started: list[int] = []
    wired = auth_log.on_new_segment, auth_log.part_rows
    auth_log.on_new_segment, auth_log.part_rows = (lambda: started.append(1)), 3
    try:
        for n in range(8):  # one batch each: r0-r2 in the first table, r3-r5, then r6-r7
            write(daemon, event(contract["id"], reason=f"r{n}"))
    finally:
        auth_log.on_new_segment, auth_log.part_rows = wired
    today = datetime.now(UTC).date()
    assert _tables(daemon) == [
        store.Segment(today, 0),
        store.Segment(today, 1),
        store.Segment(today, 2),
    ]
    assert started == [1, 1]  # each new table asks for a purge at once
    assert [row.reason for row in _select(daemon)] == [f"r{n}" for n in reversed(range(8))]

    # 4 rows allowed: the newest table (2) fits, the one before would make 5.
    assert _purge(daemon, datetime.now(UTC) - timedelta(days=30), max_rows=4) == 6

    assert _tables(daemon) == [store.Segment(today, 2)]
    assert [row.reason for row in _select(daemon)] == ["r7", "r6"]
    write(daemon, event(contract["id"], reason="r8"))  # still the newest table
    assert _tables(daemon) == [store.Segment(today, 2)]
    assert [row.reason for row in _select(daemon)] == ["r8", "r7", "r6"]


@pytest.mark.usefixtures("empty_auth_log")
def test_ids_are_never_reused_after_every_day_is_dropped(
    daemon: RunningDaemon, make: Factory
) -> None:
    contract = make.contract()
    old = datetime.now(UTC) - timedelta(days=60)
    write(daemon, event(contract["id"], at=old), event(contract["id"], at=old))
    [newest, _] = _select(daemon)
    assert _purge(daemon, datetime.now(UTC) - timedelta(days=30)) == 2
    assert _days(daemon) == []
    services(daemon).auth_log._next_id = None  # as after a restart

    write(daemon, event(contract["id"]))

    [fresh] = _select(daemon)
    assert fresh.id > newest.id


@pytest.mark.usefixtures("empty_auth_log")
def test_a_write_recovers_when_its_day_table_was_dropped_elsewhere(
    daemon: RunningDaemon, make: Factory
) -> None:
    """Another node's retention (or a rolled-back write) leaves the day cache wrong once."""
    contract = make.contract()
    write(daemon, event(contract["id"], reason="first"))

    async def drop_today() -> None:
        async with engine_of(services(daemon)).begin() as connection:
            await store.drop_day(connection, datetime.now(UTC).date())

    daemon.run(drop_today())
    with pytest.raises((StorageUnavailable, DBAPIError)):  # as the wrapper maps each dialect's
        write(daemon, event(contract["id"], reason="second"))
    write(daemon, event(contract["id"], reason="second"))  # the writer's retry

    assert [row.reason for row in _select(daemon, contract_id=contract["id"])] == ["second"]
