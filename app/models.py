"""Database tables."""

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


class CallLog(db.Model):
    """One marketplace call, accepted or rejected, with secrets and personal data redacted."""

    __tablename__ = "call_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    # saas, license, kit or notify: which interface family the call belongs to.
    family: Mapped[str] = mapped_column(String(16), index=True)
    # v1, v2, kit-v1 or kit-v2: which signing scheme the call used.
    protocol: Mapped[str] = mapped_column(String(16))
    activity: Mapped[str | None] = mapped_column(String(64))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # Why verification or handling failed (e.g. "stale_timestamp"); None when all went well.
    reason: Mapped[str | None] = mapped_column(String(64))
    result_code: Mapped[str | None] = mapped_column(String(16), index=True)
    instance_id: Mapped[str | None] = mapped_column(String(255), index=True)
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    test_flag: Mapped[bool | None] = mapped_column(Boolean)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict | None] = mapped_column(JSON)
    answer: Mapped[dict | None] = mapped_column(JSON)


class SeenNonce(db.Model):
    """A nonce of an accepted V2 or kit call, kept until its timestamp can no longer pass."""

    __tablename__ = "seen_nonce"
    # The unique constraint is the replay guard: a second insert of the same nonce fails in the
    # database, so it holds across gunicorn workers and machines sharing the database.
    __table_args__ = (UniqueConstraint("scope", "nonce"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class InstanceState(StrEnum):
    """Where an instance is in its lifecycle (spec saas.md, "Lifecycle")."""

    PROVISIONING = "provisioning"
    ACTIVE = "active"
    FROZEN = "frozen"
    RELEASED = "released"
    FAILED = "failed"


class Instance(db.Model):
    """A customer's purchased resource, identified to the marketplace by its instanceId."""

    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # saas or license: which production interface the instance was bought through.
    family: Mapped[str] = mapped_column(String(16), default="saas", server_default="saas")
    instance_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The idempotency key of the purchase: "v2:{orderId}:{orderLineId}" or, for V1 and for V2
    # bodies without an order line, "v1:{orderId}:{productId}". The unique constraint is what
    # makes a resent or concurrent newInstance end in one instance.
    purchase_key: Mapped[str] = mapped_column(String(160), unique=True)
    protocol: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), index=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    order_line_id: Mapped[str | None] = mapped_column(String(64))
    business_id: Mapped[str | None] = mapped_column(String(64))
    product_id: Mapped[str | None] = mapped_column(String(64))
    sku_code: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(100), index=True)
    customer_name: Mapped[str | None] = mapped_column(String(64))
    charging_mode: Mapped[str | None] = mapped_column(String(16))
    period_type: Mapped[str | None] = mapped_column(String(10))
    period_number: Mapped[int | None] = mapped_column(Integer)
    # As the marketplace sent it (yyyyMMddHHmmss), and as a point in time: V1 sends Beijing time,
    # V2 UTC (spec saas.md).
    expire_time: Mapped[str | None] = mapped_column(String(20))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Linear spec attributes (amount, diskSize, bandWidth, linearValue) as sent.
    spec: Mapped[dict | None] = mapped_column(JSON)
    trial: Mapped[bool] = mapped_column(Boolean, default=False)
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    history: Mapped[list["InstanceHistory"]] = relationship(
        back_populates="instance", order_by="InstanceHistory.id"
    )


class ChangeRecord:
    """The columns of a history table: what changed, old → new, and the call and order behind it."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(String(16))
    activity: Mapped[str | None] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(64))
    order_line_id: Mapped[str | None] = mapped_column(String(64))
    # {"field": [old, new], …}
    changes: Mapped[dict | None] = mapped_column(JSON)
    # Set for changes that one order may cause only once (an upgrade, a renewal): a resend of the
    # same order then fails on this unique column and is answered as already done.
    once_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InstanceHistory(ChangeRecord, db.Model):
    """One change to an instance."""

    __tablename__ = "instance_history"

    instance_pk: Mapped[int] = mapped_column(ForeignKey("instance.id"), index=True)
    # events: created, provisioned, failed, renewed, frozen, unfrozen, upgraded, released

    instance: Mapped[Instance] = relationship(back_populates="history")


class TenantAccount(db.Model):
    """The default provisioner's resource: one admin account per instance."""

    __tablename__ = "tenant_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_pk: Mapped[int] = mapped_column(ForeignKey("instance.id"), unique=True)
    admin_user: Mapped[str] = mapped_column(String(64))
    # Fernet token (AES-CBC + HMAC) under a key derived from SECRET_KEY: the initial password
    # must be returned again on resends and queryInstance, so it is kept, but never in clear.
    admin_password_encrypted: Mapped[str] = mapped_column(String(512))
    plan: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrderNotification(db.Model):
    """An orderNotify call, and the order details fetched for it with query order."""

    __tablename__ = "order_notification"
    __table_args__ = (UniqueConstraint("order_id", "order_line_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    order_line_id: Mapped[str] = mapped_column(String(64))
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    order_type: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict | None] = mapped_column(JSON)
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetch_error: Mapped[str | None] = mapped_column(String(255))


class LicenseState(StrEnum):
    """Where a licence is: issued and usable, frozen, released, or waiting for an async issuer."""

    PENDING = "pending"
    ACTIVE = "active"
    FROZEN = "frozen"
    RELEASED = "released"


class License(db.Model):
    """An issued licence, or a 授权码 (license code) the marketplace told us about."""

    __tablename__ = "license"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "v1:{instanceId}" (legacy getLicense), "device:{instanceId}:{eventId}:{sha256(fingerprint)}"
    # (online activation) or "code:{license}" (授权码 2.0). Unique: one licence per key, however
    # often or concurrently the marketplace asks.
    issue_key: Mapped[str] = mapped_column(String(255), unique=True)
    # v1, device or code
    kind: Mapped[str] = mapped_column(String(16))
    instance_pk: Mapped[int | None] = mapped_column(ForeignKey("instance.id"), index=True)
    code: Mapped[str | None] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # The machine code or device fingerprint the licence is bound to: buyer-supplied data,
    # stored and signed as text, never interpreted.
    bound_to: Mapped[str | None] = mapped_column(Text)
    license_text: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    order_id: Mapped[str | None] = mapped_column(String(64))
    order_line_id: Mapped[str | None] = mapped_column(String(64))
    expire_time: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class LicenseHistory(ChangeRecord, db.Model):
    """One change to a licence or 授权码."""

    __tablename__ = "license_history"

    license_pk: Mapped[int] = mapped_column(ForeignKey("license.id"), index=True)
    # events: issued, recorded, renewed, frozen, unfrozen, released, delivered


class Tenant(db.Model):
    """A buyer's enterprise (企业) pushed by tenantSync; its identity domain serves OAuth login."""

    __tablename__ = "tenant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    # Already includes https:// (spec kit-oauth.md): the {domain} of the OAuth endpoints.
    domain_name: Mapped[str | None] = mapped_column(String(255))
    # Empty for the seller's own test tenant, filled for buyers' orders.
    instance_id: Mapped[str | None] = mapped_column(String(64), index=True)
    order_id: Mapped[str | None] = mapped_column(String(64))
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    # flag=0 deletes; the row stays (with its users) as a record, but nobody can log in.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class AppCredential(db.Model):
    """An app credential (应用凭证) of a tenant: the OAuth client id and secret."""

    __tablename__ = "app_credential"
    __table_args__ = (UniqueConstraint("tenant_pk", "app_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_pk: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    app_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(64))
    # The RSA-decrypted clientSecret, sealed at rest (app/sealing.py); never stored in clear.
    client_secret_sealed: Mapped[str | None] = mapped_column(Text)
    instance_id: Mapped[str | None] = mapped_column(String(64))
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class KitUser(db.Model):
    """A buyer's employee authorised to use the app (authSync); logs in as (tenant, userName)."""

    __tablename__ = "kit_user"
    __table_args__ = (UniqueConstraint("tenant_pk", "user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_pk: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    app_id: Mapped[str | None] = mapped_column(String(64))
    user_name: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(64))
    org_code: Mapped[str | None] = mapped_column(String(64))
    position: Mapped[str | None] = mapped_column(String(255))
    employee_code: Mapped[str | None] = mapped_column(String(64))
    employee_type: Mapped[str | None] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(16), default="user")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # flag=3 revokes the authorisation; the user stays known but cannot log in.
    authorized: Mapped[bool] = mapped_column(Boolean, default=True)
    # Contact data is personal: sealed at rest like secrets.
    mobile_sealed: Mapped[str | None] = mapped_column(Text)
    email_sealed: Mapped[str | None] = mapped_column(Text)
    work_place: Mapped[str | None] = mapped_column(String(256))
    entry_date: Mapped[str | None] = mapped_column(String(20))
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Department(db.Model):
    """A department of a tenant's organisation tree (singleOrgSync / allOrgSync)."""

    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("tenant_pk", "org_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_pk: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    org_code: Mapped[str] = mapped_column(String(64))
    org_name: Mapped[str | None] = mapped_column(String(128))
    # Empty for a top-level department; a department may move to another parent.
    parent_code: Mapped[str | None] = mapped_column(String(64))
    test: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginSession(db.Model):
    """A browser session of a logged-in user; the cookie holds only its random id."""

    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_pk: Mapped[int] = mapped_column(ForeignKey("kit_user.id"), index=True)
    # OAuth tokens, sealed: a stolen database must not log anyone in.
    access_token_sealed: Mapped[str] = mapped_column(Text)
    refresh_token_sealed: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobState(StrEnum):
    """Where a job is: waiting to run, running, waiting to retry, done, or dead (given up)."""

    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    DEAD = "dead"


class Job(db.Model):
    """A piece of provisioning work: the outbox row, the attempt count, and the dead letter.

    The row is committed in the same transaction as the change that needs it (an instance in
    `provisioning`), so a crash cannot lose one without the other; the task queue only carries
    its id. A job that used up its attempts stays here as a dead letter with its last error.
    """

    __tablename__ = "job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    instance_pk: Mapped[int | None] = mapped_column(ForeignKey("instance.id"), index=True)
    # The hook's arguments, sealed: a purchase carries the buyer's phone and e-mail.
    payload_sealed: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True, default=JobState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(512))
    run_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, index=True
    )

    instance: Mapped[Instance | None] = relationship()


class Maintenance(db.Model):
    """When each scheduled chore last ran, so that several workers do each one once."""

    __tablename__ = "maintenance"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_due: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsoleLoginFailure(db.Model):
    """A failed operator login, counted per address to slow down password guessing."""

    __tablename__ = "console_login_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    remote_addr: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
