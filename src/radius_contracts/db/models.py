"""ORM tables. Only store/ and daemon wiring import this module."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Connection,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import JSON

from radius_contracts.db import search
from radius_contracts.db.base import IDS_NEVER_REUSED, Audited, Base
from radius_contracts.db.types import utcnow
from radius_contracts.domain import CoaPolicy

# A manufacturer created without a CoA policy (the API's default, the FreeRADIUS import's
# "Generic") gets the domain's default one.
_COA = CoaPolicy()


class Manufacturer(Audited, Base):
    __tablename__ = "manufacturers"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    vendor_id: Mapped[int | None] = mapped_column(Integer)
    dictionary_vendor: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # How this manufacturer's NAS take CoA and Disconnect-Requests (RFC 5176): the session
    # identification attributes they match on, the reply attributes a CoA may change, for
    # service attributes the one that deactivates the old value first (Juniper), and whether
    # a refused or unanswered CoA falls back to a Disconnect.
    coa_identifiers: Mapped[list[str]] = mapped_column(JSON, default=lambda: list(_COA.identifiers))
    coa_attributes: Mapped[list[str]] = mapped_column(JSON, default=lambda: list(_COA.attributes))
    coa_deactivate: Mapped[dict[str, str]] = mapped_column(
        JSON, default=lambda: dict(_COA.deactivate)
    )
    coa_disconnect_fallback: Mapped[bool] = mapped_column(Boolean, default=_COA.disconnect_fallback)


class Pop(Audited, Base):
    __tablename__ = "pops"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    city: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Nas(Audited, Base):
    __tablename__ = "nas"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # An IP address or a CIDR network, in canonical text form (see services.nas).
    address: Mapped[str] = mapped_column(String(64), index=True)
    secret: Mapped[str] = mapped_column(String(255))
    manufacturer_id: Mapped[int] = mapped_column(
        ForeignKey("manufacturers.id", ondelete="RESTRICT"), index=True
    )
    pop_id: Mapped[int | None] = mapped_column(
        ForeignKey("pops.id", ondelete="RESTRICT"), index=True
    )
    coa_port: Mapped[int] = mapped_column(Integer, default=3799)
    # Where CoA goes when not to ``address`` (a NAS known by a CIDR, or behind NAT).
    coa_address: Mapped[str | None] = mapped_column(String(64))
    require_message_authenticator: Mapped[bool] = mapped_column(Boolean, default=True)
    # Acct-Interim-Interval sent in Access-Accept; None: the [accounting] default, 0: none.
    interim_interval: Mapped[int | None] = mapped_column(Integer)
    # When the NAS last said Accounting-On/Off (it rebooted): its older sessions are over.
    accounting_on_at: Mapped[datetime | None]
    # RadSec (RFC 6614): the shared secret over TLS (None: "radsec", §2.3), and the client
    # certificate the NAS must present (subject CN, or "sha256:<hex>" of the certificate).
    radsec_secret: Mapped[str | None] = mapped_column(String(255))
    radsec_pin: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def radsec_secret_set(self) -> bool:
        """What the API shows of the write-only RadSec secret."""
        return bool(self.radsec_secret)


class RadiusAttribute(Audited, Base):
    """Catalogue entry: synced from the loaded dictionaries, or added by an operator."""

    __tablename__ = "radius_attributes"
    __table_args__ = (
        Index("ix_radius_attributes_vendor_code", "vendor_id", "code"),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    vendor: Mapped[str | None] = mapped_column(String(100))
    vendor_id: Mapped[int | None] = mapped_column(Integer)
    code: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    has_tag: Mapped[bool] = mapped_column(Boolean, default=False)
    encrypt: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(16), default="dictionary")  # or "operator"
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Layout(Audited, Base):
    __tablename__ = "layouts"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    manufacturer_id: Mapped[int | None] = mapped_column(
        ForeignKey("manufacturers.id", ondelete="RESTRICT"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16), default="active")
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    rows: Mapped[list[LayoutAttribute]] = relationship(
        back_populates="layout",
        order_by="LayoutAttribute.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class LayoutAttribute(Base):
    __tablename__ = "layout_attributes"
    __table_args__ = (
        Index("ix_layout_attributes_layout", "layout_id", "position"),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    layout_id: Mapped[int] = mapped_column(ForeignKey("layouts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    attribute_id: Mapped[int] = mapped_column(
        ForeignKey("radius_attributes.id", ondelete="RESTRICT"), index=True
    )
    template: Mapped[str] = mapped_column(Text)
    # RFC 2868 §3: the tag (1..31) a has_tag attribute is sent with; None: untagged.
    tag: Mapped[int | None] = mapped_column(SmallInteger)

    layout: Mapped[Layout] = relationship(back_populates="rows")
    attribute: Mapped[RadiusAttribute] = relationship(lazy="selectin")


class Pool(Audited, Base):
    __tablename__ = "pools"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    family: Mapped[str] = mapped_column(String(16))
    ranges: Mapped[list[str]] = mapped_column(JSON)
    prefix_length: Mapped[int | None] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16), default="managed")
    lease_time: Mapped[int] = mapped_column(Integer, default=86400)
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Plan(Audited, Base):
    """A service plan: speeds, optional timeouts, a data quota and time windows.

    Contracts reference one; their own speeds, when set, win over the plan's (plans.py).
    """

    __tablename__ = "plans"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    min_upload: Mapped[str | None] = mapped_column(String(32))
    max_upload: Mapped[str | None] = mapped_column(String(32))
    min_download: Mapped[str | None] = mapped_column(String(32))
    max_download: Mapped[str | None] = mapped_column(String(32))
    session_timeout: Mapped[int | None] = mapped_column(Integer)  # seconds (Session-Timeout)
    idle_timeout: Mapped[int | None] = mapped_column(Integer)  # seconds (Idle-Timeout)
    # The data quota (fair-usage policy): a byte cap per period; None: no quota.
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    quota_period: Mapped[str | None] = mapped_column(String(16))
    quota_counts: Mapped[str | None] = mapped_column(String(16))
    quota_action: Mapped[str | None] = mapped_column(String(16))
    fup_min_upload: Mapped[str | None] = mapped_column(String(32))
    fup_max_upload: Mapped[str | None] = mapped_column(String(32))
    fup_min_download: Mapped[str | None] = mapped_column(String(32))
    fup_max_download: Mapped[str | None] = mapped_column(String(32))
    # Time windows: [{"days": ["mon", …], "start": "HH:MM", "end": "HH:MM", <speeds>}].
    windows: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Which window the online sessions were last moved to by CoA ("none", or its index), so
    # that one node among several sends each boundary's CoA, and a boundary missed while
    # every node was down is caught up at the next start. NULL: never evaluated.
    window_applied: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    external_refs: Mapped[list[PlanExternalRef]] = relationship(
        back_populates="plan",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="PlanExternalRef.id",
    )


class PlanExternalRef(Base):
    """A plan's identifier in a billing system (e.g. the planIds it sends with contracts)."""

    __tablename__ = "plan_external_refs"
    __table_args__ = (UniqueConstraint("app", "external_id"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    app: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))

    plan: Mapped[Plan] = relationship(back_populates="external_refs")


class Contract(Audited, Base):
    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint("simultaneous_use >= 1", name="simultaneous_use"),
        CheckConstraint("billing_day BETWEEN 1 AND 31", name="billing_day"),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(100), unique=True)
    # No column defaults here: services.contract_fields owns every default of a contract, so
    # that each way of creating one fills the same values (an ORM default would also turn an
    # explicit None into the default, where null means something: unlimited sessions).
    status: Mapped[str] = mapped_column(String(16), index=True)
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    auto_extend: Mapped[bool] = mapped_column(Boolean)
    customer_external_id: Mapped[str | None] = mapped_column(String(100), index=True)
    customer_name: Mapped[str | None] = mapped_column(String(255))
    customer_custom_fields: Mapped[dict[str, Any]]
    custom_fields: Mapped[dict[str, Any]]

    # Connection config. username_key is the lower-cased username: uniqueness and lookups are
    # case-insensitive on every database without relying on collations or functional indexes.
    username: Mapped[str] = mapped_column(String(253))
    username_key: Mapped[str] = mapped_column(String(253), unique=True)
    password: Mapped[str | None] = mapped_column(String(253))
    min_upload: Mapped[str | None] = mapped_column(String(32))
    max_upload: Mapped[str | None] = mapped_column(String(32))
    min_download: Mapped[str | None] = mapped_column(String(32))
    max_download: Mapped[str | None] = mapped_column(String(32))
    # Fixed addresses are held by one contract at a time: unique indexes make that hold even for
    # two saves racing on different nodes (NULLs do not collide).
    pool_name_ipv4: Mapped[str | None] = mapped_column(String(100), index=True)
    ipv4: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)
    pool_name_ipv6: Mapped[str | None] = mapped_column(String(100), index=True)
    ipv6: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)
    delegated_ipv6_prefix: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)
    mac: Mapped[str | None] = mapped_column(String(17))
    simultaneous_use: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("plans.id", ondelete="RESTRICT"), index=True
    )
    # Day of the month billing months start on (quota periods of that kind); None: the 1st.
    billing_day: Mapped[int | None] = mapped_column(Integer)

    external_refs: Mapped[list[ExternalRef]] = relationship(
        back_populates="contract",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="ExternalRef.id",
    )


class ExternalRef(Base):
    """A contract's identifier in another system (billing, ERP, CRM)."""

    __tablename__ = "contract_external_refs"
    __table_args__ = (UniqueConstraint("app", "external_id"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), index=True
    )
    app: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))

    contract: Mapped[Contract] = relationship(back_populates="external_refs")


class AcctSession(Base):
    """One accounting session as reported by a NAS (filled by the accounting listener)."""

    __tablename__ = "sessions"
    __table_args__ = (
        # A session is the NAS's Acct-Session-Id (or Acct-Unique-Session-Id) while it is open.
        # Only open ones must be unique: NAS reuse their ids after a reboot, and the closed
        # session keeps its history. Both databases support partial unique indexes, and the
        # accounting upsert names this one as its ON CONFLICT target.
        Index(
            "uq_sessions_open_key",
            "nas_id",
            "acct_unique_id",
            unique=True,
            sqlite_where=text("stopped_at IS NULL"),
            postgresql_where=text("stopped_at IS NULL"),
        ),
        # Closed sessions by key: a Stop or Interim retransmitted after the session closed
        # must not open it again.
        Index("ix_sessions_key", "nas_id", "acct_unique_id", "started_at"),
        # Sessions of a key closed lately (accounting's load, store.accounting_sql): found by
        # range, not by reading every closed session the key ever had.
        Index("ix_sessions_key_stopped", "nas_id", "acct_unique_id", "stopped_at"),
        Index("ix_sessions_open", "stopped_at", "contract_id"),
        Index("ix_sessions_started", "started_at"),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    contract_id: Mapped[int | None] = mapped_column(
        ForeignKey("contracts.id", ondelete="SET NULL"), index=True
    )
    # No index of its own on nas_id (ix_sessions_key starts with it) nor on username (looked
    # up case-insensitively, which no plain index serves): every index slows accounting.
    nas_id: Mapped[int | None] = mapped_column(ForeignKey("nas.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(253))
    acct_session_id: Mapped[str] = mapped_column(String(253))
    acct_unique_id: Mapped[str] = mapped_column(String(253))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    session_time: Mapped[int] = mapped_column(BigInteger, default=0)
    # 64-bit: Acct-Input-Octets plus Acct-Input-Gigawords * 2^32 (RFC 2869 §5.1).
    input_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    output_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    input_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    output_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    framed_ip: Mapped[str | None] = mapped_column(String(64), index=True)
    framed_ipv6_prefix: Mapped[str | None] = mapped_column(String(64))
    framed_ipv6_address: Mapped[str | None] = mapped_column(String(64))
    delegated_ipv6_prefix: Mapped[str | None] = mapped_column(String(64))
    calling_station_id: Mapped[str | None] = mapped_column(String(253))
    called_station_id: Mapped[str | None] = mapped_column(String(253))
    nas_port: Mapped[int | None] = mapped_column(BigInteger)
    nas_port_id: Mapped[str | None] = mapped_column(String(253))
    # What the NAS called itself: CoA and Disconnect-Requests must name the same (RFC 5176 §3).
    nas_ip_address: Mapped[str | None] = mapped_column(String(64))
    nas_identifier: Mapped[str | None] = mapped_column(String(253))
    terminate_cause: Mapped[str | None] = mapped_column(String(64))


class LoginClaim(Base):
    """A login accepted for a contract with a simultaneous-use limit whose Accounting-Start
    has not come yet, as every node and worker process must count it.

    Written only where several processes decide (nodes sharing PostgreSQL, or worker
    processes): each decision locks the contract (an advisory lock on PostgreSQL, the write
    lock on SQLite), counts its open sessions and unexpired claims, and adds its own claim in
    the same transaction, so two logins at the same moment cannot both take the last place.
    Claims end when they expire (``[accounting] start_wait``); a login whose Start arrived is
    counted as its session, not twice (same place).
    """

    __tablename__ = "login_claims"
    __table_args__ = (
        Index("ix_login_claims_contract", "contract_id", "expires_at"),
        Index("ix_login_claims_expires", "expires_at"),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"))
    nas_id: Mapped[int | None] = mapped_column(ForeignKey("nas.id", ondelete="SET NULL"))
    # The login's place (aaa.sessions.same_place): Calling-Station-Id as compared (a MAC in
    # one notation), NAS port and port id.
    station: Mapped[str | None] = mapped_column(String(253))
    nas_port: Mapped[int | None] = mapped_column(BigInteger)
    nas_port_id: Mapped[str | None] = mapped_column(String(253))
    node: Mapped[str] = mapped_column(String(255))  # who accepted it
    claimed_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class CoaLogEntry(Base):
    """One CoA or Disconnect-Request sent for a session, and how the NAS answered."""

    __tablename__ = "coa_log"
    # A session's entries, newest first; also what ON DELETE CASCADE looks up.
    __table_args__ = (Index("ix_coa_log_session", "session_id", "id"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("sessions.id", ondelete="CASCADE"),
    )
    contract_id: Mapped[int | None] = mapped_column(
        ForeignKey("contracts.id", ondelete="SET NULL"), index=True
    )
    nas_id: Mapped[int | None] = mapped_column(ForeignKey("nas.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))  # "coa" or "disconnect"
    reason: Mapped[str] = mapped_column(String(255))  # why it was sent
    # The attributes sent, as [name, value] pairs (CoA carries no secrets).
    attributes: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    requested_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))  # ack, nak, timeout, error
    error_cause: Mapped[int | None] = mapped_column(Integer)  # a NAK's Error-Cause
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(String(255))  # why it could not be sent


class JobState(Base):
    """A scheduled job shared by every node: when it runs next, who runs it, how it went.

    Several daemons on one database fire the same jobs; the one that claims the row (an
    atomic UPDATE on ``locked_until``) runs it. The row outlives restarts, so a job missed
    while every node was down runs as soon as one starts.
    """

    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(255))
    locked_until: Mapped[datetime | None]
    runs: Mapped[int] = mapped_column(BigInteger, default=0)
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_node: Mapped[str | None] = mapped_column(String(255))
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_error: Mapped[str | None] = mapped_column(Text)


class UsageDaily(Base):
    """Traffic and online time per contract and UTC day, added up from accounting deltas."""

    __tablename__ = "usage_daily"
    # The history purge deletes by day in bounded batches (jobs.purge_history).
    __table_args__ = (Index("ix_usage_daily_day", "day"),)

    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    input_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    output_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    session_time: Mapped[int] = mapped_column(BigInteger, default=0)


class QuotaUsage(Base):
    """Traffic a contract used against its plan's cap in one quota period.

    Added to by accounting in the same transaction as the session deltas, so it counts what
    is stored exactly once. ``state`` turns ``over`` in the transaction whose traffic crosses
    the cap (a conditional UPDATE: one node wins when several race); ``restored_at`` is set
    once the period ended and full speed was given back.
    """

    __tablename__ = "quota_usage"
    __table_args__ = (Index("ix_quota_usage_state", "state", "period_end"),)

    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[date] = mapped_column(primary_key=True)  # local date, inclusive
    period_end: Mapped[date]  # local date, exclusive
    # Server defaults: accounting inserts rows with plain SQL that names only what it adds.
    used_bytes: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    extra_bytes: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))  # top-ups
    state: Mapped[str] = mapped_column(String(8), server_default=text("'normal'"))
    changed_at: Mapped[datetime | None]
    restored_at: Mapped[datetime | None]


class Lease(Base):
    """An address or delegated prefix of a managed pool, held by a contract.

    Rows are created on first use and kept: a released or expired lease remembers its last
    contract, which gets the same address back when it returns (sticky). A lease is held
    while ``expires_at`` is in the future, whatever its state says.
    """

    __tablename__ = "leases"
    __table_args__ = (
        UniqueConstraint("pool_id", "address"),
        Index("ix_leases_pool_expiry", "pool_id", "expires_at"),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(64))
    contract_id: Mapped[int | None] = mapped_column(
        ForeignKey("contracts.id", ondelete="SET NULL"), index=True
    )
    session_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("sessions.id", ondelete="SET NULL"),
    )
    # offered (Access-Accept sent), bound (Accounting-Start seen), released (Stop), expired.
    state: Mapped[str] = mapped_column(String(16), default="offered")
    leased_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    via: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    # Changed fields with their new values; secrets are replaced by "***" before writing.
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"), IDS_NEVER_REUSED)


# The auth log is no ORM table: it is one table per UTC day, made and dropped by
# store/auth_log.py (revision 0009), so that retention drops whole days.


def _contract_search(_table: object, connection: Connection, **_kw: Any) -> None:
    # create_all builds what migration 0012 builds (the schema comparison test holds both).
    if connection.dialect.name == "sqlite":
        search.create_sqlite(connection)


event.listen(Contract.__table__, "after_create", _contract_search)
