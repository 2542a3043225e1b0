"""Every management use case, built once per daemon around one database and catalogue."""

from __future__ import annotations

from dataclasses import dataclass

from radius_contracts.services.attributes import Attributes
from radius_contracts.services.audit_log import AuditLog
from radius_contracts.services.auth_log import AuthLogService
from radius_contracts.services.base import ServiceContext
from radius_contracts.services.catalogue import Manufacturers, Pops
from radius_contracts.services.contracts import Contracts
from radius_contracts.services.layouts import Layouts
from radius_contracts.services.nas import NasService
from radius_contracts.services.plans import Plans
from radius_contracts.services.pools import Pools
from radius_contracts.services.quotas import Quotas
from radius_contracts.services.sessions import SessionsService
from radius_contracts.services.tokens import Tokens


@dataclass(frozen=True)
class Services:
    context: ServiceContext
    manufacturers: Manufacturers
    pops: Pops
    nas: NasService
    attributes: Attributes
    layouts: Layouts
    pools: Pools
    contracts: Contracts
    plans: Plans
    quotas: Quotas
    tokens: Tokens
    audit: AuditLog
    auth_log: AuthLogService
    sessions: SessionsService

    @classmethod
    def build(cls, context: ServiceContext) -> Services:
        return cls(
            context=context,
            manufacturers=Manufacturers(context),
            pops=Pops(context),
            nas=NasService(context),
            attributes=Attributes(context),
            layouts=Layouts(context),
            pools=Pools(context),
            contracts=Contracts(context),
            plans=Plans(context),
            quotas=Quotas(context),
            tokens=Tokens(context),
            audit=AuditLog(context),
            auth_log=AuthLogService(context),
            sessions=SessionsService(context),
        )
