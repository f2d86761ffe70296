"""Database tables."""

from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

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
