"""License production interface: GET /license (legacy V1), POST /license (授权码 2.0 and online
activation, whose activity names do not overlap)."""

from flask import Blueprint, current_app, g

from app.auth import require_v1_query_token, require_v2_signature
from app.dispatch import dispatch
from app.license import schemas, service
from app.licensing import LicenseRequest
from app.results import ResultCode, marketplace_answer
from app.saas.routes import fetch_order_line, is_test, linear_spec
from app.saas.schemas import V2RefreshInstance, V2ReleaseInstance, V2UpdateInstanceStatus

bp = Blueprint("license", __name__, url_prefix="/license")

# 授权码 2.0 is signed with the key bound to License授权码交付接口; online activation with the
# 基础接口 key (spec license.md §2, §3).
CODE_ACTIVITIES = ("refreshLicenseCode", "updateLicenseCodeStatus", "releaseLicenseCode")


def key_for(body: dict) -> str:
    """Return the key setting that signs this POST, by its activity."""
    if body.get("activity") in CODE_ACTIVITIES:
        return "KOOGALLERY_LICENSE_KEY"
    return "KOOGALLERY_BASIC_KEY"


# Docs: 联营License类商品接入指南(已下线) › 接口说明 (GET, authToken; zh-cn_topic_0070649153)
@bp.get("")
# The spec signs legacy V1 with the seller's Key值 (KOOGALLERY_BASIC_KEY); a License key set up
# for it is accepted too.
@require_v1_query_token("license", key_setting=("KOOGALLERY_BASIC_KEY", "KOOGALLERY_LICENSE_KEY"))
def v1_call():
    """Answer a legacy V1 License call by its activity."""
    return dispatch(V1_HANDLERS, g.params)


# Docs: 联营License类授权码商品接入指南(2.0版本) (zh-cn_topic_0070649167) + 在线开通License接入指南
# (zh-cn_topic_0070649251), POST with signature
@bp.post("")
@require_v2_signature("license", key_setting=key_for)
def v2_call():
    """Answer a 授权码 2.0 or online-activation call by its activity."""
    return dispatch(V2_HANDLERS, g.params)


# ------------------------------------------------------------------------------------- V1


# Docs: 联营License类商品接入指南(已下线) › 获取License (zh-cn_topic_0000001353181669)
def v1_get_license(params: dict):
    """Open a V1 purchase and answer its licence; resends get the same instance and licence."""
    data = schemas.GetLicense().load(params)
    machine_code_param = current_app.config["KOOGALLERY_LICENSE_MACHINE_CODE_PARAM"]
    fields = {
        "order_id": data["orderId"],
        "business_id": data["businessId"],
        "product_id": data["productId"],
        "sku_code": data.get("skuCode") or None,
        "customer_id": data["customerId"],
        "customer_name": data.get("customerName") or None,
        "period_type": data.get("periodType") or None,
        "period_number": data.get("periodNumber"),
        "expire_time": data.get("expireTime") or None,
        "spec": linear_spec(data) or None,
        "test": is_test(data),
    }
    request = LicenseRequest(
        kind="v1",
        instance_id=data["businessId"],
        order_id=data["orderId"],
        customer_id=data["customerId"],
        product_id=data["productId"],
        sku_code=fields["sku_code"],
        quantity=_int(data.get("amount")),
        not_after=service.expires_at(fields["expire_time"], "v1"),
        bound_to=data["saasExtendParams"].get(machine_code_param),
        test=fields["test"],
    )
    issued = service.get_license_v1(request, **fields)
    instance_id = issued.instance.instance_id
    if issued.license is None or issued.license.license_text is None:
        return marketplace_answer(ResultCode.IN_PROGRESS, instanceId=instance_id)
    return marketplace_answer(
        ResultCode.SUCCESS, instanceId=instance_id, license=issued.license.license_text
    )


def _int(value) -> int | None:
    return int(value) if value and str(value).isdigit() else None


# Docs: 联营License类商品接入指南(已下线) › 续费License (zh-cn_topic_0000001353381237)
def v1_refresh_license(params: dict):
    """Renew a V1 purchase: new expiry, re-issued licence."""
    data = schemas.RefreshLicense().load(params)
    service.renew_instance(
        data["instanceId"],
        data["orderId"],
        None,
        data["expireTime"],
        "refreshLicense",
        data.get("productId") or None,
    )
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: 联营License类商品接入指南(已下线) › 过期License
def v1_expire_license(params: dict):
    """Freeze a V1 purchase whose validity ended."""
    data = schemas.ExpireLicense().load(params)
    service.set_instance_frozen(data["instanceId"], True, "expireLicense", data.get("orderId"))
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: 联营License类商品接入指南(已下线) › 释放License (zh-cn_topic_0000001353261785)
def v1_release_license(params: dict):
    """Release a V1 purchase and its licence."""
    data = schemas.ReleaseLicense().load(params)
    service.release_instance(data["instanceId"], "releaseLicense", data["orderId"])
    return marketplace_answer(ResultCode.SUCCESS)


V1_HANDLERS = {
    "getLicense": v1_get_license,
    "refreshLicense": v1_refresh_license,
    "expireLicense": v1_expire_license,
    "releaseLicense": v1_release_license,
}


# ------------------------------------------------------------------------------------- 授权码 2.0


# Docs: 联营License类授权码商品接入指南(2.0版本) › 续费/退订续费周期 (zh-cn_topic_0070649167)
def refresh_license_code(params: dict):
    """Set a 授权码's expiry (renewal, or a cancelled renewal period)."""
    data = schemas.RefreshLicenseCode().load(params)
    service.renew_code(
        data["license"],
        data["orderId"],
        data["orderLineId"],
        data["expireTime"],
        data["scene"],
        is_test(data),
    )
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: 联营License类授权码商品接入指南(2.0版本) › 更新授权码状态 (zh-cn_topic_0070649168)
def update_license_code_status(params: dict):
    """Freeze or unfreeze a 授权码."""
    data = schemas.UpdateLicenseCodeStatus().load(params)
    service.set_code_frozen(data["license"], data["status"] == "FREEZE", is_test(data))
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: 联营License类授权码商品接入指南(2.0版本) › 释放授权码 (zh-cn_topic_0070649169)
def release_license_code(params: dict):
    """Release a 授权码."""
    data = schemas.ReleaseLicenseCode().load(params)
    service.release_code(
        data["license"], data.get("orderId") or None, data.get("orderLineId") or None, is_test(data)
    )
    return marketplace_answer(ResultCode.SUCCESS)


# ------------------------------------------------------------------------------------- online


# Docs: 在线开通License接入指南 › 创建实例 (zh-cn_topic_0070649251)
def online_new_instance(params: dict):
    """Open an online-activation purchase; query order tells its quantity and period."""
    data = schemas.OnlineNewInstance().load(params)
    order = fetch_order_line(data["orderId"], data["orderLineId"])
    line, product, buyer = order.line, order.product, order.buyer
    instance = service.open_instance(
        f"license-v2:{data['orderId']}:{data['orderLineId']}",
        data["businessId"],
        "newInstance",
        protocol="v2",
        order_id=data["orderId"],
        order_line_id=data["orderLineId"],
        business_id=data["businessId"],
        product_id=product.get("productId"),
        sku_code=product.get("skuCode"),
        customer_id=buyer.get("customerId"),
        customer_name=buyer.get("customerName"),
        charging_mode=line.get("chargingMode"),
        period_type=line.get("periodType"),
        period_number=line.get("periodNumber"),
        expire_time=line.get("expireTime"),
        spec=linear_spec({"linearValue": product.get("linearValue")}) or None,
        trial=order.trial,
        test=is_test(data),
    )
    return marketplace_answer(ResultCode.SUCCESS, instanceId=instance.instance_id)


# Docs: 在线开通License接入指南 › 更新实例 (zh-cn_topic_0070649252)
def online_refresh_instance(params: dict):
    """Renew an online-activation purchase."""
    data = V2RefreshInstance().load(params)
    service.renew_instance(
        data["instanceId"],
        data["orderId"],
        data["orderLineId"],
        data["expireTime"][:14],
        "refreshInstance",
        data.get("productId") or None,
    )
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: 在线开通License接入指南 › 更新实例状态 (zh-cn_topic_0070649253)
def online_update_instance_status(params: dict):
    """Freeze or unfreeze an online-activation purchase and its device licences."""
    data = V2UpdateInstanceStatus().load(params)
    frozen = data["status"] == "FREEZE"
    service.set_instance_frozen(data["instanceId"], frozen, "updateInstanceStatus")
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: 在线开通License接入指南 › 释放实例 (zh-cn_topic_0070649254)
def online_release_instance(params: dict):
    """Release an online-activation purchase and its device licences."""
    data = V2ReleaseInstance().load(params)
    service.release_instance(
        data["instanceId"],
        "releaseInstance",
        data.get("orderId") or None,
        data.get("orderLineId") or None,
    )
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: 在线开通License接入指南 › 获取License (getLicenseAsync; zh-cn_topic_0070649255)
def get_license_async(params: dict):
    """Issue a device's licence, or answer 000004 and deliver it later by upload."""
    data = schemas.GetLicenseAsync().load(params)
    expire_time = data.get("expireTime")
    issued = service.get_license_async(
        data["instanceId"],
        data["eventId"],
        data.get("deviceFingerprint"),
        data["effectiveTime"],
        expire_time.strftime("%Y%m%d%H%M%S") if expire_time else None,
        is_test(data),
    )
    license = issued.license
    if license.license_text is None:
        return marketplace_answer(ResultCode.IN_PROGRESS, instanceId=issued.instance.instance_id)
    return marketplace_answer(
        ResultCode.SUCCESS, instanceId=issued.instance.instance_id, license=license.license_text
    )


V2_HANDLERS = {
    "refreshLicenseCode": refresh_license_code,
    "updateLicenseCodeStatus": update_license_code_status,
    "releaseLicenseCode": release_license_code,
    "newInstance": online_new_instance,
    "refreshInstance": online_refresh_instance,
    "updateInstanceStatus": online_update_instance_status,
    "releaseInstance": online_release_instance,
    "getLicenseAsync": get_license_async,
}
