"""API tokens: shown once at creation, stored only as SHA-256, checked on every request."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

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
    def __init__(self, context: ServiceContext) -> None:
        self.context = context

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
        with wrap_db_errors():
            async with self.context.sessions() as session:
                row = await session.scalar(
                    select(ApiToken).where(
                        ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
                    )
                )
        return Caller(name=row.name, role=TokenRole(row.role)) if row else None
