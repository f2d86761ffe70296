"""Request schemas for the three License generations (spec license.md)."""

import re
from datetime import UTC, datetime

from marshmallow import ValidationError, fields, validate

from app.saas.schemas import (
    PERIOD_TYPES,
    ActivitySchema,
    Amount,
    ExtendParams,
    Id,
    Timestamp,
    Whole,
)

CODE_SCENES = ("RENEWAL", "UNSUBSCRIBE_RENEWAL_PERIOD")
CODE_STATUSES = ("FREEZE", "UNFREEZE")
# effectiveTime: "2023-10-27 10:30:15 z" in the documentation's example; yyyyMMddHHmmss too.
READABLE_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})\s*[zZ]?$")


class UtcTime(fields.String):
    """A UTC time as "yyyy-MM-dd HH:mm:ss z" or yyyyMMddHHmmss[SSS]; loaded as a datetime."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if len(text) > 32:
            raise ValidationError("longer than 32 characters")
        try:
            readable = READABLE_TIME.match(text)
            if readable:
                moment = datetime(*(int(part) for part in readable.groups()))
            elif text.isdigit() and len(text) in (14, 17):
                moment = datetime.strptime(text[:14], "%Y%m%d%H%M%S")
            else:
                raise ValueError(text)
        except ValueError:
            raise ValidationError("must be yyyy-MM-dd HH:mm:ss z or yyyyMMddHHmmss") from None
        return moment.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------- V1


class GetLicense(ActivitySchema):
    customerId = Id(100, required=True)
    customerName = fields.String(validate=validate.Length(max=64))
    businessId = Id(required=True)
    orderId = Id(required=True)
    skuCode = fields.String(validate=validate.Length(max=64))
    productId = Id(required=True)
    expireTime = Timestamp()
    periodType = fields.String(validate=validate.OneOf([*PERIOD_TYPES, ""]))
    periodNumber = Whole()
    amount = fields.String()
    diskSize = fields.String()
    bandWidth = fields.String()
    orderAmount = Amount()
    saasExtendParams = ExtendParams(validate=validate.Length(max=2048), load_default=dict)


class RefreshLicense(ActivitySchema):
    orderId = Id(required=True)
    instanceId = Id(required=True)
    productId = fields.String(validate=validate.Length(max=64))
    expireTime = Timestamp(required=True)
    periodType = fields.String(validate=validate.OneOf([*PERIOD_TYPES, ""]))
    periodNumber = Whole()


class ExpireLicense(ActivitySchema):
    instanceId = Id(required=True)
    # Inferred mandatory (the page could not be read): accepted when absent.
    orderId = fields.String(validate=validate.Length(max=64))


class ReleaseLicense(ActivitySchema):
    orderId = Id(required=True)
    instanceId = Id(required=True)


# ------------------------------------------------------------------------------------- 授权码 2.0


class RefreshLicenseCode(ActivitySchema):
    scene = fields.String(required=True, validate=validate.OneOf(CODE_SCENES))
    orderId = Id(required=True)
    orderLineId = Id(required=True)
    license = Id(required=True)
    productId = fields.String(validate=validate.Length(max=64))
    expireTime = Timestamp(required=True)


class UpdateLicenseCodeStatus(ActivitySchema):
    license = Id(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CODE_STATUSES))


class ReleaseLicenseCode(ActivitySchema):
    license = Id(required=True)
    orderId = fields.String(validate=validate.Length(max=64))
    orderLineId = fields.String(validate=validate.Length(max=64))


# ------------------------------------------------------------------------------------- online


class OnlineNewInstance(ActivitySchema):
    orderId = Id(required=True)
    orderLineId = Id(required=True)
    businessId = Id(required=True)


class GetLicenseAsync(ActivitySchema):
    instanceId = Id(required=True)
    effectiveTime = UtcTime(required=True)
    expireTime = UtcTime()
    eventId = Id(required=True)
    deviceFingerprint = fields.String(validate=validate.Length(min=1, max=1024))
