"""Licences and 授权码: issued once, kept with their history, changed idempotently.

Each function owns its transaction and commits before returning. One licence per `issue_key`
(unique), so resends and concurrent copies get the same licence text.
"""

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select

from app.extensions import commit_if_new, db
from app.jobs import add_job, dispatch
from app.licensing import LATER, LicenseRequest, get_issuer
from app.lifecycle import (
    CallRefused,
    already_done,
    as_utc,
    changed_fields,
    claim_instance,
    expires_at,
    live_instance,
    load_for_update,
    mark_failed,
    mark_provisioned,
    record,
)
from app.marketplace.client import MarketplaceClient
from app.models import Instance, InstanceState, License, LicenseHistory, LicenseState, utcnow
from app.results import ResultCode

log = logging.getLogger(__name__)

FAMILY = "license"
STATE_OF_INSTANCE = {
    InstanceState.ACTIVE: LicenseState.ACTIVE,
    InstanceState.FROZEN: LicenseState.FROZEN,
    InstanceState.RELEASED: LicenseState.RELEASED,
}


@dataclass(frozen=True)
class Issued:
    """A licence for an answer: its instance and text (None while an async issuer works)."""

    instance: Instance
    license: License | None


# ---------------------------------------------------------------------------- instances


def open_instance(purchase_key: str, preferred_id: str, activity: str, **fields) -> Instance:
    """Create (or find) a License purchase's instance, in the active state."""
    instance, claimed = claim_instance(
        FAMILY, purchase_key, preferred_id, activity=activity, **fields
    )
    if claimed:
        mark_provisioned(instance, None)
        db.session.commit()
    return instance


def get_license_v1(request: LicenseRequest, **fields) -> Issued:
    """Open a V1 purchase once per orderId and issue its licence once (same text on resends)."""
    instance, claimed = claim_instance(
        FAMILY,
        f"license-v1:{fields['order_id']}",
        request.instance_id,
        activity="getLicense",
        protocol="v1",
        **fields,
    )
    key = f"v1:{instance.instance_id}"
    if claimed:
        try:
            request = replace(request, instance_id=instance.instance_id)
            issued = issue(key, "v1", instance, request, "getLicense")
            mark_provisioned(instance, "getLicense")
            db.session.commit()
            return Issued(instance, issued)
        except Exception as error:
            db.session.rollback()
            log.exception("issuing the licence of %s failed", instance.instance_id)
            mark_failed(instance, "getLicense", error)
            db.session.commit()
            raise CallRefused(ResultCode.INTERNAL_ERROR, "license_issue_failed") from error
    if instance.state == InstanceState.FAILED:
        raise CallRefused(ResultCode.INTERNAL_ERROR, "license_issue_failed")
    return Issued(instance, find_license(key))


def issue(key: str, kind: str, instance: Instance, request: LicenseRequest, activity: str):
    """Ask the issuer for a licence and add it to the session (the caller commits)."""
    text = get_issuer().issue(request)
    pending = text is LATER
    license = License(
        issue_key=key,
        kind=kind,
        instance_pk=instance.id,
        event_id=request.event_id,
        bound_to=request.bound_to,
        license_text=None if pending else text,
        state=LicenseState.PENDING if pending else LicenseState.ACTIVE,
        order_id=request.order_id,
        order_line_id=instance.order_line_id,
        expire_time=instance.expire_time,
        expires_at=request.not_after,
        test=request.test,
    )
    db.session.add(license)
    db.session.flush()
    record_license(license, "issued", activity, None, request.order_id)
    return license


def find_license(key: str) -> License | None:
    """Return the licence with this issue key."""
    return db.session.scalars(select(License).where(License.issue_key == key)).first()


def renew_instance(instance_id: str, order_id, order_line_id, expire_time, activity, product_id):
    """Set an instance's expiry absolutely, once per order; re-issue a V1 licence to match."""
    instance = live_instance(instance_id, FAMILY)
    once_key = f"renew:{instance_id}:{order_id}:{order_line_id}:{expire_time}"
    if already_done(once_key):
        return instance
    changes = changed_fields(
        instance,
        expire_time=expire_time,
        expires_at=expires_at(expire_time, instance.protocol),
        product_id=product_id or instance.product_id,
    )
    record(instance, "renewed", activity, changes, order_id, order_line_id, once_key)
    v1_license = find_license(f"v1:{instance_id}")
    if v1_license is not None:
        # The document carries its validity: a renewed purchase needs a renewed document, bound
        # to the same machine.
        request = licence_request_for(instance, bound_to=v1_license.bound_to)
        text = get_issuer().issue(request)
        changes = {"expire_time": [v1_license.expire_time, instance.expire_time]}
        v1_license.expire_time, v1_license.expires_at = instance.expire_time, instance.expires_at
        if text is not LATER:
            v1_license.license_text = text
            changes["license_text"] = ["previous", "reissued"]
        record_license(v1_license, "renewed", activity, changes, order_id, order_line_id)
    commit_if_new()
    return instance


def set_instance_frozen(instance_id: str, frozen: bool, activity: str, order_id=None):
    """Freeze or unfreeze an instance and its licences; a repeat does nothing."""
    instance = live_instance(instance_id, FAMILY)
    target = InstanceState.FROZEN if frozen else InstanceState.ACTIVE
    if instance.state != target and instance.state != InstanceState.FAILED:
        changes = {"state": [instance.state, target]}
        instance.state = target
        record(instance, "frozen" if frozen else "unfrozen", activity, changes, order_id)
        mirror_state(instance, activity)
    db.session.commit()
    return instance


def release_instance(instance_id: str, activity: str, order_id=None, order_line_id=None):
    """Release an instance and its licences; releasing again succeeds and does nothing."""
    instance = load_for_update(instance_id, FAMILY)
    if instance is None:
        db.session.rollback()
        raise CallRefused(ResultCode.INSTANCE_NOT_FOUND, "instance_not_found")
    if instance.state != InstanceState.RELEASED:
        changes = {"state": [instance.state, InstanceState.RELEASED]}
        instance.state = InstanceState.RELEASED
        record(instance, "released", activity, changes, order_id, order_line_id)
        mirror_state(instance, activity)
    db.session.commit()
    return instance


def mirror_state(instance: Instance, activity: str) -> None:
    """Give an instance's licences the instance's state (the caller commits)."""
    target = STATE_OF_INSTANCE[instance.state]
    # A licence still waiting for its issuer can be released, but not frozen or activated.
    changeable = (
        (LicenseState.ACTIVE, LicenseState.FROZEN, LicenseState.PENDING)
        if target == LicenseState.RELEASED
        else (LicenseState.ACTIVE, LicenseState.FROZEN)
    )
    licenses = db.session.scalars(select(License).where(License.instance_pk == instance.id))
    for license in licenses:
        if license.state in changeable and license.state != target:
            record_license(license, target, activity, {"state": [license.state, target]})
            license.state = target


def licence_request_for(instance: Instance, **overrides) -> LicenseRequest:
    """Describe an instance's licence to the issuer."""
    values = {
        "kind": "v1",
        "instance_id": instance.instance_id,
        "order_id": instance.order_id,
        "customer_id": instance.customer_id,
        "product_id": instance.product_id,
        "sku_code": instance.sku_code,
        "quantity": quantity_of(instance),
        "not_after": instance.expires_at,
        "test": instance.test,
    }
    return LicenseRequest(**{**values, **overrides})


def quantity_of(instance: Instance) -> int | None:
    """Return how many licences the purchase includes, when the marketplace said so."""
    spec = instance.spec or {}
    value = spec.get("linearValue") or spec.get("amount")
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------- online activation


def get_license_async(
    instance_id: str,
    event_id: str,
    fingerprint: str | None,
    effective_at: datetime,
    expire_time: str | None,
    test: bool,
) -> Issued:
    """Issue a device licence once per (eventId, fingerprint), within the order's quota."""
    instance = live_instance(instance_id, FAMILY)
    digest = hashlib.sha256((fingerprint or "").encode("utf-8")).hexdigest()
    key = f"device:{instance_id}:{event_id}:{digest}"
    existing = find_license(key)
    if existing is not None:
        db.session.rollback()
        return Issued(instance, existing)
    if fingerprint is None and get_issuer().requires_fingerprint():
        raise refused(ResultCode.LICENSE_FINGERPRINT_REQUIRED, "fingerprint_required")
    if instance.charging_mode == "PERIOD" and not expire_time:
        raise refused(ResultCode.LICENSE_EXPIRE_TIME_REQUIRED, "expire_time_required")
    if instance.state == InstanceState.FROZEN or (
        instance.expires_at is not None and effective_at > as_utc(instance.expires_at)
    ):
        raise refused(ResultCode.LICENSE_OUTSIDE_ORDER_VALIDITY, "outside_order_validity")
    # Debug calls succeed again and again without using up the buyer's quota.
    if not test and quota_used_up(instance):
        raise refused(ResultCode.LICENSE_QUOTA_EXHAUSTED, "quota_exhausted")
    request = licence_request_for(
        instance,
        kind="device",
        not_before=effective_at,
        not_after=expires_at(expire_time, "v2") if expire_time else instance.expires_at,
        bound_to=fingerprint,
        event_id=event_id,
        test=test,
    )
    license = issue(key, "device", instance, request, "getLicenseAsync")
    if not commit_if_new():
        # A concurrent copy of this call issued it first.
        return Issued(instance, find_license(key))
    return Issued(instance, license)


def quota_used_up(instance: Instance) -> bool:
    """Tell whether the order's device licences are all issued (the row lock serialises this)."""
    quantity = quantity_of(instance)
    if quantity is None:
        return False
    used = db.session.scalar(
        select(func.count())
        .select_from(License)
        .where(
            License.instance_pk == instance.id,
            License.kind == "device",
            License.test.is_(False),
            License.state != LicenseState.RELEASED,
        )
    )
    return used >= quantity


def deliver_license(event_id: str, text: str) -> License:
    """Store the licence an async issuer produced; a job uploads it for the marketplace's event."""
    query = (
        select(License)
        .where(License.event_id == event_id)
        # The licence still waiting for its text first, if the event has several.
        .order_by((License.state == LicenseState.PENDING).desc(), License.id)
        .with_for_update()
    )
    license = db.session.scalars(query).first()
    if license is None:
        raise LookupError(f"no licence is waiting for event {event_id}")
    if license.state == LicenseState.PENDING:
        license.license_text = text
        license.state = LicenseState.ACTIVE
        record_license(license, "issued", "deliver", None)
    job = add_job("upload_license", None, {"license_id": license.id})
    db.session.commit()
    dispatch(job)
    return license


def upload_license(license_id: int) -> None:
    """Upload a stored licence to the marketplace's event (the upload_license job)."""
    license = db.session.get(License, license_id)
    client = MarketplaceClient.from_config(current_app.config)
    if client is None:
        raise LookupError("KOOGALLERY_AK and KOOGALLERY_SK are needed to upload a licence")
    client.upload_license(license.event_id, characters=license.license_text)
    license.delivered_at = utcnow()
    record_license(license, "delivered", "upload", None)


def refused(code: ResultCode, reason: str) -> CallRefused:
    """Roll back the lookup's lock and return the refusal to raise."""
    db.session.rollback()
    return CallRefused(code, reason)


# ---------------------------------------------------------------------------- 授权码 2.0


def code_for_update(code: str, activity: str, test: bool) -> License:
    """Return a 授权码's row, recording it on first sight: the marketplace generates codes."""
    key = f"code:{code}"
    license = License(issue_key=key, kind="code", code=code, state=LicenseState.ACTIVE, test=test)
    db.session.add(license)
    if commit_if_new():
        record_license(license, "recorded", activity, None)
        db.session.commit()
    query = select(License).where(License.issue_key == key).with_for_update()
    return db.session.scalars(query).one()


def renew_code(code, order_id, order_line_id, expire_time, scene, test) -> License:
    """Set a 授权码's expiry absolutely, once per order."""
    license = code_for_update(code, "refreshLicenseCode", test)
    if license.state == LicenseState.RELEASED:
        raise refused(ResultCode.INSTANCE_NOT_FOUND, "license_code_released")
    once_key = f"renew-code:{code}:{order_id}:{order_line_id}:{expire_time}"
    if _license_done(once_key):
        db.session.rollback()
        return license
    changes = changed_fields(
        license, expire_time=expire_time, expires_at=expires_at(expire_time, "v2")
    )
    changes["scene"] = scene
    record_license(
        license, "renewed", "refreshLicenseCode", changes, order_id, order_line_id, once_key
    )
    commit_if_new()
    return license


def set_code_frozen(code: str, frozen: bool, test: bool) -> License:
    """Freeze or unfreeze a 授权码; a repeat does nothing."""
    license = code_for_update(code, "updateLicenseCodeStatus", test)
    if license.state == LicenseState.RELEASED:
        raise refused(ResultCode.INSTANCE_NOT_FOUND, "license_code_released")
    target = LicenseState.FROZEN if frozen else LicenseState.ACTIVE
    if license.state != target:
        record_license(
            license,
            "frozen" if frozen else "unfrozen",
            "updateLicenseCodeStatus",
            {"state": [license.state, target]},
        )
        license.state = target
    db.session.commit()
    return license


def release_code(code: str, order_id, order_line_id, test: bool) -> License:
    """Release a 授权码; releasing again succeeds and does nothing."""
    license = code_for_update(code, "releaseLicenseCode", test)
    if license.state != LicenseState.RELEASED:
        changes = {"state": [license.state, LicenseState.RELEASED]}
        record_license(license, "released", "releaseLicenseCode", changes, order_id, order_line_id)
        license.state = LicenseState.RELEASED
    db.session.commit()
    return license


# ---------------------------------------------------------------------------- history


def record_license(license, event, activity, changes, order_id=None, order_line_id=None, once=None):
    """Add a history row for a change to a licence (the caller commits)."""
    db.session.add(
        LicenseHistory(
            license_pk=license.id,
            event=event,
            activity=activity,
            order_id=order_id,
            order_line_id=order_line_id,
            changes=changes or None,
            once_key=once,
            test=license.test,
        )
    )


def _license_done(once_key: str) -> bool:
    query = select(LicenseHistory.id).where(LicenseHistory.once_key == once_key)
    return db.session.scalar(query) is not None
