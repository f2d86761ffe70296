"""Console pages. Read-mostly: the only writes are logging in and out and retrying jobs."""

import json
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from sqlalchemy import func, or_, select

from app.console import auth
from app.console.auth import login_required
from app.extensions import db
from app.jobs import retry
from app.models import (
    AppCredential,
    CallLog,
    Department,
    Instance,
    InstanceHistory,
    Job,
    JobState,
    KitUser,
    License,
    LicenseHistory,
    Tenant,
    utcnow,
)
from app.provisioning import get_provisioner

bp = Blueprint("console", __name__, url_prefix="/console")
PER_PAGE = 50

# What to check for each reason a call failed (the call log's `reason`).
HINTS = {
    "bad_signature": "The signature matches none of the configured keys. Most often a key of the "
    "wrong type: V1 and 基础接口 calls use KOOGALLERY_BASIC_KEY, kit calls KOOGALLERY_KIT_KEY, "
    "授权码 calls KOOGALLERY_LICENSE_KEY, orderNotify KOOGALLERY_GENERAL_KEY "
    "(应用工具 › 密钥管理; the V1 Key值 is under 服务商管理 › 服务商信息).",
    "missing_signature": "The call carried no signature or authToken: it did not come from the "
    "marketplace, or a proxy dropped the query string or headers.",
    "no_key": "No key is configured for this interface type: set it and restart.",
    "stale_timestamp": "The timestamp is older than KOOGALLERY_TIMESTAMP_TOLERANCE: this server's "
    "clock is behind (check NTP), or the request was held up on the way.",
    "future_timestamp": "The timestamp is ahead of this server's clock: check NTP.",
    "bad_timestamp": "The timestamp is not a number of milliseconds.",
    "missing_timestamp": "The call carried no timestamp.",
    "missing_nonce": "The call carried no nonce.",
    "replayed_nonce": "This exact signed request arrived before. The marketplace signs every "
    "retry anew, so look for a proxy or tool that repeats requests.",
    "nonce_too_long": "The nonce is longer than 128 characters.",
    "malformed_body": "The body is not a JSON object.",
    "unknown_activity": "The activity is not one this URL serves: is the product registered with "
    "the right production address (SaaS vs License)?",
    "instance_not_found": "The instanceId is unknown here or already released: compare it with "
    "the instance list.",
    "instance_provisioning": "The instance is still being provisioned; the marketplace retries.",
    "provisioning_failed": "The provisioning hook failed its attempts: see the dead letter under "
    "Jobs, fix the cause, and retry it.",
    "internal_error": "Something unexpected failed: see the server log at this time.",
    "not_found": "No route at this path: check the production address registered in the seller "
    "console.",
    "method_not_allowed": "GET is V1 and POST is V2: the product's protocol generation and the "
    "address may not match.",
}


def hint_for(reason: str | None) -> str | None:
    """Return what to check for a failure reason."""
    if not reason:
        return None
    if reason.startswith("invalid:"):
        return f"Mandatory or invalid fields: {reason.removeprefix('invalid:')}."
    return HINTS.get(reason)


@bp.app_context_processor
def console_helpers():
    return {"csrf_token": auth.csrf_token, "hint_for": hint_for}


def page_of(query, per_page: int = PER_PAGE):
    """Return one page of a query (?page=N)."""
    return db.paginate(query, page=request.args.get("page", 1, type=int), per_page=per_page)


# ------------------------------------------------------------------------------ login


# Docs: none (the operator console of this project)
@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log an operator in with the console password."""
    if not auth.console_open():
        abort(404)
    error = None
    if request.method == "POST":
        auth.check_csrf()
        remote = (request.remote_addr or "-")[:64]
        if auth.too_many_failures(remote):
            return render_template("console/login.html", error="Too many attempts; wait."), 429
        if auth.check_password(request.form.get("password", ""), remote):
            auth.start_session()
            return redirect(safe_next(request.args.get("next")))
        error = "Wrong password."
    return render_template("console/login.html", error=error), 401 if error else 200


def safe_next(target: str | None) -> str:
    """Follow ?next only to a console page of this site."""
    if target and target.startswith("/console") and not urlsplit(target).netloc:
        return target
    return url_for("console.overview")


# Docs: none (the operator console of this project)
@bp.post("/logout")
def logout():
    """Log the operator out."""
    auth.check_csrf()
    session.clear()
    return redirect(url_for("console.login"))


# ------------------------------------------------------------------------------ overview


# Docs: none (the operator console of this project)
@bp.get("/")
@login_required
def overview():
    """Show instances, licences, tenants, recent calls and the queue at a glance."""
    by_state = dict(
        db.session.execute(select(Instance.state, func.count()).group_by(Instance.state)).all()
    )
    by_protocol = dict(
        db.session.execute(
            select(Instance.family + " " + Instance.protocol, func.count()).group_by(
                Instance.family, Instance.protocol
            )
        ).all()
    )
    licences = dict(
        db.session.execute(select(License.state, func.count()).group_by(License.state)).all()
    )
    tenants = db.session.scalar(
        select(func.count()).select_from(Tenant).where(Tenant.deleted_at.is_(None))
    )
    since = utcnow() - timedelta(hours=24)
    recent = db.session.execute(
        select(CallLog.created_at, CallLog.result_code).where(CallLog.created_at >= since)
    ).all()
    jobs = dict(db.session.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    failed_calls = db.session.scalars(
        select(CallLog)
        .where(
            CallLog.created_at >= since,
            or_(CallLog.result_code.is_(None), CallLog.result_code != "000000"),
        )
        .order_by(CallLog.id.desc())
        .limit(10)
    ).all()
    return render_template(
        "console/overview.html",
        by_state=by_state,
        by_protocol=by_protocol,
        licences=licences,
        tenants=tenants,
        chart=hourly_chart(recent),
        calls_total=len(recent),
        calls_failed=sum(code != "000000" for _, code in recent),
        failed_calls=failed_calls,
        jobs=jobs,
    )


def hourly_chart(rows) -> list[dict]:
    """Bucket the last 24 hours of calls by hour: successes and failures per bar."""
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    buckets = [{"hour": now - timedelta(hours=23 - i), "ok": 0, "failed": 0} for i in range(24)]
    for created_at, code in rows:
        moment = created_at if created_at.tzinfo else created_at.replace(tzinfo=now.tzinfo)
        index = 23 - int(
            (now - moment.replace(minute=0, second=0, microsecond=0)).total_seconds() // 3600
        )
        if 0 <= index < 24:
            buckets[index]["ok" if code == "000000" else "failed"] += 1
    top = max([b["ok"] + b["failed"] for b in buckets] + [1])
    for index, bucket in enumerate(buckets):
        bucket["x"] = index * 25
        bucket["ok_height"] = round(bucket["ok"] / top * 100, 1)
        bucket["failed_height"] = round(bucket["failed"] / top * 100, 1)
    return buckets


# ------------------------------------------------------------------------------ calls


# Docs: none (the operator console of this project)
@bp.get("/calls")
@login_required
def calls():
    """List marketplace calls, newest first, with filters."""
    query = select(CallLog).order_by(CallLog.id.desc())
    args = request.args
    if args.get("failed"):
        query = query.where(or_(CallLog.result_code.is_(None), CallLog.result_code != "000000"))
    if args.get("activity"):
        query = query.where(CallLog.activity == args["activity"])
    if args.get("family"):
        query = query.where(CallLog.family == args["family"])
    if args.get("hours", type=int):
        query = query.where(
            CallLog.created_at >= utcnow() - timedelta(hours=args.get("hours", type=int))
        )
    if args.get("q"):
        like = f"%{args['q']}%"
        query = query.where(or_(CallLog.instance_id.like(like), CallLog.order_id.like(like)))
    families = db.session.scalars(select(CallLog.family).distinct()).all()
    return render_template("console/calls.html", page=page_of(query), families=families)


# Docs: none (the operator console of this project)
@bp.get("/calls/<int:call_id>")
@login_required
def call(call_id: int):
    """Show one call: the redacted request, our answer, and what to check if it failed."""
    row = db.get_or_404(CallLog, call_id)
    # A new purchase names only its order; later calls name the instance.
    related = select(Instance).where(
        (Instance.instance_id == row.instance_id)
        if row.instance_id
        else (Instance.order_id == row.order_id)
    )
    return render_template(
        "console/call.html",
        instance=db.session.scalars(related).first() if (row.instance_id or row.order_id) else None,
        call=row,
        params=json.dumps(row.params, ensure_ascii=False, indent=2),
        answer=json.dumps(row.answer, ensure_ascii=False, indent=2),
    )


# ------------------------------------------------------------------------------ jobs


# Docs: none (the operator console of this project)
@bp.get("/jobs")
@login_required
def jobs():
    """List jobs that need attention (or all of them)."""
    query = select(Job).order_by(Job.id.desc())
    state = request.args.get("state", "attention")
    if state == "attention":
        query = query.where(
            Job.state.in_((JobState.PENDING, JobState.RETRYING, JobState.RUNNING, JobState.DEAD))
        )
    elif state in set(JobState):
        query = query.where(Job.state == state)
    return render_template("console/jobs.html", page=page_of(query), state=state)


# Docs: none (the operator console of this project)
@bp.post("/jobs/<int:job_id>/retry")
@login_required
def retry_job(job_id: int):
    """Give a dead job a fresh set of attempts."""
    auth.check_csrf()
    flash(f"Job {job_id} re-enqueued." if retry(job_id) else f"Job {job_id} was not retried.")
    return redirect(url_for("console.jobs"))


# ------------------------------------------------------------------------------ instances


# Docs: none (the operator console of this project)
@bp.get("/instances")
@login_required
def instances():
    """List instances, searchable by instance, order or customer id."""
    query = select(Instance).order_by(Instance.id.desc())
    if request.args.get("q"):
        like = f"%{request.args['q']}%"
        query = query.where(
            or_(
                Instance.instance_id.like(like),
                Instance.order_id.like(like),
                Instance.customer_id.like(like),
            )
        )
    return render_template("console/instances.html", page=page_of(query))


# Docs: none (the operator console of this project)
@bp.get("/instances/<instance_id>")
@login_required
def instance(instance_id: str):
    """Show an instance, its full history, its jobs and (behind a click) its credentials."""
    row = db.first_or_404(select(Instance).where(Instance.instance_id == instance_id))
    history = db.session.scalars(
        select(InstanceHistory)
        .where(InstanceHistory.instance_pk == row.id)
        .order_by(InstanceHistory.id)
    ).all()
    calls_for = db.session.scalars(
        select(CallLog)
        .where(CallLog.instance_id == instance_id)
        .order_by(CallLog.id.desc())
        .limit(20)
    ).all()
    instance_jobs = db.session.scalars(
        select(Job).where(Job.instance_pk == row.id).order_by(Job.id)
    ).all()
    licences = db.session.scalars(select(License).where(License.instance_pk == row.id)).all()
    credentials = None
    if row.family == "saas" and row.state in ("active", "frozen"):
        try:
            credentials = get_provisioner().describe(row)
        except Exception:  # a hook that cannot describe must not break the page
            credentials = None
    return render_template(
        "console/instance.html",
        instance=row,
        history=history,
        calls=calls_for,
        jobs=instance_jobs,
        licences=licences,
        credentials=credentials,
    )


# ------------------------------------------------------------------------------ licences


# Docs: none (the operator console of this project)
@bp.get("/licences")
@login_required
def licences():
    """List licences and 授权码, searchable by code, order or event id."""
    query = select(License).order_by(License.id.desc())
    if request.args.get("q"):
        like = f"%{request.args['q']}%"
        query = query.where(
            or_(License.code.like(like), License.order_id.like(like), License.event_id.like(like))
        )
    return render_template("console/licences.html", page=page_of(query))


# Docs: none (the operator console of this project)
@bp.get("/licences/<int:license_id>")
@login_required
def licence(license_id: int):
    """Show a licence with its history."""
    row = db.get_or_404(License, license_id)
    history = db.session.scalars(
        select(LicenseHistory)
        .where(LicenseHistory.license_pk == row.id)
        .order_by(LicenseHistory.id)
    ).all()
    owner = db.session.get(Instance, row.instance_pk) if row.instance_pk else None
    return render_template("console/licence.html", licence=row, history=history, owner=owner)


# ------------------------------------------------------------------------------ tenants


# Docs: none (the operator console of this project)
@bp.get("/tenants")
@login_required
def tenants():
    """List joint-operation tenants."""
    query = select(Tenant).order_by(Tenant.id.desc())
    return render_template("console/tenants.html", page=page_of(query))


# Docs: none (the operator console of this project)
@bp.get("/tenants/<tenant_id>")
@login_required
def tenant(tenant_id: str):
    """Show a tenant: app credentials (never the secret), users and the department tree."""
    row = db.first_or_404(select(Tenant).where(Tenant.tenant_id == tenant_id))
    credentials = db.session.scalars(
        select(AppCredential).where(AppCredential.tenant_pk == row.id)
    ).all()
    users = db.session.scalars(
        select(KitUser).where(KitUser.tenant_pk == row.id).order_by(KitUser.user_name)
    ).all()
    departments = db.session.scalars(select(Department).where(Department.tenant_pk == row.id)).all()
    names = {department.org_code: department.org_name for department in departments}
    return render_template(
        "console/tenant.html",
        department_names=names,
        tenant=row,
        credentials=credentials,
        users=users,
        tree=department_tree(departments),
    )


def department_tree(departments) -> list[dict]:
    """Nest departments under their parents; unknown parents count as top level."""
    nodes = {d.org_code: {"department": d, "children": []} for d in departments}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node["department"].parent_code or "")
        (parent["children"] if parent and parent is not node else roots).append(node)
    # A loop of parents (A under B under A) would hide its departments: show them at the top.
    seen = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        seen.add(id(node))
        stack.extend(node["children"])
    roots += [node for node in nodes.values() if id(node) not in seen and not node["children"]]
    return roots
