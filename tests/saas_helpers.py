"""Reading SaaS answers and the database in tests."""

from sqlalchemy import func, select

from app.extensions import db
from app.models import CallLog, Instance, InstanceHistory, TenantAccount
from app.sealing import unseal
from app.security import compute_body_signature, decrypt_field


def signed_by(response, key) -> bool:
    """Tell whether the answer's Body-Sign is the HMAC of its exact bytes under `key`."""
    expected = f'sign_type="HMAC-SHA256", signature="{compute_body_signature(key, response.data)}"'
    return response.headers.get("Body-Sign") == expected


def instance(instance_id) -> Instance:
    return db.session.scalars(select(Instance).where(Instance.instance_id == instance_id)).one()


def events(instance_id) -> list[str]:
    query = (
        select(InstanceHistory.event)
        .join(Instance)
        .where(Instance.instance_id == instance_id)
        .order_by(InstanceHistory.id)
    )
    return list(db.session.scalars(query))


def last_history(instance_id) -> InstanceHistory:
    query = (
        select(InstanceHistory)
        .join(Instance)
        .where(Instance.instance_id == instance_id)
        .order_by(InstanceHistory.id.desc())
    )
    return db.session.scalars(query).first()


def stored_credentials(instance_id) -> tuple[str, str]:
    account = db.session.scalars(
        select(TenantAccount).join(Instance).where(Instance.instance_id == instance_id)
    ).one()
    return account.admin_user, unseal(account.admin_password_encrypted)


def decrypted_credentials(app_info: dict, key: str, bits: int = 256) -> tuple[str, str]:
    return (
        decrypt_field(key, app_info["userName"], bits),
        decrypt_field(key, app_info["password"], bits),
    )


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def rows_other_than_the_call_log() -> int:
    """Count every row the SaaS family writes; a refused call must leave this at zero."""
    return sum(count(model) for model in (Instance, InstanceHistory, TenantAccount))


def last_call() -> CallLog:
    return db.session.scalars(select(CallLog).order_by(CallLog.id.desc())).first()
