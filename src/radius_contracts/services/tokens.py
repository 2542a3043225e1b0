"""API tokens: shown once at creation, stored only as SHA-256, checked on every request."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import ApiToken
from radius_contracts.db.types import utcnow
from radius_contracts.domain import TokenRole
from radius_contracts.errors import Conflict, NotFound
from radius_contracts.services.base import Actor, ServiceContext, audit

TOKEN_PREFIX = "rc_"  # noqa: S105  (a marker that makes leaked tokens greppable)


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated API caller."""

    name: str
    role: TokenRole


class Tokens:
    """Create, list, revoke and check API tokens.

    Checks are cached in memory (token hash → caller) on SQLite, where the daemon is the only
    node: a cached check costs a stat() instead of a query. Revoking, from this process or
    from ``radius-contracts token revoke`` in another, commits and then replaces a marker file
    next to the database; every check first compares the marker with the one it cached under,
    so a revoked token is refused on the very next request. On PostgreSQL several nodes share
    the tokens and each check asks the database.
    """

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self._marker = _revocation_marker(context)
        self._cached: dict[str, Caller] = {}
        self._cached_under: tuple[int, int] | None = None

    async def create(self, actor: Actor, name: str, role: TokenRole) -> tuple[ApiToken, str]:
        """A new token and its one-time plain text."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with wrap_db_errors():
            async with self.context.transaction() as session:
                if await session.scalar(select(ApiToken.id).where(ApiToken.name == name)):
                    raise Conflict(f"a token named {name!r} already exists", field="name")
                row = ApiToken(
                    name=name,
                    role=role.value,
                    token_hash=hash_token(token),
                    prefix=token[: len(TOKEN_PREFIX) + 6],
                )
                session.add(row)
                await session.flush()
                audit(session, actor, "create", "api_tokens", row.id, {"name": name, "role": role})
        return row, token

    async def list(self) -> Sequence[ApiToken]:
        with wrap_db_errors():
            async with self.context.sessions() as session:
                return (await session.scalars(select(ApiToken).order_by(ApiToken.id))).all()

    async def revoke(self, actor: Actor, name: str) -> ApiToken:
        with wrap_db_errors():
            async with self.context.transaction() as session:
                row = await session.scalar(
                    select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
                )
                if row is None:
                    raise NotFound(f"no active token named {name!r}", field="name")
                row.revoked_at = utcnow()
                audit(session, actor, "revoke", "api_tokens", row.id, {"name": name})
        self._cached.clear()
        if self._marker is not None:
            # A new file (a new inode) every time: running daemons drop their cached checks.
            fresh = self._marker.with_name(f"{self._marker.name}.{secrets.token_hex(4)}")
            fresh.write_text(f"{row.name} revoked at {row.revoked_at.isoformat()}\n")
            os.replace(fresh, self._marker)
        return row

    async def has_admin(self) -> bool:
        with wrap_db_errors():
            async with self.context.sessions() as session:
                found = await session.scalar(
                    select(ApiToken.id).where(
                        ApiToken.role == TokenRole.ADMIN.value, ApiToken.revoked_at.is_(None)
                    )
                )
        return found is not None

    async def authenticate(self, token: str) -> Caller | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        digest = hash_token(token)
        if self._marker is not None:
            marker = self._marker_state()
            if marker != self._cached_under:
                self._cached.clear()  # a token was revoked since (or this is the first check)
                self._cached_under = marker
            cached = self._cached.get(digest)
            if cached is not None:
                return cached
        with wrap_db_errors():
            async with self.context.sessions() as session:
                row = await session.scalar(
                    select(ApiToken).where(
                        ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None)
                    )
                )
        if row is None:
            return None  # unknown tokens are never cached: each costs its query
        caller = Caller(name=row.name, role=TokenRole(row.role))
        if self._marker is not None and self._marker_state() == marker:
            self._cached[digest] = caller
        return caller

    def _marker_state(self) -> tuple[int, int]:
        assert self._marker is not None
        try:
            stat = self._marker.stat()
        except FileNotFoundError:
            return (0, 0)
        return (stat.st_ino, stat.st_mtime_ns)


def _revocation_marker(context: ServiceContext) -> Path | None:
    """``<database file>.tokens-revoked`` for an SQLite file database, else None (no cache)."""
    bind = context.sessions.kw.get("bind")
    if context.dialect != "sqlite" or not isinstance(bind, AsyncEngine):
        return None
    database = bind.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).with_name(Path(database).name + ".tokens-revoked")
