"""Nodes sharing one PostgreSQL database tell each other what they committed (LISTEN/NOTIFY).

DESIGN §2: a change made through any node's API must reach every node's authorization index
within seconds. After each commit, the node that made it (the services' after-commit
listeners) publishes ``{"node", "entity", "ids"}`` on a PostgreSQL channel; every node listens
on a connection of its own and refreshes those rows in its index. Only the index: live
sessions (CoA) are the business of the node that made the change, and it already sent them.

A node that loses its listening connection may have missed changes: once it is back it
reloads the whole index, then goes on from the notifications.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL, make_url

__all__ = ["CHANNEL", "ChangeFeed"]

log = logging.getLogger("radius_contracts.change_feed")

CHANNEL = "radius_contracts_changes"
# PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more: ids go in chunks well below.
_IDS_PER_MESSAGE = 500
_RETRY = 2.0

Refresh = Callable[[str, Sequence[int]], Awaitable[None]]
Reload = Callable[[], Awaitable[None]]


def _connect_args(url: str) -> dict[str, Any]:
    parsed: URL = make_url(url)
    return {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "database": parsed.database,
    }


class ChangeFeed:
    """Publishes this node's commits and applies the other nodes' (see the module docstring)."""

    def __init__(self, url: str, node: str, refresh: Refresh, reload: Reload) -> None:
        self._connect_args = _connect_args(url)
        self.node = node
        self._refresh = refresh
        self._reload = reload
        self._connection: Any = None  # asyncpg.Connection while listening
        self._task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[tuple[str, list[int]]] = asyncio.Queue()
        self._stopping = False
        self._lock = asyncio.Lock()
        self.received = 0  # notifications from other nodes applied
        self.reloads = 0  # full reloads after a lost connection

    # -- publishing (a services listener) -----------------------------------------------------

    async def publish(self, entity: str, ids: Sequence[int]) -> None:
        """Tell the other nodes that rows ``ids`` of ``entity`` were committed."""
        connection = self._connection
        try:
            if connection is None or connection.is_closed():
                raise ConnectionError("not connected")
            for start in range(0, max(len(ids), 1), _IDS_PER_MESSAGE):
                chunk = list(ids[start : start + _IDS_PER_MESSAGE])
                message = {"node": self.node, "entity": entity, "ids": chunk}
                payload = json.dumps(message, separators=(",", ":"))
                # One connection runs one statement at a time; API requests publish at once.
                async with self._lock:
                    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        except Exception as exc:
            # The change is committed whatever happens here; the other nodes pick it up when
            # they next reload (their own feed reloads in full after any interruption).
            log.warning("could not announce %s %s to other nodes: %s", entity, list(ids[:5]), exc)

    # -- listening ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and listen (waits for the first connection, so start-up fails loudly)."""
        await self._listen()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="change-feed")

    async def _listen(self) -> None:
        # Named, so an operator (or a test) finds it in pg_stat_activity.
        settings = {"application_name": f"radius-contracts feed {self.node}"[:63]}
        connection = await asyncpg.connect(**self._connect_args, server_settings=settings)
        connection.add_termination_listener(self._lost)
        await connection.add_listener(CHANNEL, self._notified)
        self._connection = connection

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            if message["node"] == self.node:
                return  # our own commit: the index has it already
            self._queue.put_nowait((str(message["entity"]), [int(i) for i in message["ids"]]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed change notification: %.200s", payload)

    def _lost(self, _connection: Any) -> None:
        if not self._stopping:
            self._queue.put_nowait(("", []))  # wakes _run to reconnect

    async def _run(self) -> None:
        while not self._stopping:
            entity, ids = await self._queue.get()
            if entity == "":
                await self._reconnect()
                continue
            try:
                await self._refresh(entity, ids)
                self.received += 1
            except Exception as exc:
                # The database is unreachable: reload in full once it is back.
                log.warning("could not apply %s %s from another node: %s", entity, ids[:5], exc)
                await self._reconnect()

    async def _reconnect(self) -> None:
        while not self._stopping:
            try:
                if self._connection is not None and not self._connection.is_closed():
                    await self._connection.close()
                await self._listen()
                await self._reload()
            except Exception as exc:
                log.warning("change feed: reconnecting in %.0f s: %s", _RETRY, exc)
                await asyncio.sleep(_RETRY)
                continue
            self.reloads += 1
            log.info("change feed reconnected; index reloaded in full")
            return

    async def close(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()
