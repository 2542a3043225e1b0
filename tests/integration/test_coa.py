"""CoA and Disconnect-Requests (RFC 5176) after committed changes, against a NAS simulator.

The daemon records sessions from real Accounting-Starts sent from the NAS's own loopback
address; the NAS's Dynamic Authorization server is tests/coa_server.py, really listening on
UDP at that address. Every test checks the exact attributes the NAS received and the outcome
the API's coa-log shows.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    RunningDaemon,
    admin_sql,
    make_settings,
    start_daemon,
    stop_daemon,
)
from nas_simulator import (
    ACTIVE_ROWS,
    COA,
    DISCONNECT,
    SECRET,
    SUSPENDED_ROWS,
    Nas,
    coa_log,
    go_online,
    identification,
    manufacturer_with,
    requests_for,
    simulated_nas,
)
from radius_client import RadiusClient, attr
from radius_contracts.contract_dates import ContractDates
from radius_contracts.radius import codec

# Fast CoA settings: 0.3 + 0.6 + 1.2 s of waiting before a silent NAS counts as timed out.
COA_TIMEOUT, COA_TRIES = 0.3, 3
GIVE_UP = COA_TIMEOUT * (1 + 2 + 4)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def coa_daemon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningDaemon]:
    """A daemon of its own: short CoA timeouts, so the fallback tests take seconds."""
    url = base = database = None
    if request.param == "postgres":
        # A database of its own: the session's daemon owns the shared one's admin token.
        base = request.getfixturevalue("postgres_url")
        database = f"{base.rpartition('/')[2]}_coa"
        asyncio.run(admin_sql(base, f'CREATE DATABASE "{database}"'))
        url = f"{base.rpartition('/')[0]}/{database}".replace(
            "postgresql://", "postgresql+asyncpg://"
        )
    state: Path = tmp_path_factory.mktemp(f"coa-{request.param}")
    settings = make_settings(state, url)
    settings = settings.model_copy(
        update={
            "coa": settings.coa.model_copy(
                update={"timeout": COA_TIMEOUT, "tries": COA_TRIES, "layout_rate": 1000.0}
            )
        }
    )
    running, thread = start_daemon(settings)
    yield running
    stop_daemon(running, thread)
    if base is not None:
        asyncio.run(admin_sql(base, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def admin(coa_daemon: RunningDaemon) -> httpx.Client:
    return coa_daemon.client(coa_daemon.admin_token)


@pytest.fixture(scope="module")
def mikrotik(coa_daemon: RunningDaemon, admin: httpx.Client) -> Iterator[Nas]:
    """A MikroTik-like NAS whose CoA policy may change the rate limit and the address list."""
    manufacturer = manufacturer_with(
        admin,
        "Mikrotik",
        {"active": ACTIVE_ROWS, "suspended": SUSPENDED_ROWS},
        coa_identifiers=["User-Name", "Acct-Session-Id", "NAS-IP-Address"],
        coa_attributes=["mikrotik-rate-limit", "Mikrotik-Address-List"],
    )
    assert manufacturer["coa_attributes"] == ["Mikrotik-Rate-Limit", "Mikrotik-Address-List"]
    with simulated_nas(admin, manufacturer) as nas:
        yield nas


def test_speed_change_sends_coa_with_the_new_rate_limit(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    response = admin.patch(
        f"/api/v1/contracts/{online.contract['id']}", json={"config": {"max_download": "100M"}}
    )
    assert response.status_code == 200, response.text
    [(code, pairs)] = requests_for(coa_daemon, mikrotik, online, 1)
    assert code == COA
    assert pairs == [*identification(mikrotik, online), ("Mikrotik-Rate-Limit", "10M/100M")]
    [entry] = coa_log(admin, online, 1)
    assert entry["kind"] == "coa" and entry["outcome"] == "ack" and entry["attempts"] == 1
    assert entry["reason"] == "contract changed"
    assert [(a["name"], a["value"]) for a in entry["attributes"]] == pairs
    # Every request carries a Message-Authenticator (RFC 5176 §3.5 via RFC 3579).
    assert all(codec.decode(data).has_message_authenticator for data in mikrotik.server.received)


def test_bulk_upsert_sends_coa_for_the_contracts_it_changed(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    external_id = f"bulk-coa-{secrets.token_hex(4)}"
    ref = {"app": "billing", "external_id": external_id}
    assert (
        admin.patch(
            f"/api/v1/contracts/{online.contract['id']}", json={"external_refs": [ref]}
        ).status_code
        == 200
    )
    items = [
        {"external_id": external_id, "config": {"max_download": "80M"}},
        {"external_id": f"new-{external_id}", "number": f"C-{external_id}",
         "config": {"username": f"u-{external_id}"}},
    ]  # fmt: skip
    response = admin.put("/api/v1/contracts/by-external/billing", json=items)
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == [200, 201]
    [(code, pairs)] = requests_for(coa_daemon, mikrotik, online, 1)
    assert code == COA
    assert pairs == [*identification(mikrotik, online), ("Mikrotik-Rate-Limit", "10M/80M")]


def test_change_that_leaves_the_reply_alone_sends_nothing(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    response = admin.patch(
        f"/api/v1/contracts/{online.contract['id']}", json={"customer": {"name": "New Name"}}
    )
    assert response.status_code == 200
    # A later change does go out: the first sent nothing.
    admin.patch(
        f"/api/v1/contracts/{online.contract['id']}", json={"config": {"max_upload": "20M"}}
    )
    [(code, pairs)] = requests_for(coa_daemon, mikrotik, online, 2, timeout=1.5)
    assert code == COA and ("Mikrotik-Rate-Limit", "20M/50M") in pairs


def test_suspension_sends_the_suspended_layout_and_activation_disconnects(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    contract_id = online.contract["id"]
    assert admin.post(f"/api/v1/contracts/{contract_id}/suspend").status_code == 200
    [(code, pairs)] = requests_for(coa_daemon, mikrotik, online, 1)
    assert code == COA
    assert pairs == [
        *identification(mikrotik, online),
        ("Mikrotik-Rate-Limit", "256k/256k"),
        ("Mikrotik-Address-List", "suspended"),
    ]
    # Back to active: the address list cannot be taken away by CoA, so the session is ended
    # and reconnects with the active reply.
    assert admin.post(f"/api/v1/contracts/{contract_id}/activate").status_code == 200
    requests = requests_for(coa_daemon, mikrotik, online, 2)
    assert [code for code, _ in requests] == [COA, DISCONNECT]
    assert requests[1][1] == identification(mikrotik, online)
    entries = coa_log(admin, online, 2)
    assert entries[0]["reason"] == "contract suspended"
    assert entries[1]["kind"] == "disconnect"
    assert entries[1]["reason"] == "contract active (Mikrotik-Address-List cannot change by CoA)"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"action": "deactivate"}, "contract is inactive"),
        ({"action": "cancel"}, "contract is cancelled"),
        ({"config": {"password": "another-pw-1"}}, "password changed"),
        ({"config": {"mac": "00:11:22:33:44:55"}}, "MAC binding changed"),
        ({"end_date": "2020-01-31", "start_date": "2020-01-01"}, "contract ended on 2020-01-31"),
        (
            {"config": {"ipv4": "100.65.0.9"}},
            "contract changed (Framed-IP-Address cannot change by CoA)",
        ),
        ({"delete": True}, "contract deleted"),
    ],
)
def test_changes_that_end_the_session_disconnect(
    coa_daemon: RunningDaemon,
    admin: httpx.Client,
    mikrotik: Nas,
    change: dict[str, Any],
    reason: str,
) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    path = f"/api/v1/contracts/{online.contract['id']}"
    if "action" in change:
        response = admin.post(f"{path}/{change['action']}")
    elif "delete" in change:
        response = admin.delete(path)
    else:
        response = admin.patch(path, json=change)
    assert response.status_code in (200, 204), response.text
    [(code, pairs)] = requests_for(coa_daemon, mikrotik, online, 1)
    assert code == DISCONNECT
    assert pairs == identification(mikrotik, online)
    [entry] = coa_log(admin, online, 1)
    assert (entry["kind"], entry["outcome"], entry["reason"]) == ("disconnect", "ack", reason)


def test_username_change_disconnects(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    response = admin.patch(
        f"/api/v1/contracts/{online.contract['id']}",
        json={"config": {"username": online.username + "-renamed"}},
    )
    assert response.status_code == 200
    [(code, pairs)] = requests_for(coa_daemon, mikrotik, online, 1)
    # The session is named as the NAS knows it: by the old User-Name.
    assert code == DISCONNECT and pairs == identification(mikrotik, online)
    assert coa_log(admin, online, 1)[0]["reason"] == "username changed"


def test_nak_falls_back_to_disconnect(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    mikrotik.server.coa_mode = "nak"
    try:
        admin.patch(
            f"/api/v1/contracts/{online.contract['id']}", json={"config": {"max_upload": "1M"}}
        )
        requests = requests_for(coa_daemon, mikrotik, online, 2)
    finally:
        mikrotik.server.coa_mode = None
    assert [code for code, _ in requests] == [COA, DISCONNECT]
    coa, disconnect = coa_log(admin, online, 2)
    assert (coa["kind"], coa["outcome"], coa["error_cause"]) == ("coa", "nak", 503)
    assert disconnect["kind"] == "disconnect" and disconnect["outcome"] == "ack"
    assert disconnect["reason"] == "contract changed; CoA nak (Error-Cause 503)"


def test_silent_nas_times_out_after_the_api_answered_then_falls_back(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    mikrotik.server.coa_mode = "silent"
    try:
        started = time.monotonic()
        response = admin.patch(
            f"/api/v1/contracts/{online.contract['id']}", json={"config": {"max_upload": "2M"}}
        )
        answered = time.monotonic() - started
        assert response.status_code == 200
        # The API answered long before the NAS could be given up on.
        assert answered < GIVE_UP / 2, answered
        coa, disconnect = coa_log(admin, online, 2, timeout=GIVE_UP * 3)
    finally:
        mikrotik.server.coa_mode = None
    assert (coa["outcome"], coa["attempts"]) == ("timeout", COA_TRIES)
    seconds = _when(coa["finished_at"]) - _when(coa["requested_at"])
    assert seconds >= GIVE_UP * 0.9
    # The CoA was sent three times, unchanged (RFC 5080 §2.2.1 retransmission).
    copies = [
        d for d in mikrotik.server.received if d[0] == COA and online.acct_session_id.encode() in d
    ]
    assert len(copies) == COA_TRIES and len(set(copies)) == 1
    assert disconnect["kind"] == "disconnect" and disconnect["outcome"] == "ack"
    assert disconnect["reason"] == "contract changed; CoA timeout"


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_no_fallback_when_the_manufacturer_says_so(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    manufacturer = mikrotik.manufacturer["id"]
    assert (
        admin.patch(
            f"/api/v1/manufacturers/{manufacturer}", json={"coa_disconnect_fallback": False}
        ).status_code
        == 200
    )
    online = go_online(coa_daemon, admin, mikrotik)
    mikrotik.server.coa_mode = "nak"
    try:
        admin.patch(
            f"/api/v1/contracts/{online.contract['id']}", json={"config": {"max_upload": "3M"}}
        )
        requests = requests_for(coa_daemon, mikrotik, online, 2, timeout=1.5)
    finally:
        mikrotik.server.coa_mode = None
        admin.patch(f"/api/v1/manufacturers/{manufacturer}", json={"coa_disconnect_fallback": True})
    assert [code for code, _ in requests] == [COA]
    assert [e["outcome"] for e in coa_log(admin, online, 1)] == ["nak"]


def test_disconnect_session_and_contract_through_the_api(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    response = admin.post(f"/api/v1/sessions/{online.session_id}/disconnect", params={"wait": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["outcome"], body["session_id"]) == (
        "disconnect",
        "ack",
        online.session_id,
    )
    assert body["reason"].startswith("disconnect requested by ")
    [(code, pairs)] = requests_for(coa_daemon, mikrotik, online, 1)
    assert code == DISCONNECT and pairs == identification(mikrotik, online)

    second = go_online(coa_daemon, admin, mikrotik)
    response = admin.post(f"/api/v1/contracts/{second.contract['id']}/disconnect")
    assert response.status_code == 202, response.text
    assert response.json() == {
        "contract_id": second.contract["id"],
        "sessions": [second.session_id],
    }
    [(code, _pairs)] = requests_for(coa_daemon, mikrotik, second, 1)
    assert code == DISCONNECT
    response = admin.post(f"/api/v1/sessions/{second.session_id}/disconnect")
    assert response.status_code == 202
    assert response.json() == {"session_id": second.session_id, "status": "sent"}
    # Read-only tokens may not disconnect; unknown and closed sessions are told apart.
    reader = coa_daemon.client(coa_daemon.readonly_token)
    assert reader.post(f"/api/v1/sessions/{second.session_id}/disconnect").status_code == 403
    missing = admin.post("/api/v1/sessions/999999999/disconnect")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_disconnecting_a_closed_session_is_a_conflict(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    assert coa_daemon.daemon.acct_port is not None
    with RadiusClient(coa_daemon.daemon.acct_port, SECRET, source=mikrotik.address) as radius:
        stop = radius.accounting_request(
            attr("Acct-Status-Type", (2).to_bytes(4, "big")),
            attr("Acct-Session-Id", online.acct_session_id),
            attr("User-Name", online.username),
        )
        assert radius.exchange(stop) is not None
    response = admin.post(f"/api/v1/sessions/{online.session_id}/disconnect")
    assert response.status_code == 409
    assert response.json()["field"] == "id"


def test_layout_edit_sends_coa_to_every_session_it_renders_for(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    other_vendor = manufacturer_with(
        admin, "Mikrotik", {"active": ACTIVE_ROWS}, coa_attributes=["Mikrotik-Rate-Limit"]
    )
    with simulated_nas(admin, other_vendor) as other:
        first = go_online(coa_daemon, admin, mikrotik, max_download="20M")
        second = go_online(coa_daemon, admin, mikrotik, max_download="30M")
        elsewhere = go_online(coa_daemon, admin, other)
        suspended = go_online(coa_daemon, admin, mikrotik)
        admin.post(f"/api/v1/contracts/{suspended.contract['id']}/suspend")
        assert len(requests_for(coa_daemon, mikrotik, suspended, 1)) == 1
        layouts = admin.get(
            "/api/v1/radius/layouts",
            params={"manufacturer_id": mikrotik.manufacturer["id"], "purpose": "active"},
        ).json()["items"]
        [layout] = layouts
        rows = [
            {
                "attribute": "Mikrotik-Rate-Limit",
                "template": "{max_upload}/{max_download} 0/0 0/0 0/0 8",
            }
        ]
        url = f"/api/v1/radius/layouts/{layout['id']}"
        response = admin.patch(url, json={"attributes": rows})
        assert response.status_code == 200, response.text
        try:
            for online, speed in ((first, "20M"), (second, "30M")):
                [(code, pairs)] = requests_for(coa_daemon, mikrotik, online, 1)
                assert code == COA
                assert pairs == [
                    *identification(mikrotik, online),
                    ("Mikrotik-Rate-Limit", f"10M/{speed} 0/0 0/0 0/0 8"),
                ]
                [entry] = coa_log(admin, online, 1)
                assert entry["reason"] == f"layout {layout['name']} changed"
            # Neither the suspended session (another layout) nor another manufacturer's NAS.
            assert len(requests_for(coa_daemon, mikrotik, suspended, 2, timeout=0.5)) == 1
            assert other.server.received == []
            assert elsewhere.session_id
        finally:
            # The module's daemon is shared: the tests after this one (in any order) expect
            # the stock layout.
            original = [{"attribute": r["attribute"], "template": r["template"]}
                        for r in layout["attributes"]]  # fmt: skip
            restored = admin.patch(url, json={"attributes": original})
            assert restored.status_code == 200, restored.text


def test_juniper_deactivates_the_old_service_first(
    coa_daemon: RunningDaemon, admin: httpx.Client
) -> None:
    rows = [{"attribute": "ERX-Service-Activate",
             "template": "internet({max_upload_bps},{max_download_bps})"}]  # fmt: skip
    manufacturer = manufacturer_with(
        admin,
        "ERX",
        {"active": rows},
        coa_identifiers=["Acct-Session-Id"],
        coa_attributes=["ERX-Service-Activate"],
        coa_deactivate={"ERX-Service-Activate": "ERX-Service-Deactivate"},
    )
    with simulated_nas(admin, manufacturer) as juniper:
        online = go_online(coa_daemon, admin, juniper)
        admin.patch(
            f"/api/v1/contracts/{online.contract['id']}", json={"config": {"max_download": "80M"}}
        )
        [(code, pairs)] = requests_for(coa_daemon, juniper, online, 1)
    assert code == COA
    assert pairs == [
        ("Acct-Session-Id", online.acct_session_id),
        ("ERX-Service-Deactivate", "internet"),
        ("ERX-Service-Activate", "internet(10000000,80000000)"),
    ]


def test_manufacturer_coa_policy_is_validated(admin: httpx.Client) -> None:
    response = admin.post(
        "/api/v1/manufacturers",
        json={"name": f"bad-{secrets.token_hex(3)}", "coa_attributes": ["No-Such-Attribute"]},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "coa_attributes[0]"
    response = admin.post(
        "/api/v1/manufacturers",
        json={"name": f"bad-{secrets.token_hex(3)}", "coa_identifiers": ["Class"]},
    )
    assert response.status_code == 422
    assert "coa_identifiers" in response.json()["field"]


def test_coa_metrics(coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas) -> None:
    online = go_online(coa_daemon, admin, mikrotik)
    admin.post(f"/api/v1/sessions/{online.session_id}/disconnect", params={"wait": True})
    text = httpx.get(f"{coa_daemon.base_url}/metrics").text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith('radius_contracts_coa_requests_total{kind="disconnect",outcome="ack"}')
    )
    assert float(line.split()[-1]) >= 1


Check = Callable[[], bool]


def test_bulk_suspend_changes_many_and_sends_their_coa(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    first = go_online(coa_daemon, admin, mikrotik)
    second = go_online(coa_daemon, admin, mikrotik)
    cancelled = go_online(coa_daemon, admin, mikrotik)
    admin.post(f"/api/v1/contracts/{cancelled.contract['id']}/cancel")
    ids = [first.contract["id"], second.contract["id"], cancelled.contract["id"], 999_999_999]
    response = admin.post("/api/v1/contracts/bulk/suspend", json={"ids": ids})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] == ids[:2]
    assert [r["id"] for r in body["refused"]] == ids[2:]
    assert "cannot go from cancelled to suspended" in body["refused"][0]["detail"]
    for online in (first, second):
        contract = admin.get(f"/api/v1/contracts/{online.contract['id']}").json()
        assert contract["status"] == "suspended"
        [(code, pairs)] = requests_for(coa_daemon, mikrotik, online, 1)
        assert code == COA and ("Mikrotik-Address-List", "suspended") in pairs
    assert admin.post("/api/v1/contracts/bulk/suspend", json={"ids": []}).status_code == 422
    reader = coa_daemon.client(coa_daemon.readonly_token)
    assert reader.post("/api/v1/contracts/bulk/suspend", json={"ids": ids}).status_code == 403


def test_contract_dates_job_disconnects_contracts_that_ended(
    coa_daemon: RunningDaemon, admin: httpx.Client, mikrotik: Nas
) -> None:
    today = date.today()
    ending = go_online(coa_daemon, admin, mikrotik)
    extended = go_online(coa_daemon, admin, mikrotik)
    for online, auto_extend in ((ending, False), (extended, True)):
        response = admin.patch(
            f"/api/v1/contracts/{online.contract['id']}",
            json={"end_date": today.isoformat(), "auto_extend": auto_extend},
        )
        assert response.status_code == 200
    # Ending today is still fine: nothing was sent for the change.
    assert requests_for(coa_daemon, mikrotik, ending, 1, timeout=0.5) == []
    daemon = coa_daemon.daemon
    assert daemon.live is not None and daemon.services is not None
    job = ContractDates(
        daemon.services.context.sessions,
        disconnect=daemon.live.disconnect_contracts,
        today=lambda: today + timedelta(days=1),
    )
    result = coa_daemon.run(job.run())
    assert result["ended"] >= 1 and result["disconnected"] >= 1
    [(code, pairs)] = requests_for(coa_daemon, mikrotik, ending, 1)
    assert code == DISCONNECT and pairs == identification(mikrotik, ending)
    [entry] = coa_log(admin, ending, 1)
    assert entry["reason"] == f"contract ended on {today.isoformat()}"
    assert requests_for(coa_daemon, mikrotik, extended, 1, timeout=0.3) == []


def test_suspension_without_a_suspended_layout_disconnects(
    coa_daemon: RunningDaemon, admin: httpx.Client
) -> None:
    manufacturer = manufacturer_with(
        admin,
        "Mikrotik",
        {"active": ACTIVE_ROWS},
        coa_identifiers=["User-Name", "Acct-Session-Id", "NAS-IP-Address"],
        coa_attributes=["Mikrotik-Rate-Limit"],
    )
    with simulated_nas(admin, manufacturer) as nas:
        online = go_online(coa_daemon, admin, nas)
        assert admin.post(f"/api/v1/contracts/{online.contract['id']}/suspend").status_code == 200
        [(code, pairs)] = requests_for(coa_daemon, nas, online, 1)
    assert code == DISCONNECT and pairs == identification(nas, online)
    assert coa_log(admin, online, 1)[0]["reason"] == "contract is suspended"
