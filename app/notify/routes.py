"""POST /notify: orderNotify, signed like a V2 call with the key bound to 通用接口."""

from flask import Blueprint, g
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from app.auth import require_v2_signature
from app.dispatch import refuse_invalid
from app.jobs import add_job, dispatch
from app.notify import service
from app.results import ResultCode, marketplace_answer
from app.saas.schemas import Flag

bp = Blueprint("notify", __name__, url_prefix="/notify")


class OrderNotify(Schema):
    class Meta:
        unknown = EXCLUDE

    activity = fields.String(required=True, validate=validate.Equal("orderNotify"))
    orderId = fields.String(required=True, validate=validate.Length(min=1, max=64))
    orderLineId = fields.String(required=True, validate=validate.Length(min=1, max=64))
    testFlag = Flag(required=True)


# Docs: 商品交易相关接口 › 订单通知 (zh-cn_topic_0000002091799149)
@bp.post("")
@require_v2_signature("notify", key_setting="KOOGALLERY_GENERAL_KEY")
def order_notify():
    """Acknowledge an order notification once it is stored, then fetch the order's details."""
    try:
        data = OrderNotify().load(g.params)
    except ValidationError as error:
        return refuse_invalid(error)
    notification = service.record_notification(
        data["orderId"], data["orderLineId"], data["testFlag"] == "1"
    )
    if service.needs_details(notification):
        # A job: query order may take seconds, the marketplace allows five for the answer.
        dispatch(add_job("fetch_order", None, {"notification_id": notification.id}))
    return marketplace_answer(ResultCode.SUCCESS)
