"""Read access to the audit log (writes happen inside each use case's transaction)."""

from __future__ import annotations

from radius_contracts.db.models import AuditEntry
from radius_contracts.services.base import CrudService


class AuditLog(CrudService[AuditEntry]):
    model = AuditEntry
    label = "audit entry"
    entity = "audit"
    filters = ("entity", "entity_id", "actor", "via", "action")
    search = ("entity", "actor", "via")
    sorts = ("id", "at")
