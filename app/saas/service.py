"""SaaS instance lifecycle: each function owns its transaction and commits before returning.

Idempotency comes from the database: the unique `purchase_key` makes every resend or concurrent
copy of newInstance end in one instance, and the unique `once_key` of a history row makes a
resent upgrade or renewal a no-op. `000000` is only answered after the commit.
"""

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from app.extensions import commit_if_new, db
from app.models import Instance, InstanceHistory, InstanceState, utcnow
from app.provisioning import AppInfo, InProgress, Purchase, Renewal, Upgrade, get_provisioner
from app.results import ResultCode

log = logging.getLogger(__name__)

BEIJING = timedelta(hours=8)
# States in which the resource exists and the hook may act on it.
LIVE_STATES = (InstanceState.ACTIVE, InstanceState.FROZEN)


class CallRefused(Exception):
    """A call that cannot succeed: answered with `code`, the reason goes to the call log."""

    def __init__(self, code: ResultCode, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Provisioned:
    """The outcome of newInstance: the instance, and its appInfo when it is ready."""

    instance: Instance
    app_info: AppInfo | None


def purchase_key(protocol: str, order_id: str, order_line_id: str | None, product_id: str | None):
    """Return the idempotency key of a purchase (see Instance.purchase_key)."""
    if protocol == "v2" and order_line_id:
        return f"v2:{order_id}:{order_line_id}"
    return f"v1:{order_id}:{product_id}"


def expires_at(expire_time: str | None, protocol: str) -> datetime | None:
    """Turn the marketplace's yyyyMMddHHmmss into a point in time (V1 Beijing time, V2 UTC)."""
    if not expire_time:
        return None
    moment = datetime.strptime(expire_time[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return moment - BEIJING if protocol == "v1" else moment


# ------------------------------------------------------------------------------ new purchase


def new_instance(purchase: Purchase) -> Provisioned:
    """Create the purchase's instance once, provision it, and return it with its appInfo."""
    instance, claimed = claim_instance(purchase)
    app_info = None
    if claimed:
        app_info = provision(instance, replace(purchase, instance_id=instance.instance_id))
    if instance.state == InstanceState.PROVISIONING:
        return Provisioned(instance, None)
    if instance.state == InstanceState.FAILED:
        raise CallRefused(ResultCode.INTERNAL_ERROR, "provisioning_failed")
    return Provisioned(instance, app_info or get_provisioner().describe(instance))


def claim_instance(purchase: Purchase) -> tuple[Instance, bool]:
    """Insert the instance, or find the existing one; True when this call must provision it."""
    key = purchase_key(
        purchase.protocol, purchase.order_id, purchase.order_line_id, purchase.product_id
    )
    for instance_id in (purchase.instance_id, str(uuid.uuid4())):
        if _insert_instance(purchase, key, instance_id):
            instance = db.session.scalars(select(Instance).where(Instance.purchase_key == key))
            return instance.one(), True
        # A resend, or a concurrent copy of this call, got there first.
        existing = db.session.scalars(select(Instance).where(Instance.purchase_key == key))
        existing = existing.first()
        if existing is not None:
            return existing, reclaim(existing)
        # The businessId is another purchase's instanceId (debug cases reuse typed values):
        # the documentation only recommends businessId, so take a fresh id instead.
    raise CallRefused(ResultCode.INTERNAL_ERROR, "instance_id_conflict")


def _insert_instance(purchase: Purchase, key: str, instance_id: str) -> bool:
    """Insert and commit a new instance in provisioning; False if the database refuses it."""
    instance = Instance(
        instance_id=instance_id,
        purchase_key=key,
        protocol=purchase.protocol,
        state=InstanceState.PROVISIONING,
        order_id=purchase.order_id,
        order_line_id=purchase.order_line_id,
        business_id=purchase.business_id,
        product_id=purchase.product_id,
        sku_code=purchase.sku_code,
        customer_id=purchase.customer_id,
        customer_name=purchase.customer_name,
        charging_mode=purchase.charging_mode,
        period_type=purchase.period_type,
        period_number=purchase.period_number,
        expire_time=purchase.expire_time,
        expires_at=expires_at(purchase.expire_time, purchase.protocol),
        spec=dict(purchase.spec) or None,
        trial=purchase.trial,
        test=purchase.test,
    )
    db.session.add(instance)
    instance.history.append(
        InstanceHistory(
            event="created",
            activity="newInstance",
            order_id=purchase.order_id,
            order_line_id=purchase.order_line_id,
            test=purchase.test,
        )
    )
    return commit_if_new()


def reclaim(instance: Instance) -> bool:
    """Take over a failed provisioning, or one presumed lost in a crash, for another attempt."""
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
    ).rowcount
    db.session.commit()
    db.session.refresh(instance)
    return claimed == 1


def provision(instance: Instance, purchase: Purchase) -> AppInfo | None:
    """Run the hook's provision() and commit the outcome: active, still provisioning or failed."""
    try:
        outcome = get_provisioner().provision(instance, purchase)
        if not isinstance(outcome, InProgress):
            mark_provisioned(instance, "newInstance")
        db.session.commit()
        return None if isinstance(outcome, InProgress) else outcome
    except Exception as error:
        db.session.rollback()
        log.exception("provisioning %s failed", instance.instance_id)
        instance.state = InstanceState.FAILED
        instance.failure_reason = f"{type(error).__name__}"[:255]
        record(instance, "failed", "newInstance", {"state": ["provisioning", "failed"]})
        db.session.commit()
        return None


def mark_provisioned(instance: Instance, activity: str | None) -> None:
    """Move an instance from provisioning to active (the caller commits)."""
    instance.state = InstanceState.ACTIVE
    record(instance, "provisioned", activity, {"state": ["provisioning", "active"]})


def complete_provisioning(instance_id: str) -> Instance:
    """Finish an instance whose provisioner answered InProgress; call it when the work is done."""
    instance = load_for_update(instance_id)
    if instance is None:
        raise LookupError(f"no instance {instance_id}")
    if instance.state == InstanceState.PROVISIONING:
        mark_provisioned(instance, None)
        db.session.commit()
    return instance


# ------------------------------------------------------------------------------ other changes


def load_for_update(instance_id: str) -> Instance | None:
    """Load an instance and lock its row until commit (PostgreSQL; SQLite locks the database)."""
    query = select(Instance).where(Instance.instance_id == instance_id).with_for_update()
    return db.session.scalars(query).first()


def live_instance(instance_id: str) -> Instance:
    """Return an instance the hook can act on, or refuse the call with the documented code."""
    instance = load_for_update(instance_id)
    if instance is None or instance.state == InstanceState.RELEASED:
        db.session.rollback()
        raise CallRefused(ResultCode.INSTANCE_NOT_FOUND, "instance_not_found")
    if instance.state == InstanceState.PROVISIONING:
        db.session.rollback()
        raise CallRefused(ResultCode.IN_PROGRESS, "instance_provisioning")
    return instance


def renew(instance_id: str, renewal: Renewal, activity: str) -> Instance:
    """Set the instance's expiry absolutely (renewal, trial to formal, cancelled period)."""
    instance = live_instance(instance_id)
    once_key = f"renew:{instance_id}:{renewal.order_id}:{renewal.order_line_id}"
    once_key += f":{renewal.expire_time}"
    if already_done(once_key):
        return instance
    changes = changed_fields(
        instance,
        expire_time=renewal.expire_time,
        expires_at=expires_at(renewal.expire_time, instance.protocol),
        product_id=renewal.product_id or instance.product_id,
        trial=False if renewal.trial_to_formal else instance.trial,
        period_type=renewal.period_type or instance.period_type,
        period_number=renewal.period_number or instance.period_number,
    )
    if instance.state in LIVE_STATES:
        get_provisioner().renew(instance, renewal)
    record(
        instance, "renewed", activity, changes, renewal.order_id, renewal.order_line_id, once_key
    )
    # A concurrent twin of this order may have committed first: then it did the work.
    commit_if_new()
    return instance


def set_frozen(instance_id: str, frozen: bool, activity: str, order_id: str | None = None):
    """Freeze or unfreeze; a repeat of the current state succeeds without doing anything."""
    instance = live_instance(instance_id)
    target = InstanceState.FROZEN if frozen else InstanceState.ACTIVE
    if instance.state != target and instance.state in LIVE_STATES:
        provisioner = get_provisioner()
        (provisioner.freeze if frozen else provisioner.unfreeze)(instance)
        changes = {"state": [instance.state, target]}
        instance.state = target
        record(instance, "frozen" if frozen else "unfrozen", activity, changes, order_id)
    db.session.commit()
    return instance


def release(instance_id: str, activity: str, order_id=None, order_line_id=None) -> Instance:
    """Release the instance; releasing a released instance succeeds without doing anything."""
    instance = load_for_update(instance_id)
    if instance is None:
        db.session.rollback()
        raise CallRefused(ResultCode.INSTANCE_NOT_FOUND, "instance_not_found")
    if instance.state == InstanceState.PROVISIONING:
        db.session.rollback()
        raise CallRefused(ResultCode.IN_PROGRESS, "instance_provisioning")
    if instance.state != InstanceState.RELEASED:
        get_provisioner().release(instance)
        changes = {"state": [instance.state, InstanceState.RELEASED]}
        instance.state = InstanceState.RELEASED
        record(instance, "released", activity, changes, order_id, order_line_id)
    db.session.commit()
    return instance


def upgrade(instance_id: str, change: Upgrade, activity: str) -> Instance:
    """Apply a new specification once per upgrade order."""
    instance = live_instance(instance_id)
    once_key = f"upgrade:{instance_id}:{change.order_id}:{change.order_line_id or ''}"
    if already_done(once_key):
        return instance
    changes = changed_fields(
        instance,
        sku_code=change.sku_code or instance.sku_code,
        product_id=change.product_id or instance.product_id,
        spec=dict(change.spec) or instance.spec,
    )
    if instance.state in LIVE_STATES:
        get_provisioner().upgrade(instance, change)
    record(instance, "upgraded", activity, changes, change.order_id, change.order_line_id, once_key)
    # A concurrent twin of this order may have committed first: then it did the work.
    commit_if_new()
    return instance


def check_change(instance_id: str, product_info) -> None:
    """Ask the hook whether a specification change at renewal is acceptable."""
    instance = live_instance(instance_id)
    allowed = get_provisioner().allow_change(instance, product_info)
    db.session.rollback()
    if not allowed:
        raise CallRefused(ResultCode.INTERNAL_ERROR, "change_not_allowed")


# ------------------------------------------------------------------------------ queries


@dataclass(frozen=True)
class QueryResult:
    """Instances ready to be described, in the order asked, and the code for the answer."""

    ready: list[Instance]
    code: ResultCode
    reason: str | None


def query(instance_ids: list[str]) -> QueryResult:
    """Find the asked instances and decide the answer's code from their states."""
    found = db.session.scalars(select(Instance).where(Instance.instance_id.in_(instance_ids)))
    by_id = {instance.instance_id: instance for instance in found}
    ready = [by_id[one] for one in instance_ids if one in by_id and by_id[one].state in LIVE_STATES]
    states = {instance.state for instance in by_id.values()}
    if ready:
        return QueryResult(ready, ResultCode.SUCCESS, None)
    # Nothing to describe: say why, most hopeful first (the marketplace polls on 000004).
    if InstanceState.PROVISIONING in states:
        return QueryResult([], ResultCode.IN_PROGRESS, "instance_provisioning")
    if InstanceState.FAILED in states:
        return QueryResult([], ResultCode.INTERNAL_ERROR, "provisioning_failed")
    return QueryResult([], ResultCode.INSTANCE_NOT_FOUND, "instance_not_found")


# ------------------------------------------------------------------------------ history


def changed_fields(instance: Instance, **new_values) -> dict:
    """Apply new values to the instance and return {field: [old, new]} for those that changed."""
    changes = {}
    for name, value in new_values.items():
        old = _plain(getattr(instance, name))
        if old != _plain(value):
            changes[name] = [old, _plain(value)]
            setattr(instance, name, value)
    return changes


def _plain(value):
    """Return a JSON-friendly value; SQLite hands datetimes back without their (UTC) zone."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
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
