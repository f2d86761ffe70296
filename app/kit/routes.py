"""Kit sync interfaces under the SaaS production path: /saas/produceAPI/v2/<name> (x-sign) and
the V1 paths /saas/produceAPI/<name> (authToken header). Kit calls are not retried by the
marketplace: an administrator re-sends them, so every answer says clearly what went wrong."""

from flask import Blueprint, current_app, g, request
from marshmallow import ValidationError

from app.auth import require_kit_signature, require_v1_header_token
from app.dispatch import refuse, refuse_invalid
from app.kit import schemas, service
from app.lifecycle import CallRefused
from app.results import ResultCode, marketplace_answer

bp = Blueprint("kit", __name__, url_prefix="/saas/produceAPI")

INTERFACES = {
    "tenantSync": (schemas.TenantSync, None, service.sync_tenant),
    "applicationSync": (schemas.ApplicationSync, None, service.sync_application),
    "authSync": (schemas.AuthSync, schemas.normalise_users, service.sync_users),
    "singleOrgSync": (schemas.SingleOrgSync, None, service.sync_department),
    "allOrgSync": (schemas.AllOrgSync, schemas.normalise_orgs, service.sync_all_departments),
}


@bp.before_request
def allow_large_syncs():
    """Let kit bodies be larger than other calls: a full department sync of a big enterprise is."""
    request.max_content_length = current_app.config["KOOGALLERY_KIT_MAX_BODY"]


def handle(interface: str):
    """Validate the verified body for one interface and store it."""
    schema, normalise, store = INTERFACES[interface]
    g.call.activity = interface
    try:
        body = normalise(g.params) if normalise else g.params
        data = schema().load(body)
    except ValidationError as error:
        return refuse_invalid(error)
    try:
        store(data, data.get("testFlag") == "1")
    except CallRefused as refused:
        return refuse(refused.code, refused.reason)
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: 联营kit接口(V2) › 企业同步 tenantSync (zh-cn_topic_0070649434–0070649437)
@bp.post("/v2/tenantSync")
@require_kit_signature()
def tenant_sync():
    """Add, modify or delete a tenant."""
    return handle("tenantSync")


# Docs: 联营kit接口(V2) › 应用同步 applicationSync (zh-cn_topic_0070649434–0070649437)
@bp.post("/v2/applicationSync")
@require_kit_signature()
def application_sync():
    """Add, modify or delete an app credential (clientSecret RSA-encrypted)."""
    return handle("applicationSync")


# Docs: 联营kit接口(V2) › 用户授权同步 authSync (zh-cn_topic_0070649434–0070649437)
@bp.post("/v2/authSync")
@require_kit_signature()
def auth_sync():
    """Add, modify, delete or revoke users."""
    return handle("authSync")


# Docs: 联营kit接口(V2) › 部门增量同步 singleOrgSync (zh-cn_topic_0070649434–0070649437)
@bp.post("/v2/singleOrgSync")
@require_kit_signature()
def single_org_sync():
    """Add, modify or delete one department."""
    return handle("singleOrgSync")


# Docs: 联营kit接口(V2) › 部门全量同步 allOrgSync (zh-cn_topic_0070649434–0070649437)
@bp.post("/v2/allOrgSync")
@require_kit_signature()
def all_org_sync():
    """Replace the department tree."""
    return handle("allOrgSync")


# Docs: 联营kit接口(V1) › 企业同步 (zh-cn_topic_0070649109–0070649113)
@bp.post("/tenantSync")
@require_v1_header_token()
def tenant_sync_v1():
    """Add or delete a tenant (V1)."""
    return handle("tenantSync")


# Docs: 联营kit接口(V1) › 应用同步 (zh-cn_topic_0070649109–0070649113)
@bp.post("/applicationSync")
@require_v1_header_token()
def application_sync_v1():
    """Add, modify or delete an app credential (V1)."""
    return handle("applicationSync")


# Docs: 联营kit接口(V1) › 用户授权同步 (zh-cn_topic_0070649109–0070649113)
@bp.post("/authSync")
@require_v1_header_token()
def auth_sync_v1():
    """Add, modify, delete or revoke users (V1: userList as a JSON string)."""
    return handle("authSync")


# Docs: 联营kit接口(V1) › 部门增量同步 (zh-cn_topic_0070649109–0070649113)
@bp.post("/singleOrgSync")
@require_v1_header_token()
def single_org_sync_v1():
    """Add, modify or delete one department (V1)."""
    return handle("singleOrgSync")


# Docs: 联营kit接口(V1) › 部门全量同步 (zh-cn_topic_0070649109–0070649113)
@bp.post("/allOrgSync")
@require_v1_header_token()
def all_org_sync_v1():
    """Replace the department tree (V1: orgInfo, entries with name)."""
    return handle("allOrgSync")
