"""Result codes, and the one place that serialises, signs and sends a marketplace answer."""

import json
from enum import StrEnum

from flask import Response, g

from app.calllog import current_call
from app.security import body_sign_header


class ResultCode(StrEnum):
    """The `resultCode` values of the marketplace protocol (spec README, "Result codes")."""

    SUCCESS = "000000"
    AUTH_FAILED = "000001"
    INVALID_PARAMETER = "000002"
    INSTANCE_NOT_FOUND = "000003"
    IN_PROGRESS = "000004"
    INTERNAL_ERROR = "000005"
    NO_CAPACITY = "000100"
    # Joint-operation (联营) new-purchase refusals.
    PHONE_EMPTY_OR_DUPLICATE = "000101"
    EMAIL_EMPTY_OR_DUPLICATE = "000102"
    ALREADY_PURCHASED = "000103"
    JOINT_INTERNAL_ERROR = "000104"
    BENEFIT_ALREADY_GRANTED = "000105"
    SOLD_OUT = "000106"
    EMAIL_DOMAIN_DUPLICATE = "000107"
    # Online-activation License, getLicenseAsync.
    LICENSE_QUOTA_EXHAUSTED = "000900"
    LICENSE_OUTSIDE_ORDER_VALIDITY = "000901"
    LICENSE_EXPIRE_TIME_REQUIRED = "000902"
    LICENSE_FINGERPRINT_REQUIRED = "000903"


DEFAULT_MESSAGES = {
    ResultCode.SUCCESS: "success.",
    ResultCode.AUTH_FAILED: "authentication failed.",
    ResultCode.INVALID_PARAMETER: "request parameter invalid.",
    ResultCode.INSTANCE_NOT_FOUND: "instance does not exist.",
    ResultCode.IN_PROGRESS: "request is being processed.",
    ResultCode.INTERNAL_ERROR: "internal error.",
    ResultCode.NO_CAPACITY: "no instance resource available.",
    ResultCode.PHONE_EMPTY_OR_DUPLICATE: "mobile phone is empty or already used.",
    ResultCode.EMAIL_EMPTY_OR_DUPLICATE: "email is empty or already used.",
    ResultCode.ALREADY_PURCHASED: "the product cannot be purchased twice.",
    ResultCode.JOINT_INTERNAL_ERROR: "internal error.",
    ResultCode.BENEFIT_ALREADY_GRANTED: "the account already has this benefit.",
    ResultCode.SOLD_OUT: "sold out.",
    ResultCode.EMAIL_DOMAIN_DUPLICATE: "email domain already used.",
    ResultCode.LICENSE_QUOTA_EXHAUSTED: "license quota exhausted.",
    ResultCode.LICENSE_OUTSIDE_ORDER_VALIDITY: "outside the order's validity.",
    ResultCode.LICENSE_EXPIRE_TIME_REQUIRED: "a periodic license needs expireTime.",
    ResultCode.LICENSE_FINGERPRINT_REQUIRED: "device fingerprint required.",
}

# resultMsg is String(255) in every interface table.
MAX_MESSAGE_LENGTH = 255


def serialise_answer(fields: dict) -> bytes:
    """Serialise an answer exactly once; these bytes are what Body-Sign covers."""
    # ensure_ascii: the Body-Sign page asks for non-ASCII as \uXXXX, and compact separators keep
    # the bytes identical to Huawei's examples (security.md §3, vectors B1/B2).
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def marketplace_answer(
    code: ResultCode, message: str | None = None, *, reason: str | None = None, **fields
) -> Response:
    """Build, sign and return a marketplace answer with HTTP 200."""
    text = message or DEFAULT_MESSAGES[code]
    if reason and not message:
        text = f"{text[:-1]}: {reason}."
    answer = {"resultCode": str(code), "resultMsg": text[:MAX_MESSAGE_LENGTH], **fields}
    body = serialise_answer(answer)

    response = Response(body, status=200, content_type="application/json;charset=UTF-8")
    # The key that verified the request signs the answer; a rejected request is answered with the
    # first key of the family's ring so that the seller console can still read a signed answer.
    key = g.get("answer_key")
    if key:
        response.headers["Body-Sign"] = body_sign_header(key, body)

    call = current_call()
    if call is not None:
        call.result_code = str(code)
        call.answer = answer
        if reason and call.reason is None:
            call.reason = reason
    return response
