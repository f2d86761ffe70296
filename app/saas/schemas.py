"""Request schemas for every SaaS activity, V1 and V2 (spec saas.md).

Unknown fields are ignored rather than refused: the marketplace adds fields over time (debug calls
already carry an undocumented `provisionType`), and refusing them would fail real purchases.
Lengths are enforced where every documentation page agrees.
"""

import base64
import binascii
import json
import re
from datetime import datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

TIMESTAMP_14 = re.compile(r"^\d{14}(\d{3})?$")
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")

# V1 chargingMode codes, and the names query order and the nested V2 body use for them.
CHARGING_MODE_NAMES = {"0": "ON_DEMAND", "1": "PERIOD", "3": "ONE_TIME", "5": "ON_DEMAND_PKG"}
V2_CHARGING_MODES = ("ON_DEMAND", "ONE_TIME", "PERIOD", "ON_DEMAND_PKG")
PERIOD_TYPES = ("year", "month", "day", "hour")
V1_STATUSES = ("FREEZE", "NORMAL")
V2_STATUSES = ("FREEZE", "UNFREEZE")
# RENEWAL_CHANGE appears on one page only; accepted so that such calls are not refused.
REFRESH_SCENES = ("TRIAL_TO_FORMAL", "RENEWAL", "UNSUBSCRIBE_RENEWAL_PERIOD", "RENEWAL_CHANGE")
MAX_QUERY_IDS = 100


def Id(max_length: int = 64, **kwargs) -> fields.String:
    """Return a non-blank identifier field of at most `max_length` characters."""
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


class Flag(fields.Field):
    """testFlag / trialFlag: "1", "0", 1, 0 or blank; pages disagree on Integer vs String."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value in ("", None):
            return None
        if isinstance(value, bool) or str(value) not in ("0", "1"):
            raise ValidationError("must be 0 or 1")
        return str(value)


class Timestamp(fields.String):
    """yyyyMMddHHmmss (a 17-digit form with milliseconds is accepted too)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            if not TIMESTAMP_14.match(text):
                raise ValueError(text)
            datetime.strptime(text[:14], "%Y%m%d%H%M%S")
        except ValueError:
            raise ValidationError("must be yyyyMMddHHmmss") from None
        return text


class Whole(fields.String):
    """A whole number sent as text (periodNumber); a number is accepted in nested V2 bodies."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.isdigit():
            raise ValidationError("must be a whole number")
        return int(text)


class Amount(fields.String):
    """A decimal sent as text (orderAmount); a number is accepted in nested V2 bodies."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        text = super()._deserialize(value, attr, data, **kwargs)
        if not DECIMAL.match(text):
            raise ValidationError("must be a decimal number")
        return text


class ExtendParams(fields.String):
    """V1 saasExtendParams: Base64 of a JSON array of {"name", "value"} → {name: value}."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text:
            return {}
        try:
            # A raw "+" in the query may have become a space on the way (security.md §1).
            decoded = json.loads(base64.b64decode(text.replace(" ", "+"), validate=True))
            return name_value_pairs(decoded)
        except (binascii.Error, ValueError, TypeError):
            raise ValidationError("must be Base64 of a JSON array of name/value pairs") from None


def name_value_pairs(items) -> dict[str, str]:
    """Turn [{"name": n, "value": v}, …] into {n: v}, refusing anything else."""
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and isinstance(item.get("name"), str) for item in items
    ):
        raise TypeError("not a list of name/value pairs")
    return {item["name"]: "" if item.get("value") is None else str(item["value"]) for item in items}


class ActivitySchema(Schema):
    """Fields every activity shares."""

    class Meta:
        unknown = EXCLUDE

    activity = fields.String(required=True)
    testFlag = Flag(load_default=None)


# ------------------------------------------------------------------------------------------- V1


class V1NewInstance(ActivitySchema):
    customerId = Id(100, required=True)
    customerName = fields.String(validate=validate.Length(max=64))
    userId = fields.String(validate=validate.Length(max=64))
    userName = fields.String(validate=validate.Length(max=64))
    mobilePhone = fields.String()
    email = fields.String()
    businessId = Id(required=True)
    orderId = Id(required=True)
    skuCode = fields.String(validate=validate.Length(max=64))
    productId = Id(required=True)
    trialFlag = Flag(load_default=None)
    expireTime = Timestamp()
    chargingMode = fields.String(validate=validate.OneOf([*CHARGING_MODE_NAMES, ""]))
    periodType = fields.String(validate=validate.OneOf([*PERIOD_TYPES, ""]))
    periodNumber = Whole()
    # Length 7 on some pages, 4 on older ones: not enforced.
    amount = fields.String()
    diskSize = fields.String()
    bandWidth = fields.String()
    orderAmount = Amount()
    saasExtendParams = ExtendParams(validate=validate.Length(max=2048), load_default=dict)


class V1RefreshInstance(ActivitySchema):
    orderId = Id(required=True)
    instanceId = Id(required=True)
    productId = fields.String(validate=validate.Length(max=64))
    expireTime = Timestamp(required=True)
    trialToFormal = Flag(load_default=None)
    periodType = fields.String(validate=validate.OneOf([*PERIOD_TYPES, ""]))
    periodNumber = Whole()
    orderAmount = Amount()


class V1ExpireInstance(ActivitySchema):
    instanceId = Id(required=True)
    orderId = Id(required=True)


class V1ReleaseInstance(ActivitySchema):
    instanceId = Id(required=True)
    orderId = Id(required=True)
    orderAmount = Amount()


class V1Upgrade(ActivitySchema):
    instanceId = Id(required=True)
    orderId = Id(required=True)
    skuCode = Id(required=True)
    productId = Id(required=True)
    amount = fields.String()
    diskSize = fields.String()
    bandWidth = fields.String()
    saasExtendParams = ExtendParams(validate=validate.Length(max=2048), load_default=dict)


class V1InstanceStatus(ActivitySchema):
    instanceId = Id(required=True)
    instanceStatus = fields.String(required=True, validate=validate.OneOf(V1_STATUSES))


class QueryInstance(ActivitySchema):
    # Comma-separated, at most 100 ids; the documented length (100) cannot hold 100 ids, so the
    # count and each id's length are checked instead.
    instanceId = fields.String(required=True)

    @validates_schema
    def check_ids(self, data, **kwargs):
        ids = instance_ids(data["instanceId"])
        if not ids:
            raise ValidationError("no instance id", "instanceId")
        if len(ids) > MAX_QUERY_IDS:
            raise ValidationError(f"more than {MAX_QUERY_IDS} ids", "instanceId")
        if any(len(one) > 64 for one in ids):
            raise ValidationError("an id is longer than 64 characters", "instanceId")


def instance_ids(text: str) -> list[str]:
    """Split a comma-separated instanceId list, dropping blanks and repeats, keeping order."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


# ------------------------------------------------------------------------------------------- V2


class V2NewInstance(ActivitySchema):
    """The lean documented body, or the nested one after normalise_nested_new_instance()."""

    orderId = Id(required=True)
    orderLineId = Id()
    businessId = Id(required=True)
    # From the nested buyerInfo/orderInfo shape only.
    customerId = fields.String(validate=validate.Length(max=100))
    customerName = fields.String()
    userId = fields.String()
    userName = fields.String()
    mobilePhone = fields.String()
    email = fields.String()
    productId = fields.String(validate=validate.Length(max=64))
    skuCode = fields.String(validate=validate.Length(max=64))
    linearValue = fields.String()
    trialFlag = Flag(load_default=None)
    chargingMode = fields.String(validate=validate.OneOf(V2_CHARGING_MODES))
    periodType = fields.String(validate=validate.OneOf(PERIOD_TYPES))
    periodNumber = Whole()
    expireTime = Timestamp()
    orderAmount = Amount()
    extendParams = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)

    @validates_schema
    def check_idempotency_key(self, data, **kwargs):
        # The lean body's key is (orderId, orderLineId); the nested one has no order line, so it
        # is keyed like V1 and on-demand orders, by (orderId, productId).
        if not data.get("orderLineId") and not data.get("productId"):
            raise ValidationError("missing data for required field", "orderLineId")


def normalise_nested_new_instance(body: dict) -> dict:
    """Flatten the nested buyerInfo/orderInfo newInstance body into the lean field names."""
    if "orderInfo" not in body and "buyerInfo" not in body:
        return body
    order_info = body.get("orderInfo") or {}
    order = order_info[0] if isinstance(order_info, list) and order_info else order_info
    buyer = body.get("buyerInfo") or {}
    if not isinstance(order, dict) or not isinstance(buyer, dict):
        raise ValidationError("orderInfo and buyerInfo must be objects", "orderInfo")
    products = order.get("productInfo") or [{}]
    product = products[0] if isinstance(products, list) and products else {}
    if not isinstance(product, dict):
        raise ValidationError("productInfo must hold objects", "productInfo")
    flat = {
        "activity": body.get("activity"),
        "testFlag": body.get("testFlag"),
        "orderId": body.get("orderId") or order.get("orderId"),
        "orderLineId": body.get("orderLineId") or order.get("orderLineId"),
        "businessId": body.get("businessId") or order.get("businessId"),
        **{name: buyer.get(name) for name in V2_BUYER_FIELDS},
        **{name: order.get(name) for name in V2_ORDER_FIELDS},
        "productId": product.get("productId"),
        "skuCode": product.get("skuCode"),
        "linearValue": None if product.get("linearValue") is None else str(product["linearValue"]),
    }
    try:
        flat["extendParams"] = name_value_pairs(order.get("extendParams") or [])
    except TypeError:
        raise ValidationError("must be a list of name/value pairs", "extendParams") from None
    return {name: value for name, value in flat.items() if value is not None}


V2_BUYER_FIELDS = ("customerId", "customerName", "userId", "userName", "mobilePhone", "email")
V2_ORDER_FIELDS = (
    "trialFlag",
    "chargingMode",
    "periodType",
    "periodNumber",
    "expireTime",
    "orderAmount",
)


class V2RefreshInstance(ActivitySchema):
    scene = fields.String(required=True, validate=validate.OneOf(REFRESH_SCENES))
    orderId = Id(required=True)
    orderLineId = Id(required=True)
    instanceId = Id(required=True)
    productId = fields.String(validate=validate.Length(max=64))
    expireTime = Timestamp(required=True)


class V2UpdateInstanceStatus(ActivitySchema):
    instanceId = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(V2_STATUSES))


class V2ReleaseInstance(ActivitySchema):
    instanceId = Id(required=True)
    orderId = fields.String(validate=validate.Length(max=64))
    orderLineId = fields.String(validate=validate.Length(max=64))


class V2UpgradeInstance(ActivitySchema):
    instanceId = Id(required=True)
    orderId = Id(required=True)
    orderLineId = Id(required=True)


class V2ChangeInstanceCheck(ActivitySchema):
    instanceId = Id(required=True)
    productInfo = fields.Raw(required=True)

    @validates_schema
    def check_product_info(self, data, **kwargs):
        if not isinstance(data["productInfo"], dict | list):
            raise ValidationError("must be an object", "productInfo")
