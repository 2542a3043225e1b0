"""CoA and Disconnect-Requests: the log per session and the disconnect endpoints' answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from radius_contracts.api.schemas.common import Output
from radius_contracts.db.models import CoaLogEntry
from radius_contracts.domain import CoaRecord

OUTCOME = (
    "How the NAS answered: ack (done), nak (refused; see error_cause), timeout (no answer "
    "after every try), error (not sent: see detail)."
)


class CoaAttributePublic(Output):
    name: str
    value: str


class CoaLogPublic(Output):
    """One CoA-Request or Disconnect-Request sent to a session's NAS, and its answer."""

    id: int | None = Field(description="The log entry's id (null while not written yet).")
    session_id: int
    contract_id: int | None
    nas_id: int | None
    kind: Literal["coa", "disconnect"] = Field(
        description="coa: CoA-Request (RFC 5176) changing the session's attributes; "
        "disconnect: Disconnect-Request ending it."
    )
    reason: str = Field(description="Why it was sent, e.g. 'contract suspended'.")
    attributes: list[CoaAttributePublic] = Field(
        description="Every attribute sent: the session identification, then the changes."
    )
    requested_at: datetime
    finished_at: datetime
    outcome: Literal["ack", "nak", "timeout", "error"] = Field(description=OUTCOME)
    error_cause: int | None = Field(
        description="A NAK's Error-Cause (RFC 5176 §3.5), e.g. 503 Session Context Not Found."
    )
    attempts: int = Field(description="Times the request was sent (retransmissions + 1).")
    detail: str | None = Field(description="Why it could not be sent (outcome error).")

    @classmethod
    def of(cls, row: CoaLogEntry | CoaRecord) -> CoaLogPublic:
        return cls(
            id=row.id if isinstance(row, CoaLogEntry) else None,
            session_id=row.session_id,
            contract_id=row.contract_id,
            nas_id=row.nas_id,
            kind=row.kind,
            reason=row.reason,
            attributes=[CoaAttributePublic(name=n, value=v) for n, v in row.attributes],
            requested_at=row.requested_at,
            finished_at=row.finished_at,
            outcome=row.outcome,
            error_cause=row.error_cause,
            attempts=row.attempts,
            detail=row.detail,
        )


class SessionDisconnectPublic(Output):
    session_id: int
    status: Literal["sent"] = Field(
        description="The Disconnect-Request is on its way; its outcome appears in the "
        "session's coa-log shortly (ask with wait=true to get it in this answer)."
    )


class ContractDisconnectPublic(Output):
    contract_id: int
    sessions: list[int] = Field(
        description="Ids of the online sessions a Disconnect-Request is sent for; outcomes "
        "appear in each session's coa-log."
    )
