"""Accounting-Requests against the running daemon, with radclient as the NAS where it can be.

Every record is checked where it matters: in the database, after the Accounting-Response.
Our own client sends what radclient cannot: exact retransmits, chosen source addresses.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from conftest import LO_SECRET as SECRET
from conftest import Factory, RunningDaemon
from radclient import radclient
from radius_client import RadiusClient, attr
from radius_contracts.db.models import AcctSession, Nas, UsageDaily
from radius_contracts.radius import codec


def _acct_port(daemon: RunningDaemon) -> int:
    assert daemon.daemon.acct_port is not None
    return daemon.daemon.acct_port


def _auth_port(daemon: RunningDaemon) -> int:
    assert daemon.daemon.auth_port is not None
    return daemon.daemon.auth_port


def acct(status: str, session_id: str, user: str, *extra: str) -> str:
    lines = [
        f"Acct-Status-Type = {status}",
        f'Acct-Session-Id = "{session_id}"',
        f'User-Name = "{user}"',
        "NAS-IP-Address = 127.0.0.1",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def sessions_of(daemon: RunningDaemon, nas_id: int, session_id: str) -> list[AcctSession]:
    """Every stored session with this NAS and Acct-Session-Id, oldest first."""
    assert daemon.daemon.services is not None
    factory = daemon.daemon.services.context.sessions

    async def fetch() -> list[AcctSession]:
        async with factory() as session:
            stmt = (
                select(AcctSession)
                .where(AcctSession.nas_id == nas_id, AcctSession.acct_session_id == session_id)
                .order_by(AcctSession.id)
            )
            return list((await session.scalars(stmt)).all())

    result: list[AcctSession] = daemon.run(fetch())
    return result


def usage_of(daemon: RunningDaemon, contract_id: int) -> list[UsageDaily]:
    assert daemon.daemon.services is not None
    factory = daemon.daemon.services.context.sessions

    async def fetch() -> list[UsageDaily]:
        async with factory() as session:
            stmt = select(UsageDaily).where(UsageDaily.contract_id == contract_id)
            return list((await session.scalars(stmt)).all())

    result: list[UsageDaily] = daemon.run(fetch())
    return result


def nas_row(daemon: RunningDaemon, nas_id: int) -> Nas:
    assert daemon.daemon.services is not None
    factory = daemon.daemon.services.context.sessions

    async def fetch() -> Nas:
        async with factory() as session:
            row = await session.get(Nas, nas_id)
            assert row is not None
            return row

    result: Nas = daemon.run(fetch())
    return result


def metric(daemon: RunningDaemon, name: str) -> float:
    text = httpx.get(f"{daemon.base_url}/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


DUPLICATES = (
    "radius_contracts_radius_requests_total"
    '{code="Accounting-Request",port="acct",result="duplicate"}'
)


def new_id() -> str:
    return secrets.token_hex(6).upper()


@pytest.fixture
def client(daemon: RunningDaemon, lo_nas: dict[str, Any]) -> Iterator[RadiusClient]:
    with RadiusClient(_acct_port(daemon), SECRET) as radius:
        yield radius


# -- the session life cycle with radclient -------------------------------------------------


def test_start_interim_stop_record_one_session(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract()
    user, sid = contract["config"]["username"], new_id()
    start = acct(
        "Start", sid, user,
        "Framed-IP-Address = 100.64.1.7",
        "Framed-IPv6-Prefix = 2001:db8:1:2::/64",
        "Delegated-IPv6-Prefix = 2001:db8:ff00::/56",
        'Calling-Station-Id = "AA-BB-CC-00-11-22"',
        'Called-Station-Id = "pppoe-bras1"',
        "NAS-Port = 15728650",
        'NAS-Port-Id = "ether2.100"',
        'NAS-Identifier = "bras1"',
    )  # fmt: skip
    result = radclient(_acct_port(daemon), SECRET, start, command="acct")
    assert result.code == "Accounting-Response", result.output
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.stopped_at is None and row.contract_id == contract["id"]
    assert row.username == user and row.framed_ip == "100.64.1.7"
    assert row.framed_ipv6_prefix == "2001:db8:1:2::/64"
    assert row.delegated_ipv6_prefix == "2001:db8:ff00::/56"
    assert row.calling_station_id == "AA-BB-CC-00-11-22"
    assert row.called_station_id == "pppoe-bras1"
    assert (row.nas_port, row.nas_port_id) == (15728650, "ether2.100")
    assert (row.nas_ip_address, row.nas_identifier) == ("127.0.0.1", "bras1")

    interim = acct(
        "Interim-Update", sid, user,
        "Acct-Session-Time = 300", "Acct-Input-Octets = 1000", "Acct-Output-Octets = 5000",
        "Acct-Input-Packets = 10", "Acct-Output-Packets = 20",
    )  # fmt: skip
    result = radclient(_acct_port(daemon), SECRET, interim, command="acct")
    assert result.code == "Accounting-Response", result.output
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.stopped_at is None
    assert (row.session_time, row.input_octets, row.output_octets) == (300, 1000, 5000)
    assert (row.input_packets, row.output_packets) == (10, 20)
    assert row.framed_ip == "100.64.1.7"  # kept from the Start

    stop = acct(
        "Stop", sid, user,
        "Acct-Session-Time = 600", "Acct-Input-Octets = 2000", "Acct-Output-Octets = 9000",
        "Acct-Terminate-Cause = Lost-Carrier",
    )  # fmt: skip
    result = radclient(_acct_port(daemon), SECRET, stop, command="acct")
    assert result.code == "Accounting-Response", result.output
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.stopped_at is not None and row.terminate_cause == "Lost-Carrier"
    assert (row.session_time, row.input_octets, row.output_octets) == (600, 2000, 9000)
    # Usage adds up the deltas: the Stop's totals, once.
    [day] = usage_of(daemon, contract["id"])
    assert (day.input_octets, day.output_octets, day.session_time) == (2000, 9000, 600)


def test_gigawords_make_64_bit_counters(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract()
    user, sid = contract["config"]["username"], new_id()
    radclient(_acct_port(daemon), SECRET, acct("Start", sid, user), command="acct")
    stop = acct(
        "Stop", sid, user,
        "Acct-Session-Time = 86400",
        "Acct-Input-Octets = 5", "Acct-Input-Gigawords = 3",
        "Acct-Output-Octets = 4294967295", "Acct-Output-Gigawords = 70",
    )  # fmt: skip
    result = radclient(_acct_port(daemon), SECRET, stop, command="acct")
    assert result.code == "Accounting-Response", result.output
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.input_octets == 3 * 2**32 + 5
    assert row.output_octets == 70 * 2**32 + 4294967295
    [day] = usage_of(daemon, contract["id"])
    assert day.output_octets == 70 * 2**32 + 4294967295


def test_stop_without_start_records_a_closed_session(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract()
    user, sid = contract["config"]["username"], new_id()
    stop = acct(
        "Stop", sid, user, "Acct-Session-Time = 120", "Acct-Input-Octets = 77",
        "Acct-Terminate-Cause = User-Request", "Framed-IP-Address = 100.64.9.9",
    )  # fmt: skip
    result = radclient(_acct_port(daemon), SECRET, stop, command="acct")
    assert result.code == "Accounting-Response", result.output
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.stopped_at is not None and row.terminate_cause == "User-Request"
    assert row.input_octets == 77 and row.framed_ip == "100.64.9.9"
    # It started Acct-Session-Time before it stopped.
    assert abs((row.stopped_at - row.started_at).total_seconds() - 120) < 2


def test_interim_without_start_opens_the_session(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract()
    user, sid = contract["config"]["username"], new_id()
    interim = acct("Interim-Update", sid, user, "Acct-Session-Time = 3600")
    result = radclient(_acct_port(daemon), SECRET, interim, command="acct")
    assert result.code == "Accounting-Response", result.output
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.stopped_at is None and row.session_time == 3600
    assert abs((row.updated_at - row.started_at).total_seconds() - 3600) < 2


def test_unknown_user_sessions_are_still_recorded(
    daemon: RunningDaemon, lo_nas: dict[str, Any]
) -> None:
    sid = new_id()
    result = radclient(
        _acct_port(daemon), SECRET, acct("Start", sid, "not-a-subscriber"), command="acct"
    )
    assert result.code == "Accounting-Response", result.output
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.contract_id is None and row.username == "not-a-subscriber"


def test_accounting_on_closes_the_nas_sessions_only(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    other = make.nas(address="127.0.0.23", secret="other-nas-secret")
    contract = make.contract()
    user = contract["config"]["username"]
    mine, theirs = new_id(), new_id()
    radclient(_acct_port(daemon), SECRET, acct("Start", mine, user), command="acct")
    with RadiusClient(_acct_port(daemon), "other-nas-secret", source="127.0.0.23") as nas2:
        request = nas2.accounting_request(
            attr("Acct-Status-Type", "Start"),
            attr("Acct-Session-Id", theirs),
            attr("User-Name", user),
        )
        reply = nas2.exchange(request)
        assert reply is not None and reply.code == codec.Code.ACCOUNTING_RESPONSE
    on = "Acct-Status-Type = Accounting-On\nNAS-IP-Address = 127.0.0.1\n"
    result = radclient(_acct_port(daemon), SECRET, on, command="acct")
    assert result.code == "Accounting-Response", result.output
    [closed] = sessions_of(daemon, lo_nas["id"], mine)
    assert closed.stopped_at is not None and closed.terminate_cause == "NAS-Reboot"
    [untouched] = sessions_of(daemon, other["id"], theirs)
    assert untouched.stopped_at is None
    assert nas_row(daemon, lo_nas["id"]).accounting_on_at is not None
    # After the reboot the NAS may reuse the id: that is a new session, the old one stays.
    radclient(_acct_port(daemon), SECRET, acct("Start", mine, user), command="acct")
    old, new = sessions_of(daemon, lo_nas["id"], mine)
    assert old.stopped_at is not None and new.stopped_at is None


# -- retransmits and repeats -----------------------------------------------------------------


def test_a_retransmit_gets_the_same_answer_and_counts_once(
    daemon: RunningDaemon, client: RadiusClient, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract()
    user, sid = contract["config"]["username"], new_id()
    start = client.accounting_request(
        attr("Acct-Status-Type", "Start"), attr("Acct-Session-Id", sid), attr("User-Name", user)
    )
    assert client.exchange(start) is not None
    stop = client.accounting_request(
        attr("Acct-Status-Type", "Stop"),
        attr("Acct-Session-Id", sid),
        attr("User-Name", user),
        attr("Acct-Session-Time", "60"),
        attr("Acct-Input-Octets", "1000"),
        attr("Acct-Delay-Time", "0"),
    )
    duplicates = metric(daemon, DUPLICATES)
    # The NAS gives up waiting and sends it again (same id and authenticator) while the first
    # copy is being committed: that copy is answered once it is, the retransmit not at all.
    client.send_raw(stop)
    client.send_raw(stop)
    first = client.receive(3)
    assert first is not None and client.receive(0.3) is None
    # Its answer was lost on the way: the next retransmit gets the same answer again.
    client.send_raw(stop)
    assert client.receive(3) == first
    assert metric(daemon, DUPLICATES) > duplicates
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.input_octets == 1000
    [day] = usage_of(daemon, contract["id"])
    assert day.input_octets == 1000


def test_a_stop_repeated_as_a_new_request_changes_nothing(
    daemon: RunningDaemon, client: RadiusClient, lo_nas: dict[str, Any], make: Factory
) -> None:
    """Past the reply cache's window a NAS may resend a Stop with a new Identifier."""
    contract = make.contract()
    user, sid = contract["config"]["username"], new_id()
    stop = (
        attr("Acct-Status-Type", "Stop"),
        attr("Acct-Session-Id", sid),
        attr("User-Name", user),
        attr("Acct-Session-Time", "90"),
        attr("Acct-Output-Octets", "4242"),
    )
    for _ in range(3):
        assert client.exchange(client.accounting_request(*stop)) is not None
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.output_octets == 4242
    [day] = usage_of(daemon, contract["id"])
    assert day.output_octets == 4242 and day.session_time == 90


def test_an_interim_after_the_stop_does_not_reopen_the_session(
    daemon: RunningDaemon, client: RadiusClient, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract()
    user, sid = contract["config"]["username"], new_id()
    base = (attr("Acct-Session-Id", sid), attr("User-Name", user))
    client.exchange(client.accounting_request(attr("Acct-Status-Type", "Start"), *base))
    client.exchange(
        client.accounting_request(
            attr("Acct-Status-Type", "Stop"), *base, attr("Acct-Session-Time", "30")
        )
    )
    # An Interim stamped before the Stop, delivered late.
    late = client.accounting_request(
        attr("Acct-Status-Type", "Interim-Update"),
        *base,
        attr("Acct-Session-Time", "20"),
        attr("Event-Timestamp", str(int(time.time()) - 10)),
    )
    assert client.exchange(late) is not None
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.stopped_at is not None and row.session_time == 30


# -- what is dropped -----------------------------------------------------------------------


def test_a_wrong_secret_gets_no_answer_and_is_counted(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract()
    user, sid = contract["config"]["username"], new_id()
    bad = 'radius_contracts_radius_drops_total{port="acct",reason="bad_authenticator"}'
    before = metric(daemon, bad)
    result = radclient(
        _acct_port(daemon), "not-the-secret", acct("Start", sid, user), command="acct",
        timeout=0.5,
    )  # fmt: skip
    assert result.code is None, result.output
    assert metric(daemon, bad) >= before + 1
    assert sessions_of(daemon, lo_nas["id"], sid) == []


def test_a_request_without_session_id_is_dropped(
    daemon: RunningDaemon, client: RadiusClient, lo_nas: dict[str, Any]
) -> None:
    request = client.accounting_request(
        attr("Acct-Status-Type", "Start"), attr("User-Name", "someone")
    )
    assert client.exchange(request, timeout=0.5) is None


def _wrong_message_authenticator(client: RadiusClient, *attributes: bytes) -> bytes:
    """An Accounting-Request whose Message-Authenticator was made with another secret and
    whose Request Authenticator (RFC 2866 §3) is right: only the first check can refuse it."""
    forged = codec.encode_request(
        codec.Code.ACCOUNTING_REQUEST, client.next_id(), b"".join(attributes), b"other-secret",
        message_authenticator=True,
    )  # fmt: skip
    body = forged[20:]
    authenticator = hashlib.md5(forged[:4] + bytes(16) + body + client.secret).digest()
    request = forged[:4] + authenticator + body
    packet = codec.decode(request)
    assert codec.verify_request_authenticator(packet, client.secret)
    assert not codec.verify_message_authenticator(packet, client.secret)
    return request


def test_message_authenticator_in_accounting_is_checked(
    daemon: RunningDaemon, client: RadiusClient, lo_nas: dict[str, Any], make: Factory
) -> None:
    contract = make.contract()
    user = contract["config"]["username"]
    body = (attr("Acct-Status-Type", "Start"), attr("User-Name", user))
    good_id, bad_id = new_id(), new_id()
    good = client.accounting_request(
        *body, attr("Acct-Session-Id", good_id), message_authenticator=True
    )
    bad = _wrong_message_authenticator(client, *body, attr("Acct-Session-Id", bad_id))
    dropped = daemon.daemon.port_stats["acct"]["drop_bad_message_authenticator"]

    assert client.exchange(good) is not None
    assert client.exchange(bad, timeout=0.5) is None

    assert daemon.daemon.port_stats["acct"]["drop_bad_message_authenticator"] == dropped + 1
    assert len(sessions_of(daemon, lo_nas["id"], good_id)) == 1
    assert sessions_of(daemon, lo_nas["id"], bad_id) == []


# -- Acct-Interim-Interval in Access-Accept --------------------------------------------------


def pap(user: str, password: str) -> str:
    return f'User-Name = "{user}"\nUser-Password = "{password}"\nMessage-Authenticator = 0x00\n'


def test_accept_asks_for_interim_updates(
    daemon: RunningDaemon, lo_nas: dict[str, Any], make: Factory, api: httpx.Client
) -> None:
    contract = make.contract(config={"password": "interim-pw"})
    user = contract["config"]["username"]
    result = radclient(_auth_port(daemon), SECRET, pap(user, "interim-pw"))
    assert result.code == "Access-Accept", result.output
    assert result.first("Acct-Interim-Interval") == "300"  # the [accounting] default


def test_a_nas_of_its_own_interval(daemon: RunningDaemon, make: Factory, api: httpx.Client) -> None:
    with_interval = make.nas(address="127.0.0.31", secret="nas31-secret", interim_interval=60)
    without = make.nas(address="127.0.0.32", secret="nas32-secret", interim_interval=0)
    # Two NAS, no Calling-Station-Id: without a limit, no place to tell the logins apart by.
    contract = make.contract(config={"password": "pw31", "simultaneous_use": None})
    user = contract["config"]["username"]
    for nas, secret, expected in ((with_interval, "nas31-secret", b"\0\0\0\x3c"),
                                  (without, "nas32-secret", None)):  # fmt: skip
        with RadiusClient(_auth_port(daemon), secret, source=nas["address"]) as radius:
            reply = radius.exchange(radius.access_request(user, "pw31"))
        assert reply is not None and reply.accepted
        values = reply.values().get("Acct-Interim-Interval")
        assert (values[0] if values else None) == expected


def test_accounting_off_closes_the_nas_sessions_too(daemon: RunningDaemon, make: Factory) -> None:
    nas = make.nas(address="127.0.0.24", secret="off-nas-secret")
    sid = new_id()
    with RadiusClient(_acct_port(daemon), "off-nas-secret", source="127.0.0.24") as nas24:
        start = nas24.accounting_request(
            attr("Acct-Status-Type", "Start"), attr("Acct-Session-Id", sid),
            attr("User-Name", "someone"),
        )  # fmt: skip
        assert nas24.exchange(start) is not None
    # radclient sends from 127.0.0.1; the Accounting-Off must come from the NAS itself.
    with RadiusClient(_acct_port(daemon), "off-nas-secret", source="127.0.0.24") as nas24:
        off = nas24.accounting_request(attr("Acct-Status-Type", "Accounting-Off"))
        reply = nas24.exchange(off)
        assert reply is not None and reply.code == codec.Code.ACCOUNTING_RESPONSE
    [row] = sessions_of(daemon, nas["id"], sid)
    assert row.stopped_at is not None and row.terminate_cause == "NAS-Reboot"


def test_accounting_off_with_radclient(daemon: RunningDaemon, lo_nas: dict[str, Any]) -> None:
    off = "Acct-Status-Type = Accounting-Off\nNAS-IP-Address = 127.0.0.1\n"
    result = radclient(_acct_port(daemon), SECRET, off, command="acct")
    assert result.code == "Accounting-Response", result.output
    assert nas_row(daemon, lo_nas["id"]).accounting_on_at is not None


def test_a_start_arriving_after_its_stop_changes_nothing(
    daemon: RunningDaemon, client: RadiusClient, lo_nas: dict[str, Any], make: Factory
) -> None:
    """The Start was lost and retransmitted; the Stop overtook it."""
    contract = make.contract()
    user, sid = contract["config"]["username"], new_id()
    base = (attr("Acct-Session-Id", sid), attr("User-Name", user))
    stop = client.accounting_request(
        attr("Acct-Status-Type", "Stop"), *base, attr("Acct-Session-Time", "7200"),
        attr("Acct-Input-Octets", "5000"),
    )  # fmt: skip
    assert client.exchange(stop) is not None
    # Stamped a little before the Stop, though the session claims two hours.
    start = client.accounting_request(
        attr("Acct-Status-Type", "Start"), *base,
        attr("Event-Timestamp", str(int(time.time()) - 1)),
    )  # fmt: skip
    assert client.exchange(start) is not None
    [row] = sessions_of(daemon, lo_nas["id"], sid)
    assert row.stopped_at is not None and row.input_octets == 5000
    [day] = usage_of(daemon, contract["id"])
    assert day.input_octets == 5000
