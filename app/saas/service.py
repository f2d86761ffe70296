"""SaaS instance lifecycle: each function owns its transaction and commits before returning.

Idempotency comes from the database: the unique `purchase_key` makes every resend or concurrent
copy of newInstance end in one instance, and the unique `once_key` of a history row makes a
resent upgrade or renewal a no-op. `000000` is only answered after the commit.
"""

import logging
from dataclasses import asdict, dataclass, replace

from sqlalchemy import select

from app.extensions import commit_if_new, db
from app.jobs import add_job, dispatch, provision_purchase
from app.lifecycle import (
    LIVE_STATES,
    CallRefused,
    already_done,
    changed_fields,
    claim_instance,
    expires_at,
    live_instance,
    load_for_update,
    mark_provisioned,
    record,
)
from app.models import Instance, InstanceState
from app.provisioning import AppInfo, Purchase, Renewal, Upgrade, get_provisioner
from app.results import ResultCode

log = logging.getLogger(__name__)

FAMILY = "saas"


@dataclass(frozen=True)
class Provisioned:
    """The outcome of newInstance: the instance, and its appInfo when it is ready."""

    instance: Instance
    app_info: AppInfo | None


def purchase_key(protocol: str, order_id: str, order_line_id: str | None, product_id: str | None):
    """Return the idempotency key of a purchase (see Instance.purchase_key)."""
    if protocol == "v2" and order_line_id:
        return f"v2:{order_id}:{order_line_id}"
    return f"v1:{order_id}:{product_id}"  # V1, and V2 bodies without an order line


# ------------------------------------------------------------------------------ new purchase


def new_instance(purchase: Purchase) -> Provisioned:
    """Create the purchase's instance once and have it provisioned; return what is ready.

    The provisioning job is committed with the instance (the outbox) and handed to the queue;
    with KOOGALLERY_QUEUE=inline it has already run when this returns.
    """
    key = purchase_key(
        purchase.protocol, purchase.order_id, purchase.order_line_id, purchase.product_id
    )
    # The marketplace resends in bursts. A resend of a purchase already set up changes nothing,
    # so it is answered from what is stored, without writing (a settled instance never goes back
    # to provisioning, so reading first cannot miss a setup).
    settled = settled_instance(key)
    if settled is not None:
        return Provisioned(settled, get_provisioner().describe(settled))
    jobs = []
    instance, claimed = claim_purchase(purchase, key, jobs)
    if claimed:
        dispatch(jobs[0])
        db.session.refresh(instance)
    if instance.state == InstanceState.PROVISIONING:
        return Provisioned(instance, None)
    if instance.state == InstanceState.FAILED:
        raise CallRefused(ResultCode.INTERNAL_ERROR, "provisioning_failed")
    return Provisioned(instance, get_provisioner().describe(instance))


def settled_instance(key: str) -> Instance | None:
    """Return a purchase's instance if no resend will set it up again, else None."""
    instance = db.session.scalars(select(Instance).where(Instance.purchase_key == key)).first()
    if instance is None or instance.state in (InstanceState.PROVISIONING, InstanceState.FAILED):
        return None
    return instance


def claim_purchase(purchase: Purchase, key: str, jobs: list) -> tuple[Instance, bool]:
    """Insert the purchase's instance under `key`, or find it; when claimed, add its job."""

    def add_provisioning_job(instance: Instance) -> None:
        purchase_for_instance = replace(purchase, instance_id=instance.instance_id)
        jobs.append(provision_purchase(instance, purchase_for_instance))

    return claim_instance(
        FAMILY,
        key,
        purchase.instance_id,
        activity="newInstance",
        on_claim=add_provisioning_job,
        protocol=purchase.protocol,
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
        spec=dict(purchase.spec) or None,
        trial=purchase.trial,
        test=purchase.test,
    )


def complete_provisioning(instance_id: str) -> Instance:
    """Finish an instance whose provisioner answered InProgress; call it when the work is done."""
    instance = load_for_update(instance_id, FAMILY)
    if instance is None:
        raise LookupError(f"no instance {instance_id}")
    if instance.state == InstanceState.PROVISIONING:
        mark_provisioned(instance, None)
        db.session.commit()
    return instance


# ------------------------------------------------------------------------------ other changes


def renew(instance_id: str, renewal: Renewal, activity: str) -> Instance:
    """Set the instance's expiry absolutely (renewal, trial to formal, cancelled period)."""
    instance = live_instance(instance_id, FAMILY)
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
    job = add_job("renew", instance, asdict(renewal)) if instance.state in LIVE_STATES else None
    record(
        instance, "renewed", activity, changes, renewal.order_id, renewal.order_line_id, once_key
    )
    # A concurrent twin of this order may have committed first: then it did the work.
    if commit_if_new() and job is not None:
        dispatch(job)
    return instance


def set_frozen(instance_id: str, frozen: bool, activity: str, order_id: str | None = None):
    """Freeze or unfreeze; a repeat of the current state succeeds without doing anything."""
    instance = live_instance(instance_id, FAMILY)
    target = InstanceState.FROZEN if frozen else InstanceState.ACTIVE
    job = None
    if instance.state != target and instance.state in LIVE_STATES:
        job = add_job("freeze" if frozen else "unfreeze", instance, {})
        changes = {"state": [instance.state, target]}
        instance.state = target
        record(instance, "frozen" if frozen else "unfrozen", activity, changes, order_id)
    db.session.commit()
    if job is not None:
        dispatch(job)
    return instance


def release(instance_id: str, activity: str, order_id=None, order_line_id=None) -> Instance:
    """Release the instance; releasing a released instance succeeds without doing anything."""
    instance = live_instance(instance_id, FAMILY, released_ok=True)
    job = None
    if instance.state != InstanceState.RELEASED:
        job = add_job("release", instance, {})
        changes = {"state": [instance.state, InstanceState.RELEASED]}
        instance.state = InstanceState.RELEASED
        record(instance, "released", activity, changes, order_id, order_line_id)
    db.session.commit()
    if job is not None:
        dispatch(job)
    return instance


def upgrade(instance_id: str, change: Upgrade, activity: str) -> Instance:
    """Apply a new specification once per upgrade order."""
    instance = live_instance(instance_id, FAMILY)
    once_key = f"upgrade:{instance_id}:{change.order_id}:{change.order_line_id or ''}"
    if already_done(once_key):
        return instance
    changes = changed_fields(
        instance,
        sku_code=change.sku_code or instance.sku_code,
        product_id=change.product_id or instance.product_id,
        spec=dict(change.spec) or instance.spec,
    )
    job = add_job("upgrade", instance, asdict(change)) if instance.state in LIVE_STATES else None
    record(instance, "upgraded", activity, changes, change.order_id, change.order_line_id, once_key)
    # A concurrent twin of this order may have committed first: then it did the work.
    if commit_if_new() and job is not None:
        dispatch(job)
    return instance


def check_change(instance_id: str, product_info) -> None:
    """Ask the hook whether a specification change at renewal is acceptable."""
    instance = live_instance(instance_id, FAMILY)
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
    found = db.session.scalars(
        select(Instance).where(Instance.instance_id.in_(instance_ids), Instance.family == FAMILY)
    )
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
