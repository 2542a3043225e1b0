"""What every management use case shares: the actor, audit, after-commit events, generic CRUD."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Any, ClassVar, Generic, cast

from sqlalchemy import Select, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.interfaces import ORMOption

from radius_contracts.aaa.handler import AccessHandler
from radius_contracts.aaa.live import LiveSessions
from radius_contracts.aaa.quota import QuotaKeeper
from radius_contracts.db.errors import wrap_db_errors
from radius_contracts.db.models import AuditEntry
from radius_contracts.db.types import utcnow
from radius_contracts.db.writer import write_transaction
from radius_contracts.errors import Conflict, InvalidInput
from radius_contracts.radius.dictionary import AttributeCatalog
from radius_contracts.store import common
from radius_contracts.store.common import Page, RowT

SECRET_KEYS = frozenset({"password", "secret", "radsec_secret", "token"})
REDACTED = "***"

ChangeListener = Callable[[str, Sequence[int]], Awaitable[None]]
"""Awaited after a commit with (entity, ids): keeps in-memory indexes in step with the database.

Awaited before the API answers, so a client that saw its change acknowledged finds it in use
by the very next Access-Request on this node.
"""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change (API token name, ``cli``) and through which system it came."""

    name: str | None
    via: str | None = None


SYSTEM = Actor(name="system", via="daemon")


def redact(value: Any) -> Any:
    """A copy of ``value`` with every secret replaced, for the audit log."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if k in SECRET_KEYS and v is not None else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@dataclass
class ServiceContext:
    """The database and the listeners told about committed changes."""

    sessions: async_sessionmaker[AsyncSession]
    catalog: AttributeCatalog
    listeners: list[ChangeListener] = field(default_factory=list)
    # The running daemon's Access-Request handler, for previews; None in CLI commands.
    access: AccessHandler | None = None
    # Brings live sessions in step with committed changes (CoA/Disconnect); None in CLI commands.
    live: LiveSessions | None = None
    # The ISP's time zone: a contract date sent as a date-time is its date there.
    zone: tzinfo = UTC
    # Quota states of contracts (re-checked after top-ups and plan changes); None in the CLI.
    quota: QuotaKeeper | None = None
    # Told every column of rows this process created or changed, just before their change
    # event (entity, values by attribute name, created?): the index takes contracts from
    # there instead of reading them back.
    on_written: Callable[..., None] | None = None
    dialect: str = field(default="", init=False)  # "sqlite", "postgresql"

    def __post_init__(self) -> None:
        bind = self.sessions.kw.get("bind")
        self.dialect = bind.dialect.name if isinstance(bind, AsyncEngine) else ""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits when the block ends (rolls back on error).

        On SQLite it begins once this process's other writers are done (db.writer): they
        queue in order instead of polling for SQLite's one write lock.
        """
        async with write_transaction(self.sessions) as session:
            yield session

    async def committed(self, entity: str, row_id: int) -> None:
        await self.committed_many(entity, [row_id])

    async def committed_many(self, entity: str, ids: Sequence[int]) -> None:
        for listener in self.listeners:
            await listener(entity, ids)


def audit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: int | None,
    changes: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor=actor.name,
            via=actor.via,
            action=action,
            entity=entity,
            entity_id=entity_id,
            changes=_jsonable(redact(dict(changes or {}))),
        )
    )


async def audit_many(
    session: AsyncSession,
    actor: Actor,
    action: str,
    entity: str,
    entries: Sequence[tuple[int, Mapping[str, Any]]],
) -> None:
    """One audit entry per (entity id, changes), inserted in one statement (bulk changes)."""
    await audit_rows(session, actor, entity, [(action, i, changes) for i, changes in entries])


async def audit_rows(
    session: AsyncSession,
    actor: Actor,
    entity: str,
    entries: Sequence[tuple[str, int, Mapping[str, Any]]],
) -> None:
    """One audit entry per (action, entity id, changes), in order, in one statement."""
    if not entries:
        return
    now = utcnow()
    await session.execute(
        insert(cast(Table, AuditEntry.__table__)),  # the table: the ORM bulk path costs more
        [
            {
                "at": now,
                "actor": actor.name,
                "via": actor.via,
                "action": action,
                "entity": entity,
                "entity_id": entity_id,
                "changes": _jsonable(redact(dict(changes))),
            }
            for action, entity_id, changes in entries
        ],
    )


def stamp(row: Any, actor: Actor, *, created: bool) -> None:
    for key, value in stamped(actor, created=created).items():
        setattr(row, key, value)


def stamped(actor: Actor, *, created: bool) -> dict[str, Any]:
    """The who/when/via columns of a write (``created_*`` too for a new row)."""
    now = utcnow()
    values = {"updated_at": now, "updated_by": actor.name, "updated_via": actor.via}
    if created:
        values |= {"created_at": now, "created_by": actor.name, "created_via": actor.via}
    return values


class CrudService(Generic[RowT]):
    """List/get/create/update/delete/activate for one table, with audit and change events.

    Subclasses name their table and override the ``_check`` / ``_users`` / ``_apply`` hooks.
    """

    model: ClassVar[type[Any]]
    label: ClassVar[str]  # "manufacturer": used in messages
    entity: ClassVar[str]  # "manufacturers": used in audit entries and change events
    unique: ClassVar[tuple[str, ...]] = ("name",)
    filters: ClassVar[tuple[str, ...]] = ("active",)
    search: ClassVar[tuple[str, ...]] = ("name",)
    sorts: ClassVar[tuple[str, ...]] = ("id", "name", "created_at", "updated_at")
    # How one row is loaded by id (get, update, ...): e.g. its collections joined in.
    load_options: ClassVar[tuple[ORMOption, ...]] = ()

    def __init__(self, context: ServiceContext) -> None:
        self.context = context

    # -- reading ------------------------------------------------------------------------------

    def _column(self, name: str) -> InstrumentedAttribute[Any]:
        column: InstrumentedAttribute[Any] = getattr(self.model, name)
        return column

    def _list_stmt(self, filters: Mapping[str, Any]) -> Select[RowT]:
        stmt: Select[RowT] = select(self.model)
        for name in self.filters:
            if filters.get(name) is not None:
                stmt = stmt.where(self._column(name) == filters[name])
        if filters.get("q"):
            columns = [self._column(c) for c in self.search]
            stmt = stmt.where(
                common.text_search(columns, str(filters["q"]), dialect=self.context.dialect)
            )
        return stmt

    def _order(self, stmt: Select[RowT], sort: str | None) -> Select[RowT]:
        sort = sort or "id"
        descending = sort.startswith("-")
        name = sort.lstrip("-")
        if name not in self.sorts:
            raise InvalidInput(
                f"cannot sort by {name!r}; use one of {', '.join(self.sorts)}", field="sort"
            )
        column = self._column(name)
        tie = self._column("id")
        if descending:
            return stmt.order_by(column.desc(), tie.desc())
        return stmt.order_by(column.asc(), tie.asc())

    async def page(
        self,
        filters: Mapping[str, Any],
        *,
        sort: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[RowT]:
        stmt = self._order(self._list_stmt(filters), sort)
        with wrap_db_errors():
            async with self.context.sessions() as session:
                return await common.page(session, stmt, limit=limit, offset=offset)

    async def get(self, row_id: int) -> RowT:
        with wrap_db_errors():
            async with self.context.sessions() as session:
                row: RowT = await common.get(
                    session, self.model, row_id, self.label, self.load_options
                )
                return row

    # -- hooks --------------------------------------------------------------------------------

    async def _check(self, session: AsyncSession, row: RowT | None, data: dict[str, Any]) -> None:
        """Refuse ``data`` (a create when ``row`` is None, else an update) with InvalidInput."""

    async def _users(self, session: AsyncSession, row: RowT) -> list[str]:
        """What still references ``row``, as short phrases naming each user; blocks delete."""
        return []

    def _apply(self, row: RowT, data: Mapping[str, Any]) -> None:
        for key, value in data.items():
            setattr(row, key, value)

    async def _before(self, row_id: int | None) -> Any:
        """What :meth:`_after` needs to know of the state before a change (None: a create)."""
        return None

    def _after(self, row_id: int, before: Any) -> None:
        """After the commit, once the index holds the change: side effects on live sessions."""

    # -- writing ------------------------------------------------------------------------------

    async def _check_unique(
        self, session: AsyncSession, row: RowT | None, data: Mapping[str, Any]
    ) -> None:
        for name in self.unique:
            if name not in data or data[name] is None:
                continue
            stmt = select(self._column("id")).where(self._column(name) == data[name])
            if row is not None:
                stmt = stmt.where(self._column("id") != row.id)  # type: ignore[attr-defined]
            if (await session.execute(stmt.limit(1))).first():
                raise Conflict(
                    f"a {self.label} with {name} {data[name]!r} already exists", field=name
                )

    async def create(self, actor: Actor, data: Mapping[str, Any]) -> RowT:
        before = await self._before(None)
        row = await self._insert(actor, data)
        self._written(row, created=True)
        return await self._committed(row, before)

    async def _insert(self, actor: Actor, data: Mapping[str, Any]) -> RowT:
        """The create's transaction: the checks, the row and its audit entry, committed."""
        values, given = dict(data), dict(data)
        with wrap_db_errors():
            async with self.context.transaction() as session:
                await self._check_unique(session, None, values)
                await self._check(session, None, values)
                row: RowT = self.model()
                self._apply(row, values)
                stamp(row, actor, created=True)
                session.add(row)
                await session.flush()
                audit(session, actor, "create", self.entity, row.id, given)  # type: ignore[attr-defined]
        return row

    async def update(self, actor: Actor, row_id: int, changes: Mapping[str, Any]) -> RowT:
        values, given = dict(changes), dict(changes)
        before = await self._before(row_id)
        with wrap_db_errors():
            async with self.context.transaction() as session:
                row: RowT = await common.get(
                    session, self.model, row_id, self.label, self.load_options
                )
                await self._check_unique(session, row, values)
                await self._check(session, row, values)
                self._apply(row, values)
                stamp(row, actor, created=False)
                await session.flush()
                audit(session, actor, "update", self.entity, row_id, given)
        self._written(row, created=False)
        return await self._committed(row, before)

    async def set_active(self, actor: Actor, row_id: int, active: bool) -> RowT:
        before = await self._before(row_id)
        with wrap_db_errors():
            async with self.context.transaction() as session:
                row: RowT = await common.get(
                    session, self.model, row_id, self.label, self.load_options
                )
                await self._check(session, row, {"active": active})
                row.active = active  # type: ignore[attr-defined]
                stamp(row, actor, created=False)
                action = "activate" if active else "deactivate"
                audit(session, actor, action, self.entity, row_id, {"active": active})
        return await self._committed(row, before)

    async def delete(self, actor: Actor, row_id: int) -> None:
        before = await self._before(row_id)
        with wrap_db_errors():
            async with self.context.transaction() as session:
                row: RowT = await common.get(
                    session, self.model, row_id, self.label, self.load_options
                )
                users = await self._users(session, row)
                if users:
                    raise Conflict(
                        f"{self.label} {row_id} is still used by {'; '.join(users)}", field="id"
                    )
                await session.delete(row)
                audit(session, actor, "delete", self.entity, row_id)
        await self.context.committed(self.entity, row_id)
        self._after(row_id, before)

    def _written(self, row: RowT, *, created: bool) -> None:
        """Tell the on_written hook every column of ``row`` as committed."""
        if self.context.on_written is not None:
            columns = row.__table__.columns.keys()
            values = {c: getattr(row, c) for c in columns}
            self.context.on_written(self.entity, [values], created=created)

    async def _committed(self, row: RowT, before: Any) -> RowT:
        row_id: int = row.id  # type: ignore[attr-defined]
        await self.context.committed(self.entity, row_id)
        self._after(row_id, before)
        return row


class ChangesLayouts:
    """Mixin for services whose changes alter layouts' rows: CoA for the sessions they touch."""

    context: ServiceContext

    async def _before(self, row_id: int | None) -> Any:
        live = self.context.live
        return None if live is None else live.layouts()

    def _after(self, row_id: int, before: Any) -> None:
        if self.context.live is not None and before is not None:
            self.context.live.layouts_changed(before)
