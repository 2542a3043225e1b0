"""Queries that feed the in-memory authorization index: what the hot path needs, as snapshots.

Core selects of plain columns, not ORM entities: loading a million contracts at start-up must
stay well under a minute, and the index keeps frozen snapshots, never rows.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date
from types import MappingProxyType
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from radius_contracts.db.models import (
    Contract,
    Layout,
    LayoutAttribute,
    Manufacturer,
    Nas,
    Plan,
    Pool,
    Pop,
    QuotaUsage,
    RadiusAttribute,
)
from radius_contracts.domain import (
    CoaPolicy,
    ConnectionConfig,
    ContractSnapshot,
    ContractStatus,
    LayoutPurpose,
    LayoutSnapshot,
    NasSnapshot,
    PoolFamily,
    PoolMode,
    PoolSnapshot,
)
from radius_contracts.plans import (
    PlanSnapshot,
    QuotaAction,
    QuotaCounts,
    QuotaPeriod,
    QuotaRule,
    QuotaState,
    Speeds,
    window_of,
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})

_CONTRACT_COLUMNS = (
    Contract.id,
    Contract.number,
    Contract.status,
    Contract.start_date,
    Contract.end_date,
    Contract.auto_extend,
    Contract.customer_name,
    Contract.customer_external_id,
    Contract.custom_fields,
    Contract.customer_custom_fields,
    Contract.username,
    Contract.password,
    Contract.min_upload,
    Contract.max_upload,
    Contract.min_download,
    Contract.max_download,
    Contract.pool_name_ipv4,
    Contract.ipv4,
    Contract.pool_name_ipv6,
    Contract.ipv6,
    Contract.delegated_ipv6_prefix,
    Contract.mac,
    Contract.simultaneous_use,
    Contract.plan_id,
    Contract.billing_day,
)
_STATUSES = {status.value: status for status in ContractStatus}


def _shared(value: str | None) -> str | None:
    # Speeds and pool names repeat across most contracts ("50M", "cgnat-1"): one string each.
    return None if value is None else sys.intern(value)


def _snapshot(row: Row[Any]) -> ContractSnapshot:
    (
        contract_id,
        number,
        status,
        start_date,
        end_date,
        auto_extend,
        customer_name,
        customer_external_id,
        custom_fields,
        customer_custom_fields,
        username,
        password,
        min_upload,
        max_upload,
        min_download,
        max_download,
        pool_name_ipv4,
        ipv4,
        pool_name_ipv6,
        ipv6,
        delegated_ipv6_prefix,
        mac,
        simultaneous_use,
        plan_id,
        billing_day,
    ) = tuple(row)
    return ContractSnapshot(
        id=contract_id,
        number=number,
        status=_STATUSES[status],
        config=ConnectionConfig(
            username=username,
            password=password,
            min_upload=_shared(min_upload),
            max_upload=_shared(max_upload),
            min_download=_shared(min_download),
            max_download=_shared(max_download),
            pool_name_ipv4=_shared(pool_name_ipv4),
            ipv4=ipv4,
            pool_name_ipv6=_shared(pool_name_ipv6),
            ipv6=ipv6,
            delegated_ipv6_prefix=delegated_ipv6_prefix,
            mac=mac,
            simultaneous_use=simultaneous_use,
        ),
        start_date=start_date,
        end_date=end_date,
        auto_extend=bool(auto_extend),
        customer_name=customer_name,
        customer_external_id=customer_external_id,
        custom_fields=MappingProxyType(custom_fields) if custom_fields else _EMPTY,
        customer_custom_fields=(
            MappingProxyType(customer_custom_fields) if customer_custom_fields else _EMPTY
        ),
        plan_id=plan_id,
        billing_day=billing_day,
    )


def snapshot_of(values: Mapping[str, Any]) -> ContractSnapshot:
    """A contract's snapshot from its column values (a row just written, by attribute name):
    the same as reading it back."""
    return _snapshot(tuple(values[column.key] for column in _CONTRACT_COLUMNS))  # type: ignore[arg-type]


async def contracts(session: AsyncSession, batch: int = 20_000) -> AsyncIterator[ContractSnapshot]:
    """Every contract, streamed in batches so memory holds snapshots, not result rows."""
    stmt: Select[Any] = select(*_CONTRACT_COLUMNS).execution_options(yield_per=batch)
    result = await session.stream(stmt)
    async for partition in result.partitions():
        for row in partition:
            yield _snapshot(row)


async def contract(session: AsyncSession, contract_id: int) -> ContractSnapshot | None:
    """One contract, or None when it no longer exists."""
    row = (
        await session.execute(select(*_CONTRACT_COLUMNS).where(Contract.id == contract_id))
    ).first()
    return None if row is None else _snapshot(row)


async def contracts_by_id(
    session: AsyncSession, ids: Sequence[int], chunk: int = 1000
) -> dict[int, ContractSnapshot]:
    """The contracts among ``ids`` that exist, by id."""
    found: dict[int, ContractSnapshot] = {}
    unique = sorted(set(ids))
    for start in range(0, len(unique), chunk):
        stmt = select(*_CONTRACT_COLUMNS).where(Contract.id.in_(unique[start : start + chunk]))
        for row in await session.execute(stmt):
            snapshot = _snapshot(row)
            found[snapshot.id] = snapshot
    return found


async def nas(session: AsyncSession) -> list[NasSnapshot]:
    """Every active NAS with its manufacturer and POP names."""
    stmt = (
        select(
            Nas.id,
            Nas.name,
            Nas.address,
            Nas.secret,
            Nas.manufacturer_id,
            Manufacturer.name,
            Manufacturer.active,
            Pop.name,
            Nas.coa_port,
            Nas.require_message_authenticator,
            Nas.interim_interval,
            Nas.coa_address,
            Manufacturer.coa_identifiers,
            Manufacturer.coa_attributes,
            Manufacturer.coa_deactivate,
            Manufacturer.coa_disconnect_fallback,
            Nas.radsec_secret,
            Nas.radsec_pin,
        )
        .join(Manufacturer, Manufacturer.id == Nas.manufacturer_id)
        .outerjoin(Pop, Pop.id == Nas.pop_id)
        .where(Nas.active.is_(True))
        .order_by(Nas.id)
    )
    return [
        NasSnapshot(
            id=row[0],
            name=row[1],
            address=row[2],
            secret=row[3],
            manufacturer_id=row[4],
            manufacturer_name=row[5],
            manufacturer_active=bool(row[6]),
            pop_name=row[7],
            coa_port=row[8],
            require_message_authenticator=bool(row[9]),
            interim_interval=row[10],
            coa_address=row[11],
            coa=CoaPolicy(
                identifiers=tuple(row[12] or ()),
                attributes=tuple(row[13] or ()),
                deactivate=MappingProxyType(dict(row[14] or {})),
                disconnect_fallback=bool(row[15]),
            ),
            radsec_secret=row[16],
            radsec_pin=row[17],
        )
        for row in await session.execute(stmt)
    ]


async def layouts(session: AsyncSession) -> list[LayoutSnapshot]:
    """Every active layout of an active manufacturer (or of any), rows of active attributes."""
    stmt = (
        select(Layout.id, Layout.name, Layout.manufacturer_id, Layout.purpose)
        .outerjoin(Manufacturer, Manufacturer.id == Layout.manufacturer_id)
        .where(Layout.active.is_(True))
        .where((Layout.manufacturer_id.is_(None)) | (Manufacturer.active.is_(True)))
        .order_by(Layout.id)
    )
    heads = (await session.execute(stmt)).all()
    rows: dict[int, list[tuple[str, str]]] = {head[0]: [] for head in heads}
    row_stmt = (
        select(
            LayoutAttribute.layout_id,
            RadiusAttribute.name,
            LayoutAttribute.template,
            LayoutAttribute.tag,
        )
        .join(RadiusAttribute, RadiusAttribute.id == LayoutAttribute.attribute_id)
        .where(LayoutAttribute.layout_id.in_(list(rows)))
        .where(RadiusAttribute.active.is_(True))
        .order_by(LayoutAttribute.layout_id, LayoutAttribute.position)
    )
    if rows:
        for layout_id, attribute, template, tag in await session.execute(row_stmt):
            # A tagged row travels as "Tunnel-Type:1", the spelling layouts are written in.
            name = attribute if tag is None else f"{attribute}:{tag}"
            rows[layout_id].append((name, template))
    return [
        LayoutSnapshot(
            id=layout_id,
            name=name,
            manufacturer_id=manufacturer_id,
            purpose=LayoutPurpose(purpose),
            rows=tuple(rows[layout_id]),
        )
        for layout_id, name, manufacturer_id, purpose in heads
    ]


def plan_snapshot(row: Plan) -> PlanSnapshot:
    """A plan row as authorization sees it."""
    quota = None
    if row.quota_bytes is not None:
        quota = QuotaRule(
            cap_bytes=row.quota_bytes,
            period=QuotaPeriod(row.quota_period or QuotaPeriod.MONTH),
            counts=QuotaCounts(row.quota_counts or QuotaCounts.BOTH),
            action=QuotaAction(row.quota_action or QuotaAction.FUP),
            speeds=Speeds(
                row.fup_min_upload, row.fup_max_upload, row.fup_min_download, row.fup_max_download
            ),
        )
    return PlanSnapshot(
        id=row.id,
        name=row.name,
        speeds=Speeds(row.min_upload, row.max_upload, row.min_download, row.max_download),
        session_timeout=row.session_timeout,
        idle_timeout=row.idle_timeout,
        quota=quota,
        windows=tuple(window_of(window) for window in row.windows or ()),
    )


async def plans(session: AsyncSession) -> list[PlanSnapshot]:
    """Every plan, retired ones too: their contracts keep them."""
    rows = (await session.scalars(select(Plan).order_by(Plan.id))).all()
    return [plan_snapshot(row) for row in rows]


async def quota_over(
    session: AsyncSession, today: date, contract_ids: Sequence[int] | None = None
) -> dict[int, date]:
    """Contracts over their cap in a period that has not ended by local ``today``, with the
    period's start (the caller checks it is the contract's current one)."""
    stmt = select(QuotaUsage.contract_id, QuotaUsage.period_start).where(
        QuotaUsage.state == QuotaState.OVER.value,
        QuotaUsage.period_end > today,
        QuotaUsage.period_start <= today,
    )
    found: dict[int, date] = {}
    if contract_ids is None:
        for contract_id, start in await session.execute(stmt):
            found[contract_id] = start
        return found
    unique = sorted(set(contract_ids))
    for start_at in range(0, len(unique), 1000):
        chunk = unique[start_at : start_at + 1000]
        for contract_id, start in await session.execute(
            stmt.where(QuotaUsage.contract_id.in_(chunk))
        ):
            found[contract_id] = start
    return found


async def pools(session: AsyncSession) -> list[PoolSnapshot]:
    stmt = select(
        Pool.id,
        Pool.name,
        Pool.family,
        Pool.mode,
        Pool.active,
        Pool.ranges,
        Pool.prefix_length,
        Pool.lease_time,
    ).order_by(Pool.id)
    return [
        PoolSnapshot(
            name=name,
            family=PoolFamily(family),
            mode=PoolMode(mode),
            active=bool(active),
            id=pool_id,
            ranges=tuple(ranges or ()),
            prefix_length=prefix_length,
            lease_time=lease_time,
        )
        for pool_id, name, family, mode, active, ranges, prefix_length, lease_time in (
            await session.execute(stmt)
        )
    ]
