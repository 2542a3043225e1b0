"""The management API refuses what would cost memory or time before it costs it (issue 18).

Against `radius-contracts serve` as a child process, over real TCP sockets: a body without a
token is refused from the headers alone (RSS stays flat), a body over the limit is refused
before it is read, slow headers and bodies are cut off, requests beyond the concurrency bound
get 503 with Retry-After, and thousands of idle connections do not lock staff out.
Storage plays no part here (a token lookup at most): SQLite only.
"""

from __future__ import annotations

import contextlib
import re
import resource
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from served import Served, free_port

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
MAX_REQUESTS = 4
MAX_BODY = 1_048_576
MiB = 1_048_576


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("guard")
    api = free_port()
    config = tmp / "rc.toml"
    config.write_text(
        f'state_dir = "{tmp / "state"}"\n'
        f'[radius]\nbind = "127.0.0.1"\nauth_port = {free_port(socket.SOCK_DGRAM)}\n'
        f"acct_port = {free_port(socket.SOCK_DGRAM)}\n"
        f"[api]\nport = {api}\nheader_timeout = {HEADER_TIMEOUT}\n"
        f"body_timeout = {BODY_TIMEOUT}\nmax_requests = {MAX_REQUESTS}\n"
    )
    # Started with the usual soft limit of 1,024 descriptors: the daemon must raise its own.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        daemon = Served(config, api, tmp / "serve.log")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    daemon.token = (tmp / "state" / "admin-token").read_text().strip()  # type: ignore[attr-defined]
    try:
        yield daemon
    finally:
        daemon.stop()


def token(served: Served) -> str:
    value: str = served.token  # type: ignore[attr-defined]
    return value


def connect(served: Served) -> socket.socket:
    port = int(served.base_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def head(path: str, *lines: str, method: str = "POST") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
        + "".join(f"{line}\r\n" for line in lines)
        + "\r\n"
    ).encode()


def response(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """What the server sent until it closed the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def status(data: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    assert match, data[:200]
    return int(match.group(1))


def send_until_answered(sock: socket.socket, total: int, chunk: bytes) -> int:
    """Send up to ``total`` bytes of ``chunk``s, stopping once the server answers or closes;
    the bytes sent."""
    sent = 0
    sock.settimeout(5)
    while sent < total:
        # Past the first 64 KiB, wait a moment for the answer after each chunk: on a busy
        # machine the daemon may take a while to read, and loopback buffers alone hold more
        # than a MiB, so an unpaced sender says nothing about what the daemon took.
        wait = 0.0 if sent < 64 * 1024 else 0.01
        readable, _, _ = select.select([sock], [], [], wait)
        if readable:
            break
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            break
        sent += len(chunk)
    return sent


def rss_kib(served: Served) -> int:
    status_file = Path(f"/proc/{served.process.pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status_file, re.M)
    assert match
    return int(match.group(1))


def refusals(served: Served, reason: str) -> float:
    text = httpx.get(f"{served.base_url}/metrics", timeout=10).text
    match = re.search(
        rf'^radius_contracts_api_refusals_total\{{reason="{reason}"\}} (\S+)$', text, re.M
    )
    assert match, f"no api_refusals_total for {reason}"
    return float(match.group(1))


def test_a_body_without_a_token_is_refused_from_the_headers_alone(served: Served) -> None:
    before = refusals(served, "unauthenticated")
    with connect(served) as sock:
        # 50 MB announced, none sent: the answer cannot wait for the body.
        sock.sendall(
            head("/api/v1/pops", "Content-Type: application/json", f"Content-Length: {50 * MiB}")
        )
        data = response(sock, timeout=5)
    assert status(data) == 401
    assert b"connection: close" in data.lower()
    assert refusals(served, "unauthenticated") == before + 1


def test_a_50_mb_body_without_a_token_is_not_read_and_rss_stays_flat(served: Served) -> None:
    before = rss_kib(served)
    chunk = b"[" + b"1," * 32767 + b"1"  # 64 KiB of a JSON array that never ends
    for framing in (f"Content-Length: {50 * MiB}", "Transfer-Encoding: chunked"):
        with connect(served) as sock:
            sock.sendall(head("/api/v1/pops", "Content-Type: application/json", framing))
            payload = chunk if "Length" in framing else b"10000\r\n" + chunk + b"\r\n"
            sent = send_until_answered(sock, 50 * MiB, payload)
            data = response(sock, timeout=5)
        # The socket buffers hold a few MB at most; the rest was never accepted.
        assert sent < 16 * MiB, (framing, sent)
        assert data == b"" or status(data) == 401
    grown = rss_kib(served) - before
    print(f"RSS {before} KiB before, grew {grown} KiB over two 50 MB bodies without a token")
    assert grown < 20 * 1024


def test_an_announced_body_over_the_limit_is_refused_before_it_is_read(served: Served) -> None:
    before = refusals(served, "body_too_large")
    with connect(served) as sock:
        sock.sendall(
            head(
                "/api/v1/pops",
                f"Authorization: Bearer {token(served)}",
                "Content-Type: application/json",
                f"Content-Length: {MAX_BODY + 1}",
            )
        )
        data = response(sock, timeout=5)
    assert status(data) == 413
    assert refusals(served, "body_too_large") == before + 1


def test_a_chunked_body_is_cut_off_at_the_limit(served: Served) -> None:
    before = refusals(served, "body_too_large")
    chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"  # whitespace: valid JSON padding
    with connect(served) as sock:
        sock.sendall(
            head(
                "/api/v1/pops",
                f"Authorization: Bearer {token(served)}",
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
            )
        )
        sent = send_until_answered(sock, 20 * MiB, chunk)
        data = response(sock, timeout=5)
    assert sent < 16 * MiB
    # The server closes with the rest of the body unread: the kernel resets the connection,
    # which may discard the 413 on the client's side before it is read. The count tells.
    assert data == b"" or status(data) == 413
    assert refusals(served, "body_too_large") == before + 1


def test_only_the_bearer_scheme_carries_a_token(served: Served) -> None:
    before = refusals(served, "unauthenticated")
    for scheme in ("Basic", "Token", "Bearer-ish"):
        answer = httpx.get(
            f"{served.base_url}/api/v1/pops",
            headers={"Authorization": f"{scheme} {token(served)}"},
        )
        assert answer.status_code == 401, (scheme, answer.text)
    assert refusals(served, "unauthenticated") == before + 3
    bearer = {"Authorization": f"bearer {token(served)}"}  # RFC 7235: the scheme is caseless
    assert httpx.get(f"{served.base_url}/api/v1/pops", headers=bearer).status_code == 200


def test_a_chunked_body_of_exactly_the_limit_is_read_and_one_more_octet_is_not(
    served: Served,
) -> None:
    """The guard counts the body as it arrives when no Content-Length announces it."""
    headers = {"Authorization": f"Bearer {token(served)}", "Content-Type": "application/json"}

    def chunks(size: int) -> Iterator[bytes]:
        body = b'{"name": "edge"}'
        yield body
        yield b" " * (size - len(body))  # JSON allows trailing whitespace

    exact = httpx.post(f"{served.base_url}/api/v1/pops", content=chunks(MAX_BODY), headers=headers)
    assert exact.status_code != 413, exact.text
    over = httpx.post(
        f"{served.base_url}/api/v1/pops", content=chunks(MAX_BODY + 1), headers=headers
    )
    assert over.status_code == 413, over.text


def test_a_body_under_the_limit_still_gets_through(served: Served) -> None:
    body = b'{"name": "guard-pop", "city": "' + b" " * 500_000 + b'"}'
    reply = httpx.post(
        f"{served.base_url}/api/v1/pops",
        content=body,
        timeout=10,
        headers={"Authorization": f"Bearer {token(served)}", "Content-Type": "application/json"},
    )
    # Past the guard, the application judges it (the city is too long, or it is created).
    assert reply.status_code in (201, 422), reply.text


def test_a_slow_body_gets_408_after_the_body_timeout(served: Served) -> None:
    with connect(served) as sock:
        sock.sendall(
            head(
                "/api/v1/pops",
                f"Authorization: Bearer {token(served)}",
                "Content-Type: application/json",
                "Content-Length: 100",
            )
            + b'{"na'
        )
        started = time.monotonic()
        data = response(sock, timeout=BODY_TIMEOUT + 5)
    assert status(data) == 408
    assert time.monotonic() - started < BODY_TIMEOUT + 3


def test_slow_headers_are_closed_after_the_header_timeout(served: Served) -> None:
    before = refusals(served, "header_timeout")
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        for _ in range(int(HEADER_TIMEOUT * 4) + 8):  # a byte every 0.25 s, never finished
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                break
        data = response(sock, timeout=2)
        took = time.monotonic() - started
    assert data == b""
    assert HEADER_TIMEOUT - 0.5 < took < HEADER_TIMEOUT + 3
    assert refusals(served, "header_timeout") >= before + 1


def test_requests_beyond_max_requests_get_503_with_retry_after(served: Served) -> None:
    before = refusals(served, "busy")
    auth = f"Authorization: Bearer {token(served)}"
    holders = [connect(served) for _ in range(MAX_REQUESTS)]
    try:
        for sock in holders:  # each waits for a body that does not come
            sock.sendall(head("/api/v1/pops", auth, "Content-Length: 50"))
        time.sleep(0.5)
        reply = httpx.get(
            f"{served.base_url}/api/v1/pops",
            timeout=10,
            headers={"Authorization": f"Bearer {token(served)}"},
        )
        assert reply.status_code == 503
        assert reply.headers["retry-after"] == "1"
    finally:
        for sock in holders:
            sock.close()
    assert refusals(served, "busy") == before + 1
    time.sleep(0.5)
    reply = httpx.get(
        f"{served.base_url}/api/v1/pops",
        timeout=10,
        headers={"Authorization": f"Bearer {token(served)}"},
    )
    assert reply.status_code == 200


def test_2000_idle_connections_do_not_lock_staff_out(served: Served) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2400
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard open files limit ({hard}) is below {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    idle: list[socket.socket] = []
    try:
        for _ in range(2000):
            idle.append(connect(served))
        reply = httpx.get(
            f"{served.base_url}/api/v1/pops",
            timeout=10,
            headers={"Authorization": f"Bearer {token(served)}"},
        )
        assert reply.status_code == 200
        # And the idle ones are let go after the header timeout.
        time.sleep(HEADER_TIMEOUT + 1.5)
        closed = 0
        for sock in idle:
            sock.settimeout(0.5)
            with contextlib.suppress(TimeoutError, ConnectionResetError):
                if sock.recv(1) == b"":
                    closed += 1
        assert closed == len(idle)
    finally:
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_refusals_are_logged_once_per_client_per_minute(served: Served) -> None:
    log: Path = served.log  # type: ignore[assignment]
    line = "API refused 127.0.0.1: 401"
    before = log.read_text().count(line)
    for _ in range(5):
        assert httpx.post(f"{served.base_url}/api/v1/pops", json={}).status_code == 401
    time.sleep(0.3)  # the daemon's log handler writes as it goes; leave it a moment
    logged = log.read_text().count(line)
    assert logged >= 1  # the first refusal of the minute (here or in an earlier test)
    assert logged - before <= 1
    assert refusals(served, "unauthenticated") >= 5


def test_oversized_headers_are_refused_and_the_connection_closed(served: Served) -> None:
    with connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sent = send_until_answered(sock, 1 * MiB, b"X-Padding: " + b"a" * 1000 + b"\r\n")
        data = response(sock, timeout=5)
    # h11 stops at api.max_header_bytes (16 KiB): 400 and close, well before 1 MiB is taken.
    assert sent < 1 * MiB
    assert data == b"" or status(data) == 400


def test_the_bulk_upsert_may_send_more_than_a_single_upsert(served: Served) -> None:
    # 2 MiB of JSON (whitespace padding): past the ordinary 1 MiB limit, under the bulk one.
    body = b"[" + b" " * (2 * MiB) + b"]"
    headers = {"Authorization": f"Bearer {token(served)}", "Content-Type": "application/json"}
    bulk = httpx.put(
        f"{served.base_url}/api/v1/contracts/by-external/erp", content=body, headers=headers,
        timeout=30,
    )  # fmt: skip
    assert bulk.status_code != 413, bulk.text  # the application judges it (an empty list)
    single = httpx.put(
        f"{served.base_url}/api/v1/contracts/by-external/erp/c-1", content=body,
        headers=headers, timeout=30,
    )  # fmt: skip
    assert single.status_code == 413
