"""The CoA dispatcher over real UDP: one request per session in flight, newest wins, fallback."""

from __future__ import annotations

import asyncio

from coa_server import CoaServer
from radius_contracts.aaa.coa_dispatch import CoaDispatcher, CoaJob
from radius_contracts.domain import CoaPolicy, CoaRecord, NasSnapshot, SessionTarget
from radius_contracts.radius import codec
from radius_contracts.radius.coa import CoaSender
from radius_contracts.radius.dictionary import AttributeCatalog

SECRET = "dispatch-secret-1"


def _nas(port: int) -> NasSnapshot:
    return NasSnapshot(
        id=1, name="bras", address="127.0.0.1", secret=SECRET, manufacturer_id=1,
        manufacturer_name="m", manufacturer_active=True, pop_name=None, coa_port=port,
        require_message_authenticator=True,
        coa=CoaPolicy(identifiers=("Acct-Session-Id",), attributes=("Session-Timeout",)),
    )  # fmt: skip


def _job(nas: NasSnapshot, kind: str, value: str, session: int = 1) -> CoaJob:
    target = SessionTarget(session, 10, 1, "u", f"s{session}")
    attributes = (("Session-Timeout", value),) if kind == "coa" else ()
    return CoaJob(target, nas, kind, f"{kind} {value}", attributes, fallback=True)  # type: ignore[arg-type]


def _run(server: CoaServer, catalog: AttributeCatalog, scenario: str) -> list[CoaRecord]:
    async def main() -> list[CoaRecord]:
        sender = CoaSender(timeout=0.2, tries=2)
        records: list[CoaRecord] = []
        dispatcher = CoaDispatcher(sender, catalog.get, records.append)
        nas = _nas(server.port)
        if scenario == "serialised":
            jobs = [_job(nas, "coa", "100"), _job(nas, "coa", "200"),
                    _job(nas, "disconnect", "x"), _job(nas, "coa", "300")]  # fmt: skip
            waits = [job.wait() for job in jobs]
            for job in jobs:
                dispatcher.submit(job)
            done = await asyncio.gather(*waits)
            assert done[1] is done[2] is done[3]  # all answered by the disconnect
        else:
            job = _job(nas, "coa", "100")
            waiter = job.wait()
            dispatcher.submit(job)
            assert (await waiter).kind == "disconnect"
        await dispatcher.close(1.0)
        sender.close()
        return records

    return asyncio.run(main())


def _catalog() -> AttributeCatalog:
    from radius_contracts.settings import Settings

    settings = Settings()
    return AttributeCatalog.load(settings.radius.dictionary, settings.radius.extra_dictionary_dirs)


def test_one_request_per_session_and_a_waiting_disconnect_is_never_replaced() -> None:
    catalog = _catalog()
    with CoaServer(SECRET.encode()) as server:
        records = _run(server, catalog, "serialised")
        sent = [codec.decode(data).code for data in server.received]
    # The first CoA went at once; 200 was replaced by the Disconnect, which 300 could not
    # replace: two requests in all, in order.
    assert sent == [codec.Code.COA_REQUEST, codec.Code.DISCONNECT_REQUEST]
    assert [(r.kind, r.reason, r.outcome) for r in records] == [
        ("coa", "coa 100", "ack"),
        ("disconnect", "disconnect x", "ack"),
    ]


def test_unanswered_coa_falls_back_to_disconnect() -> None:
    catalog = _catalog()
    with CoaServer(SECRET.encode(), coa_mode="silent") as server:
        records = _run(server, catalog, "fallback")
    assert [(r.kind, r.outcome, r.attempts) for r in records] == [
        ("coa", "timeout", 2),
        ("disconnect", "ack", 1),
    ]
    assert records[1].reason == "coa 100; CoA timeout"
