"""What every family's instances share: lookups, refusals, history rows, expiry times."""

import uuid
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import commit_if_new, db
from app.models import Instance, InstanceHistory, InstanceState, utcnow
from app.results import ResultCode

BEIJING = timedelta(hours=8)
# States in which the resource exists and the hooks may act on it.
LIVE_STATES = (InstanceState.ACTIVE, InstanceState.FROZEN)


class CallRefused(Exception):
    """A call that cannot succeed: answered with `code`, the reason goes to the call log."""

    def __init__(self, code: ResultCode, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def claim_instance(
    family: str,
    purchase_key: str,
    preferred_id: str,
    *,
    activity: str,
    on_claim=None,
    **fields,
) -> tuple[Instance, bool]:
    """Insert a purchase's instance, or find it; True when this call must set it up.

    The unique purchase_key decides: the insert of a resend, or of a concurrent copy, fails,
    and the call finds the instance the first one made. A failed setup, or one presumed lost in
    a crash, is taken over by exactly one resend. `on_claim(instance)` adds rows that must be
    committed together with the claim (the provisioning job: the outbox).
    """
    for instance_id in (preferred_id, str(uuid.uuid4())):
        if _insert_instance(family, purchase_key, instance_id, activity, fields, on_claim):
            query = select(Instance).where(Instance.purchase_key == purchase_key)
            return db.session.scalars(query).one(), True
        query = select(Instance).where(Instance.purchase_key == purchase_key)
        existing = db.session.scalars(query).first()
        if existing is not None:
            return existing, reclaim(existing, on_claim)
        # The businessId is another purchase's instanceId (debug cases reuse typed values):
        # the documentation only recommends businessId, so take a fresh id instead.
    raise CallRefused(ResultCode.INTERNAL_ERROR, "instance_id_conflict")


def _insert_instance(family, purchase_key, instance_id, activity, fields, on_claim) -> bool:
    """Insert and commit a new instance in provisioning; False if the database refuses it."""
    instance = Instance(
        family=family,
        instance_id=instance_id,
        purchase_key=purchase_key,
        state=InstanceState.PROVISIONING,
        expires_at=expires_at(fields.get("expire_time"), fields["protocol"]),
        **fields,
    )
    db.session.add(instance)
    instance.history.append(
        InstanceHistory(
            event="created",
            activity=activity,
            order_id=fields.get("order_id"),
            order_line_id=fields.get("order_line_id"),
            test=fields.get("test", False),
        )
    )
    if on_claim:
        # Flush first, so that a duplicate is refused before the rows that depend on it exist.
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            return False
        on_claim(instance)
    return commit_if_new()


def reclaim(instance: Instance, on_claim=None) -> bool:
    """Take over a failed setup, or one presumed lost in a crash, for another attempt."""
    retry_after = current_app.config["KOOGALLERY_PROVISIONING_RETRY_AFTER"]
    stale = utcnow() - timedelta(seconds=retry_after)
    # A conditional update, so that of several concurrent resends exactly one takes it over.
    claimed = db.session.execute(
        update(Instance)
        .where(Instance.id == instance.id)
        .where(
            or_(
                Instance.state == InstanceState.FAILED,
                (Instance.state == InstanceState.PROVISIONING) & (Instance.updated_at < stale),
            )
        )
        .values(state=InstanceState.PROVISIONING, failure_reason=None, updated_at=utcnow())
        # Compared in SQL only: SQLite hands datetimes back without their zone.
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed == 1 and on_claim:
        on_claim(instance)
    db.session.commit()
    db.session.refresh(instance)
    return claimed == 1


def mark_failed(instance: Instance, activity: str, error: Exception) -> None:
    """Record that setting up an instance failed; a resend will try again (the caller commits)."""
    instance.state = InstanceState.FAILED
    instance.failure_reason = type(error).__name__[:255]
    record(instance, "failed", activity, {"state": ["provisioning", "failed"]})


def mark_provisioned(instance: Instance, activity: str | None) -> None:
    """Move an instance from provisioning to active (the caller commits)."""
    instance.state = InstanceState.ACTIVE
    record(instance, "provisioned", activity, {"state": ["provisioning", "active"]})


def expires_at(expire_time: str | None, protocol: str) -> datetime | None:
    """Turn the marketplace's yyyyMMddHHmmss into a point in time (V1 Beijing time, V2 UTC)."""
    if not expire_time:
        return None
    moment = datetime.strptime(expire_time[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return moment - BEIJING if protocol == "v1" else moment


def load_for_update(instance_id: str, family: str) -> Instance | None:
    """Load an instance and lock its row until commit (PostgreSQL; SQLite locks the database)."""
    query = (
        select(Instance)
        .where(Instance.instance_id == instance_id, Instance.family == family)
        .with_for_update()
    )
    return db.session.scalars(query).first()


def live_instance(instance_id: str, family: str, *, released_ok: bool = False) -> Instance:
    """Return an instance the hooks can act on, or refuse the call with the documented code.

    A released instance counts as unknown (000003), except for a repeated release.
    """
    instance = load_for_update(instance_id, family)
    released = instance is not None and instance.state == InstanceState.RELEASED
    if instance is None or (released and not released_ok):
        db.session.rollback()
        raise CallRefused(ResultCode.INSTANCE_NOT_FOUND, "instance_not_found")
    if instance.state == InstanceState.PROVISIONING:
        db.session.rollback()
        raise CallRefused(ResultCode.IN_PROGRESS, "instance_provisioning")
    return instance


def changed_fields(instance: Instance, **new_values) -> dict:
    """Apply new values to the instance and return {field: [old, new]} for those that changed."""
    changes = {}
    for name, value in new_values.items():
        old = _plain(getattr(instance, name))
        if old != _plain(value):
            changes[name] = [old, _plain(value)]
            setattr(instance, name, value)
    return changes


def as_utc(moment: datetime) -> datetime:
    """Return an aware datetime; SQLite hands datetimes back without their (UTC) zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _plain(value):
    """Return a JSON-friendly value; SQLite hands datetimes back without their (UTC) zone."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value


def record(instance, event, activity, changes, order_id=None, order_line_id=None, once_key=None):
    """Add a history row for a change to the instance (the caller commits)."""
    entry = InstanceHistory(
        instance=instance,
        event=event,
        activity=activity,
        order_id=order_id,
        order_line_id=order_line_id,
        changes=changes or None,
        once_key=once_key,
        test=instance.test,
    )
    db.session.add(entry)
    return entry


def already_done(once_key: str) -> bool:
    """Tell whether the change identified by once_key was committed before."""
    query = select(InstanceHistory.id).where(InstanceHistory.once_key == once_key)
    return db.session.scalar(query) is not None
