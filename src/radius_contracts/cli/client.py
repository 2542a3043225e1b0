"""A small client for a running daemon's management API, for the operator commands.

Where the daemon is: ``--url``, else the ``[api]`` host and port of the config (a wildcard
listen address is reached on loopback). The token: ``--token``, else $RADIUS_CONTRACTS_TOKEN,
else the admin-token file the daemon wrote to its state directory on first start.
Every failure becomes a ``CliError`` with a one-line reason and its own exit status.
"""

from __future__ import annotations

import argparse
import os
from types import TracebackType
from typing import Any

import httpx

from radius_contracts.settings import Settings

TOKEN_ENV = "RADIUS_CONTRACTS_TOKEN"  # noqa: S105  (a variable name)
# Written by the daemon (daemon.BOOTSTRAP_TOKEN_FILE; not imported: it pulls in the daemon).
TOKEN_FILE = "admin-token"  # noqa: S105

# Exit statuses, as `radius-contracts --help` lists them.
EXIT_API = 1  # the daemon answered with an error (not found, conflict, …)
EXIT_USAGE = 2  # as argparse's, and a config that does not load
EXIT_UNREACHABLE = 3
EXIT_REFUSED = 4  # no token, or the daemon refused it

# Enough for a page of a thousand rows on a busy daemon; an unanswered request fails in this.
TIMEOUT = 15.0


class CliError(Exception):
    """A command cannot go on; ``str(error)`` is the one line to print."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every command that talks to a running daemon takes."""
    parser.add_argument(
        "--url",
        help="the daemon's API, e.g. http://10.0.0.2:8080 (default: [api] host and port of "
        "the config)",
    )
    parser.add_argument(
        "--token",
        help=f"API token (default: ${TOKEN_ENV}, else the admin-token file in the state directory)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def api_url(args: argparse.Namespace, settings: Settings) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    host = settings.api.host
    # A daemon listening on every address is reached on loopback.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api.port}"


def find_token(args: argparse.Namespace, settings: Settings) -> tuple[str, str]:
    """The token and where it came from (for the message when it is refused)."""
    if args.token:
        return args.token, "--token"
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}"
    path = settings.state_dir / TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise CliError(
            f"no API token: give --token, set ${TOKEN_ENV}, or use the --config of a daemon "
            f"whose state directory has {TOKEN_FILE} ({path} does not exist)",
            EXIT_REFUSED,
        ) from None
    except OSError as exc:
        raise CliError(
            f"no API token: cannot read {path} ({exc.strerror}); give --token or set ${TOKEN_ENV}",
            EXIT_REFUSED,
        ) from None
    return token, str(path)


class DaemonApi:
    """GET and POST against ``/api/v1``; JSON in, JSON out, errors as CliError."""

    def __init__(self, url: str, token: str, token_source: str) -> None:
        self.url = url
        self._token_source = token_source
        self._http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "radius-contracts-cli"},
            timeout=TIMEOUT,
        )

    @classmethod
    def connect(cls, args: argparse.Namespace, settings: Settings) -> DaemonApi:
        token, source = find_token(args, settings)
        return cls(api_url(args, settings), token, source)

    def __enter__(self) -> DaemonApi:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params)

    def post(self, path: str, **params: Any) -> Any:
        return self._request("POST", path, params)

    def get_or_none(self, path: str, **params: Any) -> Any:
        """GET, with None for a 404 (looking something up by one key, then another)."""
        try:
            return self.get(path, **params)
        except NotFoundError:
            return None

    def _request(self, method: str, path: str, params: dict[str, Any]) -> Any:
        query = {key: _param(value) for key, value in params.items() if value is not None}
        try:
            response = self._http.request(method, f"/api/v1{path}", params=query)
        except httpx.TimeoutException:
            raise CliError(
                f"the daemon at {self.url} did not answer within {TIMEOUT:g} s", EXIT_UNREACHABLE
            ) from None
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the daemon at {self.url} ({_reason(exc)}); is it running? "
                "(--url, or --config with its [api] host and port)",
                EXIT_UNREACHABLE,
            ) from None
        if response.status_code < 400:
            return response.json() if response.content else None
        detail = _detail(response)
        if response.status_code == 401:
            raise CliError(
                f"the daemon at {self.url} refused the token from {self._token_source}: {detail}",
                EXIT_REFUSED,
            )
        if response.status_code == 403:
            raise CliError(f"not allowed with this token: {detail}", EXIT_REFUSED)
        if response.status_code == 404:
            raise NotFoundError(detail, EXIT_API)
        raise CliError(f"the daemon answered {response.status_code}: {detail}", EXIT_API)


class NotFoundError(CliError):
    pass


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _reason(exc: httpx.TransportError) -> str:
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return str(exc) or type(exc).__name__


def _detail(response: httpx.Response) -> str:
    """The problem document's detail; anything else is not this daemon's API."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code} without a problem document (is that this daemon?)"
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    return f"HTTP {response.status_code}"
