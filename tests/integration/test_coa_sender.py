"""The CoA / Disconnect sender against a NAS simulator that really listens on UDP."""

from __future__ import annotations

import asyncio

import pytest

from coa_server import CoaServer
from radius_client import attr
from radius_contracts.radius import codec
from radius_contracts.radius.coa import CoaResult, CoaSender

SECRET = b"coa-secret"
SESSION = attr("Acct-Session-Id", "81A0001") + attr("User-Name", "ana@fiber")


async def send(
    server: CoaServer, code: int = codec.Code.COA_REQUEST, **options: float
) -> CoaResult:
    sender = CoaSender(timeout=options.pop("timeout", 0.2), **options)
    try:
        return await sender.send("127.0.0.1", server.port, SECRET, code, SESSION)
    finally:
        sender.close()


def test_ack_and_what_the_nas_received() -> None:
    with CoaServer(SECRET) as nas:
        result = asyncio.run(send(nas))
        assert result.outcome == "ack" and result.attempts == 1
        [packet] = nas.packets()
    assert packet.code == codec.Code.COA_REQUEST
    assert codec.verify_request_authenticator(packet, SECRET)
    # Message-Authenticator first, valid (RFC 5176 §3.5), then the attributes given.
    assert packet.attributes[0][0] == codec.MESSAGE_AUTHENTICATOR
    assert codec.verify_message_authenticator(packet, SECRET)
    assert packet.get(codec.ACCT_SESSION_ID) == b"81A0001"


def test_nak_carries_the_error_cause() -> None:
    with CoaServer(SECRET, mode="nak", error_cause=503) as nas:
        result = asyncio.run(send(nas, codec.Code.DISCONNECT_REQUEST))
    assert (result.outcome, result.error_cause) == ("nak", 503)


def test_retransmits_are_the_same_packet_until_answered() -> None:
    with CoaServer(SECRET, ignore_first=2) as nas:
        result = asyncio.run(send(nas, tries=3))
        assert result.outcome == "ack" and result.attempts == 3
        assert len(nas.received) == 3 and len(set(nas.received)) == 1


def test_a_silent_nas_times_out_after_every_try() -> None:
    with CoaServer(SECRET, mode="silent") as nas:
        result = asyncio.run(send(nas, tries=3, timeout=0.05, backoff=2.0))
        assert result.outcome == "timeout" and result.attempts == 3
        assert len(nas.received) == 3
    # Waits of 0.05, 0.1 and 0.2 s.
    assert 0.3 <= result.seconds < 2


def test_a_reply_signed_with_another_secret_is_ignored() -> None:
    with CoaServer(SECRET, reply_secret=b"not-ours") as nas:
        result = asyncio.run(send(nas, tries=2, timeout=0.05))
    assert result.outcome == "timeout"


def test_many_at_once_to_one_nas() -> None:
    """More requests than Identifiers: each still gets its own answer."""

    async def many(nas: CoaServer) -> list[str]:
        sender = CoaSender(timeout=1.0, max_in_flight=1000)
        try:
            results = await asyncio.gather(
                *(
                    sender.send("127.0.0.1", nas.port, SECRET, codec.Code.COA_REQUEST, SESSION)
                    for _ in range(600)
                )
            )
        finally:
            sender.close()
        return [r.outcome for r in results]

    with CoaServer(SECRET) as nas:
        outcomes = asyncio.run(many(nas))
    assert outcomes == ["ack"] * 600


def test_only_coa_and_disconnect_codes() -> None:
    with pytest.raises(ValueError, match="not a CoA"):
        asyncio.run(CoaSender().send("127.0.0.1", 3799, SECRET, codec.Code.ACCESS_REQUEST, b""))
