"""SaaS production interface: GET /saas for V1, POST /saas for V2, one handler per activity.

The marketplace calls one URL for every scenario and names the scenario in `activity`. The
decorators verify the call; each handler validates its fields with a schema, calls one service
function (which commits) and answers through marketplace_answer().
"""

import logging
from dataclasses import dataclass, field

from flask import Blueprint, current_app, g

from app.auth import require_v1_query_token, require_v2_signature
from app.dispatch import dispatch, refuse
from app.lifecycle import CallRefused
from app.marketplace.client import MarketplaceClient, MarketplaceError
from app.provisioning import Purchase, Renewal, Upgrade, get_provisioner
from app.results import ResultCode, marketplace_answer
from app.saas import schemas, service
from app.saas.answers import app_info_fields, usage_info
from app.security import SecurityError, decrypt_field, encryption_bits

log = logging.getLogger(__name__)

bp = Blueprint("saas", __name__, url_prefix="/saas")

# Query order inside a marketplace call must leave room in the 5 s budget: at worst a 1 s connect
# timeout at the .com host, the same at the .cn fallback, and 2 s to read.
IN_CALL_TIMEOUT = (1.0, 2.0)


# Docs: SaaS类商品接入指南 V1.0(已下线) › 基础接口 (GET, authToken; zh-cn_topic_0070649013)
@bp.get("")
@require_v1_query_token("saas")
def v1_call():
    """Answer a V1 call by its activity."""
    return dispatch(V1_HANDLERS, g.params)


# Docs: SaaS类商品接入指南 V2.0(新商品上架) › 基础接口 (POST, signature; zh-cn_topic_0070649427)
@bp.post("")
@require_v2_signature("saas")
def v2_call():
    """Answer a V2 call by its activity."""
    return dispatch(V2_HANDLERS, g.params)


def answer_instance(result: service.Provisioned, *, encrypt: bool):
    """Answer newInstance: the instanceId, and the appInfo once the instance is ready."""
    instance = result.instance
    if result.app_info is None:
        # V2 wants the id at once and polls queryInstance (spec saas.md, 创建实例); V1 answers
        # synchronously, so "in progress" makes the marketplace call again later.
        code = ResultCode.SUCCESS if instance.protocol == "v2" else ResultCode.IN_PROGRESS
        return marketplace_answer(code, instanceId=instance.instance_id)
    fields = app_info_fields(
        result.app_info,
        key=g.verified_key,
        encrypt=encrypt,
        encrypt_type=current_app.config["KOOGALLERY_ENCRYPT_TYPE"],
    )
    return marketplace_answer(ResultCode.SUCCESS, instanceId=instance.instance_id, **fields)


def answer_query(ids: list[str], *, encrypt: bool):
    """Answer queryInstance for up to 100 ids."""
    result = service.query(ids)
    if result.code != ResultCode.SUCCESS:
        return refuse(result.code, result.reason)
    provisioner = get_provisioner()
    encrypt_type = current_app.config["KOOGALLERY_ENCRYPT_TYPE"]
    info = []
    for instance, app_info in zip(
        result.ready, provisioner.describe_many(result.ready), strict=True
    ):
        fields = app_info_fields(
            app_info, key=g.verified_key, encrypt=encrypt, encrypt_type=encrypt_type
        )
        entry = {"instanceId": instance.instance_id, "appInfo": fields["appInfo"]}
        usages = provisioner.usage(instance)
        if usages:
            entry["usageInfo"] = usage_info(usages)
        info.append(entry)
    extra = {"encryptType": encrypt_type} if encrypt else {}
    return marketplace_answer(ResultCode.SUCCESS, **extra, info=info)


def is_test(data: dict) -> bool:
    """Tell whether a call is a debug call (testFlag=1): handled for real, marked as test data."""
    return data.get("testFlag") == "1"


# ------------------------------------------------------------------------------------------- V1


# Docs: SaaS类商品接入指南 V1.0(已下线) › 新购商品
def v1_new_instance(params: dict):
    """Create (or find) the instance of a V1 purchase."""
    data = schemas.V1NewInstance().load(params)
    purchase = Purchase(
        instance_id=data["businessId"],
        protocol="v1",
        order_id=data["orderId"],
        business_id=data["businessId"],
        product_id=data["productId"],
        sku_code=data.get("skuCode") or None,
        customer_id=data["customerId"],
        customer_name=data.get("customerName") or None,
        user_id=data.get("userId") or None,
        user_name=data.get("userName") or None,
        mobile_phone=decrypt_inbound(data, "mobilePhone"),
        email=decrypt_inbound(data, "email"),
        charging_mode=schemas.CHARGING_MODE_NAMES.get(data.get("chargingMode", "")),
        period_type=data.get("periodType") or None,
        period_number=data.get("periodNumber"),
        expire_time=data.get("expireTime") or None,
        trial=data.get("trialFlag") == "1",
        test=is_test(data),
        order_amount=data.get("orderAmount"),
        spec=linear_spec(data),
        extend_params=data["saasExtendParams"],
    )
    return answer_instance(service.new_instance(purchase), encrypt=True)


def decrypt_inbound(data: dict, name: str) -> str | None:
    """Decrypt a V1 customer phone/e-mail with the bit length chosen at publishing."""
    value = data.get(name)
    if not value:
        return None
    bits = encryption_bits(current_app.config["KOOGALLERY_INBOUND_ENCRYPT_TYPE"])
    try:
        return decrypt_field(g.verified_key, value, bits)
    except SecurityError:
        raise CallRefused(ResultCode.INVALID_PARAMETER, f"undecryptable_{name}") from None


def linear_spec(data: dict) -> dict:
    """Return the linear spec attributes that were sent (quantity, disk GB, bandwidth Mbps)."""
    names = ("amount", "diskSize", "bandWidth", "linearValue")
    return {name: str(data[name]) for name in names if data.get(name) not in (None, "")}


# Docs: SaaS类商品接入指南 V1.0(已下线) › 商品续费
def v1_refresh_instance(params: dict):
    """Renew (or convert from trial) a V1 instance."""
    data = schemas.V1RefreshInstance().load(params)
    renewal = Renewal(
        order_id=data["orderId"],
        expire_time=data["expireTime"],
        product_id=data.get("productId") or None,
        scene="TRIAL_TO_FORMAL" if data.get("trialToFormal") == "1" else "RENEWAL",
        trial_to_formal=data.get("trialToFormal") == "1",
        period_type=data.get("periodType") or None,
        period_number=data.get("periodNumber"),
        test=is_test(data),
    )
    service.renew(data["instanceId"], renewal, "refreshInstance")
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: SaaS类商品接入指南 V1.0(已下线) › 商品过期
def v1_expire_instance(params: dict):
    """Freeze a V1 instance whose purchase expired, keeping its data."""
    data = schemas.V1ExpireInstance().load(params)
    service.set_frozen(data["instanceId"], True, "expireInstance", data["orderId"])
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: SaaS类商品接入指南 V1.0(已下线) › 商品资源释放
def v1_release_instance(params: dict):
    """Release a V1 instance."""
    data = schemas.V1ReleaseInstance().load(params)
    service.release(data["instanceId"], "releaseInstance", data["orderId"])
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: SaaS类商品接入指南 V1.0(已下线) › 商品升级
def v1_upgrade(params: dict):
    """Apply a V1 upgrade order."""
    data = schemas.V1Upgrade().load(params)
    change = Upgrade(
        order_id=data["orderId"],
        product_id=data["productId"],
        sku_code=data["skuCode"],
        spec=linear_spec(data),
        extend_params=data["saasExtendParams"],
        test=is_test(data),
    )
    service.upgrade(data["instanceId"], change, "upgrade")
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: SaaS类商品接入指南 V1.0(已下线) › 资源状态变更 (zh-cn_topic_0070649069)
def v1_instance_status(params: dict):
    """Freeze (FREEZE) or unfreeze (NORMAL) a V1 instance."""
    data = schemas.V1InstanceStatus().load(params)
    frozen = data["instanceStatus"] == "FREEZE"
    service.set_frozen(data["instanceId"], frozen, "instanceStatus")
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: SaaS类商品接入指南 V1.0(已下线) › 查询实例信息
def v1_query_instance(params: dict):
    """Describe up to 100 V1 instances."""
    data = schemas.QueryInstance().load(params)
    return answer_query(schemas.instance_ids(data["instanceId"]), encrypt=True)


V1_HANDLERS = {
    "newInstance": v1_new_instance,
    "refreshInstance": v1_refresh_instance,
    "expireInstance": v1_expire_instance,
    "releaseInstance": v1_release_instance,
    "upgrade": v1_upgrade,
    "instanceStatus": v1_instance_status,
    "queryInstance": v1_query_instance,
}


# ------------------------------------------------------------------------------------------- V2


def encrypt_v2_credentials() -> bool:
    """Tell whether V2 answers encrypt userName/password (KOOGALLERY_ENCRYPT_CREDENTIALS)."""
    return current_app.config["KOOGALLERY_ENCRYPT_CREDENTIALS"]


# Docs: SaaS类商品接入指南 V2.0(新商品上架) › 创建实例 (zh-cn_topic_0070649427)
def v2_new_instance(params: dict):
    """Create (or find) the instance of a V2 order line."""
    data = schemas.V2NewInstance().load(schemas.normalise_nested_new_instance(params))
    line_id = data.get("orderLineId")
    # The marketplace resends in bursts; a resend for a purchase already set up needs nothing
    # from query order, so it skips the round trip to the open API.
    if line_id and service.settled_instance(
        service.purchase_key("v2", data["orderId"], line_id, None)
    ):
        order = OrderLine()
    else:
        order = fetch_order_line(data["orderId"], line_id)
    line, product, buyer = order.line, order.product, order.buyer
    purchase = Purchase(
        instance_id=data["businessId"],
        protocol="v2",
        order_id=data["orderId"],
        order_line_id=data.get("orderLineId"),
        business_id=data["businessId"],
        product_id=data.get("productId") or product.get("productId"),
        sku_code=data.get("skuCode") or product.get("skuCode"),
        customer_id=data.get("customerId") or buyer.get("customerId"),
        customer_name=data.get("customerName") or buyer.get("customerName"),
        user_id=data.get("userId") or buyer.get("userId"),
        user_name=data.get("userName") or buyer.get("userName"),
        mobile_phone=data.get("mobilePhone") or buyer.get("mobilePhone"),
        email=data.get("email") or buyer.get("email"),
        charging_mode=data.get("chargingMode") or line.get("chargingMode"),
        period_type=data.get("periodType") or line.get("periodType"),
        period_number=data.get("periodNumber") or line.get("periodNumber"),
        expire_time=data.get("expireTime") or line.get("expireTime"),
        trial=data.get("trialFlag") == "1" or order.trial,
        test=is_test(data),
        order_amount=data.get("orderAmount"),
        spec=linear_spec({"linearValue": product.get("linearValue"), **data}),
        extend_params=data["extendParams"],
        order_details=order.details,
    )
    return answer_instance(service.new_instance(purchase), encrypt=encrypt_v2_credentials())


@dataclass(frozen=True)
class OrderLine:
    """What query order says about one order line; empty without AK/SK or when it failed."""

    details: dict | None = None  # the whole orderInfo
    line: dict = field(default_factory=dict)
    product: dict = field(default_factory=dict)  # the line's first productInfo
    buyer: dict = field(default_factory=dict)

    @property
    def trial(self) -> bool:
        return (self.details or {}).get("orderType") == "TRIAL"


def fetch_order_line(order_id: str, order_line_id: str | None) -> OrderLine:
    """Ask query order what was bought (V2 calls do not say)."""
    client = MarketplaceClient.from_config(current_app.config, timeout=IN_CALL_TIMEOUT)
    if client is None:
        return OrderLine()
    try:
        order = client.query_order(order_id, order_line_id)
    except MarketplaceError as error:
        # The purchase can still be provisioned from what the call itself carries.
        log.warning("query order %s failed: %s", order_id, error.code or error)
        return OrderLine()
    lines = order.get("orderLine") or [{}]
    line = next((one for one in lines if one.get("orderLineId") == order_line_id), lines[0])
    return OrderLine(
        details=order,
        line=line,
        product=(line.get("productInfo") or [{}])[0],
        buyer=order.get("buyerInfo") or {},
    )


# Docs: SaaS类商品接入指南 V2.0(新商品上架) › 查询实例信息 (zh-cn_topic_0070649428)
def v2_query_instance(params: dict):
    """Describe up to 100 V2 instances."""
    data = schemas.QueryInstance().load(params)
    return answer_query(schemas.instance_ids(data["instanceId"]), encrypt=encrypt_v2_credentials())


# Docs: SaaS类商品接入指南 V2.0(新商品上架) › 更新实例
def v2_refresh_instance(params: dict):
    """Renew, convert from trial, or shorten a V2 instance; scene says which."""
    data = schemas.V2RefreshInstance().load(params)
    renewal = Renewal(
        order_id=data["orderId"],
        order_line_id=data["orderLineId"],
        expire_time=data["expireTime"],
        product_id=data.get("productId") or None,
        scene=data["scene"],
        trial_to_formal=data["scene"] == "TRIAL_TO_FORMAL",
        test=is_test(data),
    )
    service.renew(data["instanceId"], renewal, "refreshInstance")
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: SaaS类商品接入指南 V2.0(新商品上架) › 更新实例状态
def v2_update_instance_status(params: dict):
    """Freeze or unfreeze a V2 instance."""
    data = schemas.V2UpdateInstanceStatus().load(params)
    frozen = data["status"] == "FREEZE"
    service.set_frozen(data["instanceId"], frozen, "updateInstanceStatus")
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: SaaS类商品接入指南 V2.0(新商品上架) › 释放实例
def v2_release_instance(params: dict):
    """Release a V2 instance."""
    data = schemas.V2ReleaseInstance().load(params)
    service.release(
        data["instanceId"],
        "releaseInstance",
        data.get("orderId") or None,
        data.get("orderLineId") or None,
    )
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: SaaS类商品接入指南 V2.0(新商品上架) › 实例升级
def v2_upgrade_instance(params: dict):
    """Apply a V2 upgrade order; the new specification comes from query order."""
    data = schemas.V2UpgradeInstance().load(params)
    order = fetch_order_line(data["orderId"], data["orderLineId"])
    product = order.product
    change = Upgrade(
        order_id=data["orderId"],
        order_line_id=data["orderLineId"],
        product_id=product.get("productId"),
        sku_code=product.get("skuCode"),
        spec=linear_spec({"linearValue": product.get("linearValue")}),
        order_details=order.details,
        test=is_test(data),
    )
    service.upgrade(data["instanceId"], change, "upgradeInstance")
    return marketplace_answer(ResultCode.SUCCESS)


# Docs: SaaS类商品接入指南 V2.0(新商品上架) › 续费变更校验 (international site)
def v2_change_instance_check(params: dict):
    """Tell the marketplace whether a specification change at renewal is acceptable."""
    data = schemas.V2ChangeInstanceCheck().load(params)
    service.check_change(data["instanceId"], data["productInfo"])
    return marketplace_answer(ResultCode.SUCCESS)


V2_HANDLERS = {
    "newInstance": v2_new_instance,
    "queryInstance": v2_query_instance,
    "refreshInstance": v2_refresh_instance,
    "updateInstanceStatus": v2_update_instance_status,
    "releaseInstance": v2_release_instance,
    "upgradeInstance": v2_upgrade_instance,
    "changeInstanceCheck": v2_change_instance_check,
}
