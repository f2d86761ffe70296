"""Store what the kit sync interfaces push: one transaction per call, idempotent.

Adds of things that exist update them, deletes of things that do not exist succeed, and none of
it requires the purchased instance to exist (the seller's own test tenant has no instance).
"""

from flask import current_app
from sqlalchemy import delete, select

from app.extensions import commit_if_new, db, insert_if_new
from app.lifecycle import CallRefused
from app.models import AppCredential, Department, KitUser, Tenant, utcnow
from app.results import ResultCode
from app.sealing import seal
from app.security import SecurityError, decrypt_oaep, load_private_key

DELETE, ADD, MODIFY, REVOKE = 0, 1, 2, 3


def tenant_row(tenant_id: str, *, create: bool, instance_id: str | None = None) -> Tenant | None:
    """Return the tenant, creating a placeholder when a sync for it arrives before tenantSync."""
    query = select(Tenant).where(Tenant.tenant_id == tenant_id)
    tenant = db.session.scalars(query).first()
    if tenant is None and create:
        db.session.add(Tenant(tenant_id=tenant_id, instance_id=instance_id or None))
        commit_if_new()  # a concurrent call may have created it: then use that one
        tenant = db.session.scalars(query).one()
    return tenant


def sync_tenant(data: dict, test: bool) -> None:
    """Add, modify (name and domain) or delete a tenant."""
    if data["flag"] == DELETE:
        tenant = tenant_row(data["tenantId"], create=False)
        if tenant is not None and tenant.deleted_at is None:
            tenant.deleted_at = utcnow()
        db.session.commit()
        return
    tenant = tenant_row(data["tenantId"], create=True, instance_id=data.get("instanceId"))
    tenant.tenant_code = data["tenantCode"]
    tenant.name = data["name"]
    tenant.domain_name = data["domainName"].rstrip("/")
    tenant.instance_id = data.get("instanceId") or tenant.instance_id
    tenant.order_id = data.get("orderId") or tenant.order_id
    tenant.test = test
    tenant.deleted_at = None
    db.session.commit()


def sync_application(data: dict, test: bool) -> None:
    """Add, modify or delete an app credential, keeping the decrypted secret sealed."""
    if data["flag"] == DELETE:
        tenant = tenant_row(data["tenantId"], create=False)
        credential = tenant and credential_row(tenant, data["appId"])
        if credential is not None and credential.deleted_at is None:
            credential.deleted_at = utcnow()
        db.session.commit()
        return
    secret = decrypt_client_secret(data["clientSecret"])
    tenant = tenant_row(data["tenantId"], create=True, instance_id=data.get("instanceId"))
    credential = credential_row(tenant, data["appId"])
    if credential is None:
        credential = AppCredential(tenant_pk=tenant.id, app_id=data["appId"])
        db.session.add(credential)
    credential.client_id = data["clientId"]
    credential.client_secret_sealed = seal(secret)
    credential.instance_id = data.get("instanceId") or credential.instance_id
    credential.test = test
    credential.deleted_at = None
    commit_or_refuse()


def decrypt_client_secret(ciphertext: str) -> str:
    """Decrypt clientSecret with our RSA key; refuse the call if no OAEP variant opens it."""
    pem = current_app.config.get("KOOGALLERY_RSA_PRIVATE_KEY")
    if not pem:
        raise CallRefused(ResultCode.INTERNAL_ERROR, "no_rsa_private_key")
    try:
        return decrypt_oaep(load_private_key(pem), ciphertext)
    except SecurityError:
        # Nothing is stored: the marketplace shows the failure and the seller can re-send.
        raise CallRefused(ResultCode.INVALID_PARAMETER, "client_secret_undecryptable") from None


def credential_row(tenant: Tenant, app_id: str) -> AppCredential | None:
    """Return a tenant's app credential."""
    query = select(AppCredential).where(
        AppCredential.tenant_pk == tenant.id, AppCredential.app_id == app_id
    )
    return db.session.scalars(query).first()


def sync_users(data: dict, test: bool) -> None:
    """Add, modify, delete or revoke up to 500 users in one transaction."""
    flag, users = data["flag"], data["userList"]
    tenant = tenant_row(data["tenantId"], create=flag in (ADD, MODIFY))
    if tenant is None:
        db.session.commit()
        return
    names = [user["userName"] for user in users]
    existing = {
        user.user_name: user
        for user in db.session.scalars(
            select(KitUser).where(KitUser.tenant_pk == tenant.id, KitUser.user_name.in_(names))
        )
    }
    for user in users:
        row = existing.get(user["userName"])
        if flag == DELETE:
            if row is not None:
                db.session.delete(row)
        elif flag == REVOKE:
            if row is not None:
                row.authorized = False
        else:
            if row is None:
                row = KitUser(tenant_pk=tenant.id, user_name=user["userName"])
                db.session.add(row)
                existing[row.user_name] = row
            apply_user(row, user, data["appId"], test)
    commit_or_refuse()


def apply_user(row: KitUser, user: dict, app_id: str, test: bool) -> None:
    """Copy an authSync user onto its row; adding or modifying (re)authorises it."""
    row.app_id = app_id
    row.name = user.get("name")
    row.org_code = user.get("orgCode")
    row.position = user.get("position")
    row.employee_code = user.get("employeeCode")
    row.employee_type = user.get("employeeType")
    row.role = user["role"]
    row.enabled = user["enable"]
    row.authorized = True
    row.mobile_sealed = seal(user["mobile"]) if user.get("mobile") else None
    row.email_sealed = seal(user["email"]) if user.get("email") else None
    row.work_place = user.get("workPlace")
    row.entry_date = user.get("entryDate")
    row.test = test


def sync_department(data: dict, test: bool) -> None:
    """Add, modify (rename or move) or delete one department."""
    tenant = tenant_row(data["tenantId"], create=data["flag"] != DELETE)
    if tenant is None:
        db.session.commit()
        return
    query = select(Department).where(
        Department.tenant_pk == tenant.id, Department.org_code == data["orgCode"]
    )
    department = db.session.scalars(query).first()
    if data["flag"] == DELETE:
        if department is not None:
            db.session.delete(department)
    else:
        if department is None:
            department = Department(tenant_pk=tenant.id, org_code=data["orgCode"])
            db.session.add(department)
        department.org_name = data.get("orgName") or department.org_name
        department.parent_code = data.get("parentCode") or None
        department.test = test
    commit_or_refuse()


def sync_all_departments(data: dict, test: bool) -> None:
    """Replace a tenant's whole department tree in one transaction."""
    tenant = tenant_row(data["tenantId"], create=True, instance_id=data.get("instanceId"))
    db.session.execute(delete(Department).where(Department.tenant_pk == tenant.id))
    # A full list may name a department twice: the last entry wins, like duplicate JSON keys.
    orgs = {org["orgCode"]: org for org in data["orgInfoList"]}
    rows = [
        {
            "tenant_pk": tenant.id,
            "org_code": code,
            "org_name": org.get("orgName"),
            "parent_code": org.get("parentCode") or None,
            "test": test,
        }
        for code, org in orgs.items()
    ]
    # One multi-row INSERT of plain values: 20 000 ORM objects would cost twice the time and
    # keep their memory in the worker. On PostgreSQL a concurrent copy may insert its tree
    # between our DELETE and this INSERT: refused like a commit that lost the race.
    commit_or_refuse(Department, rows)


def commit_or_refuse(model=None, rows: list[dict] | None = None) -> None:
    """Commit, inserting `rows` into `model` first if given; 000005 if a concurrent copy won."""
    committed = insert_if_new(model, rows) if rows else commit_if_new()
    if not committed:
        raise CallRefused(ResultCode.INTERNAL_ERROR, "concurrent_sync")
