"""A mock of the marketplace's open-API gateway over real HTTPS, for tests and local use.

It checks what the real gateway checks (the AK/SK signature and the X-Sdk-Date skew, security.md
§9), then what the APIs behind it check (the usage push body signature and rules, §8 and
open-api.md), and answers in the documented shapes: query order, usage push, License upload, and
the two 授权码 2.0 APIs the merchant's software calls (activate and heartbeat, for the codes a test
puts in `license_codes`). Start one by hand with `python -m app.marketplace.mock_api`, or together
with the identity domain on one port with `python -m app.marketplace.mock_marketplace`.

Where the documentation is silent, the mock picks:
* gateway refusals are 401 `APIG.0303` with the gateway's own messages ("app not found",
  "signature expired", "verify aksk signature fail"); an unknown path is 404 `APIG.0101`;
* query order: a missing or over-long orderId is HTTP 400 `MKT.0101` (invalid parameter); an
  unknown order or order line is HTTP 500 `MKT.0100` (bad input);
* usage push errors are HTTP 400 with the documented `error_code`;
* License upload errors are HTTP 400 with the documented `error_code`: a body that is not the
  two documented parts, or whose declared sha256 or characters do not match the file, is
  `91381037` (bad format); an event id in `unknown_events` is `91381033` (resource invalid);
* 授权码 2.0 errors are HTTP 400 with the documented `error_code` and the same checks on both
  APIs: a body that is not a JSON object with `license` (1 to 64 characters) and, when sent, a
  `real_effect_time` in `yyyyMMddHHmmss` is `92020002`; an unknown code `92020005`; a code the
  buyer has not received `92020004`;
* a code's `expire_time` is read as UTC; once it has passed the code is EXPIRED. Activating an
  EXPIRED or RELEASED code still answers `92020000`, with that status in `license_code_info`,
  and leaves the decision to the software, as the heartbeat does.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import hmac
import json
import re
import signal
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from werkzeug.wrappers import Request, Response

from app.marketplace.client import (
    LICENSE_UPLOAD_ERRORS,
    LICENSE_UPLOAD_PATH,
    LICENSE_UPLOAD_SUCCESS,
    MAX_ID_LENGTH,
    MAX_USAGE_RECORDS,
    QUERY_ORDER_PATH,
    UPLOAD_TYPE_CHARACTERS,
    UPLOAD_TYPE_FILE,
    USAGE_DATA_PATH,
    check_usage_record,
    parse_usage_time,
)
from app.marketplace.loopback import LoopbackHttpsServer
from app.security import canonical_request, compute_usage_signature, string_to_sign
from app.security.apig import DATE_FORMAT

MOCK_AK = "mock-ak"
MOCK_SK = "mock-sk"
MOCK_USAGE_KEY = "mock-basic-key"

# The gateway rejects an X-Sdk-Date more than 15 minutes from its own clock (security.md §9).
MAX_DATE_SKEW = timedelta(minutes=15)
# Usage older than this is refused with MKT.9004 (open-api.md).
MAX_USAGE_AGE = timedelta(days=21)
MAX_NONCE_LENGTH = 64

AUTHORIZATION_PATTERN = re.compile(
    r"SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-fA-F]+)"
)
APP_AUTH_FAILED = "Incorrect app authentication information"
# The upload path with its one variable segment, matched against the path as sent.
LICENSE_UPLOAD_PATTERN = re.compile(
    re.escape(LICENSE_UPLOAD_PATH).replace(re.escape("{event_id}"), "([^/]+)")
)
LICENSE_RESOURCE_INVALID = "91381033"
LICENSE_BAD_FORMAT = "91381037"

# 授权码 2.0 (open-api.md): the software activates a code once and checks it daily.
LICENSE_ACTIVATE_PATH = "/api/mkp-openapi-public/global/v1/license/activate"
LICENSE_HEARTBEAT_PATH = "/api/mkp-openapi-public/global/v1/license/heartbeat"
LICENSE_CODE_SUCCESS = "92020000"
LICENSE_CODE_INVALID_PARAM = "92020002"
LICENSE_CODE_NOT_RECEIVED = "92020004"
LICENSE_CODE_NOT_FOUND = "92020005"
LICENSE_CODE_ALIVE = "ALIVE"
LICENSE_CODE_EXPIRED = "EXPIRED"
LICENSE_CODE_RELEASED = "RELEASED"
LICENSE_CODE_STATUSES = (LICENSE_CODE_ALIVE, LICENSE_CODE_EXPIRED, LICENSE_CODE_RELEASED)
LICENSE_CODE_TIME_FORMAT = "%Y%m%d%H%M%S"
LICENSE_CODE_TIME_PATTERN = re.compile(r"\d{14}")
# license.md, 授权码 2.0: `license` M 64.
MAX_LICENSE_CODE_LENGTH = 64

# The real mock order's answer, values exact (open-api.md, 查询订单).
MOCKPERIODYEARNEW_ANSWER = """
{"resultCode":"MKT.0000","resultMsg":"Success","orderInfo":{"orderId":"MOCKPERIODYEARNEW",
 "orderType":"NEW","createTime":"20241121090846",
 "orderLine":[{"orderLineId":"MOCKPERIODYEARNEW-000001","chargingMode":"PERIOD","periodType":"year",
   "periodNumber":1,"expireTime":"20251121235959",
   "productInfo":[{"productId":"OFFI846204237451911168",
     "skuCode":"0a4d1578-5295-46a7-92d4-7c803dccc51d","linearValue":50,
     "productName":"MOCK测试商品,测试规格,基础版,包周期"}],
   "extendParams":[{"name":"emailDomainName","value":"test.xxxx.com"},
     {"name":"ip","value":"127.0.0.1"}],"currency":"100","currencyAfterDiscount":"100"}],
 "buyerInfo":{"mobilePhone":"18688888888","email":null,
   "customerId":"459bbbec25d24749b2eb83be37b602a8","customerName":"mock_user_01",
   "customerRealName":"测试用户1","customerType":0,"userId":null,"userName":null},
 "extendParams":[]}}
"""


@dataclass(frozen=True)
class SeenRequest:
    """One request the mock received, kept for assertions."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """Decode the body as JSON."""
        return json.loads(self.body)


class MockOpenApi(LoopbackHttpsServer):
    """Serve the open APIs on 127.0.0.1 over HTTPS with a certificate made at start."""

    name = "mock-open-api"

    def __init__(
        self,
        ak: str = MOCK_AK,
        sk: str = MOCK_SK,
        usage_key: str = MOCK_USAGE_KEY,
        *,
        port: int = 0,
        log_requests: bool = False,
    ):
        super().__init__(port=port, log_requests=log_requests)
        self.ak = ak
        self.sk = sk
        self.usage_key = usage_key
        self.orders: dict[str, dict] = mock_orders()
        # None accepts usage for any instance; a set makes every other instance MKT.9001.
        self.known_instances: set[str] | None = None
        self.usage_records: list[dict] = []
        # Events whose License upload answers 91381033 (License resource invalid).
        self.unknown_events: set[str] = set()
        # Accepted License uploads: event_id, type, file_name, content (bytes), characters.
        self.uploads: list[dict] = []
        # 授权码 2.0 codes by code: product_id, order_id, amount, expire_time, status, received.
        self.license_codes: dict[str, dict] = {}
        # Every answered activation: license, real_effect_time (None when not sent).
        self.activations: list[dict] = []
        self.requests: list[SeenRequest] = []
        self._metering_sns: set[str] = set()
        self._lock = threading.Lock()

    def add_order(self, order_info: dict) -> None:
        """Make query order answer this `orderInfo` for its `orderId`."""
        with self._lock:
            self.orders[order_info["orderId"]] = copy.deepcopy(order_info)

    def add_license_code(
        self,
        code: str,
        *,
        product_id: str,
        order_id: str,
        amount: int = 1,
        expire_time: str | None = None,
        status: str = LICENSE_CODE_ALIVE,
        received: bool = True,
    ) -> dict:
        """Make activate and heartbeat know a 授权码; expire_time defaults to a year from now."""
        if expire_time is None:
            expire_time = (datetime.now(UTC) + timedelta(days=365)).strftime(
                LICENSE_CODE_TIME_FORMAT
            )
        if _license_code_time(expire_time) is None:
            raise ValueError(f"expire_time must be yyyyMMddHHmmss, not {expire_time!r}")
        if status not in LICENSE_CODE_STATUSES:
            raise ValueError(f"status must be one of {', '.join(LICENSE_CODE_STATUSES)}")
        entry = {
            "product_id": product_id,
            "order_id": order_id,
            "amount": amount,
            "expire_time": expire_time,
            "status": status,
            "received": received,
        }
        with self._lock:
            self.license_codes[code] = entry
        return copy.deepcopy(entry)

    def __call__(self, environ: dict, start_response):
        """Answer one WSGI request: record it, route it, authenticate it, handle it."""
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.requests.append(
                SeenRequest(
                    method=request.method,
                    path=request.path,
                    query=request.query_string.decode("latin-1"),
                    headers=dict(request.headers),
                    body=body,
                )
            )
        response = self._respond(request, body)
        return response(environ, start_response)

    def _respond(self, request: Request, body: bytes) -> Response:
        routes = {
            ("GET", QUERY_ORDER_PATH): self._query_order,
            ("POST", USAGE_DATA_PATH): self._usage_data,
            ("POST", LICENSE_ACTIVATE_PATH): self._activate_license_code,
            ("POST", LICENSE_HEARTBEAT_PATH): self._license_code_heartbeat,
        }
        # The gateway resolves the API before it authenticates the caller.
        handler = routes.get((request.method, request.path.rstrip("/")))
        if handler is None and request.method == "POST" and _upload_event_id(request):
            handler = self._upload_license
        if handler is None:
            return _gateway_error(
                404,
                "APIG.0101",
                "The API does not exist or has not been published in the environment.",
            )
        refusal = self._authenticate(request, body)
        if refusal is not None:
            return refusal
        return handler(request, body)

    def _authenticate(self, request: Request, body: bytes) -> Response | None:
        """Check the AK/SK signature as the gateway does; return the refusal, or None."""
        match = AUTHORIZATION_PATTERN.fullmatch(request.headers.get("Authorization", "").strip())
        if match is None:
            return _app_auth_error("authorization header missing or malformed")
        access, signed_header_list, given_signature = match.groups()
        if not hmac.compare_digest(access.encode(), self.ak.encode()):
            return _app_auth_error("app not found")
        signed_names = signed_header_list.split(";")
        if "host" not in signed_names or "x-sdk-date" not in signed_names:
            return _app_auth_error("SignedHeaders must include host and x-sdk-date")

        sdk_date = request.headers.get("X-Sdk-Date", "")
        try:
            signed_at = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return _app_auth_error("x-sdk-date missing or not yyyyMMddTHHmmssZ")
        now = datetime.now(UTC)
        if abs(now - signed_at) > MAX_DATE_SKEW:
            return _app_auth_error(
                f"signature expired, signature time:{sdk_date},"
                f"server time:{now.strftime(DATE_FORMAT)}"
            )

        # Recompute over what arrived: the raw request target (path and query as sent), the
        # values of exactly the headers the caller listed, and the body bytes.
        headers = {}
        for name in signed_names:
            value = request.headers.get(name)
            if value is None:
                return _app_auth_error(f"signed header {name} missing")
            headers[name] = value
        target = request.environ.get("RAW_URI") or request.full_path
        canonical = canonical_request(request.method, target, headers, body)
        expected_signature = hmac.new(
            self.sk.encode("utf-8"),
            string_to_sign(canonical, sdk_date).encode("utf-8"),
            hashlib.sha256,
        ).hexdigest()
        if not hmac.compare_digest(expected_signature, given_signature.lower()):
            return _app_auth_error("verify aksk signature fail")
        return None

    # Docs: 查询订单 (zh-cn_topic_0070649350)
    def _query_order(self, request: Request, body: bytes) -> Response:
        order_id = request.args.get("orderId", "")
        order_line_id = request.args.get("orderLineId")
        if not _valid_id(order_id) or (order_line_id is not None and not _valid_id(order_line_id)):
            return _api_answer(400, resultCode="MKT.0101", resultMsg="Invalid parameter.")
        with self._lock:
            order = copy.deepcopy(self.orders.get(order_id))
        line_ids = {line.get("orderLineId") for line in (order or {}).get("orderLine") or []}
        if order is None or (order_line_id is not None and order_line_id not in line_ids):
            return _api_answer(500, resultCode="MKT.0100", resultMsg="Order not found.")
        return _api_answer(200, resultCode="MKT.0000", resultMsg="Success", orderInfo=order)

    # Docs: 按需使用量推送(新) (zh-cn_topic_0070649410)
    def _usage_data(self, request: Request, body: bytes) -> Response:
        body_text = body.decode("utf-8", errors="replace")
        if not self._usage_signature_valid(request, body_text):
            return _usage_error("MKT.0102", "Invalid body sign.")
        try:
            payload = json.loads(body_text)
        except ValueError:
            return _usage_error("MKT.9002", "Body is not JSON.")
        records = payload.get("usage_records") if isinstance(payload, dict) else None
        if not isinstance(records, list) or not records:
            return _usage_error("MKT.9002", "usage_records must be a non-empty list.")
        if len(records) > MAX_USAGE_RECORDS:
            return _usage_error("MKT.9003", f"More than {MAX_USAGE_RECORDS} records.")
        for index, record in enumerate(records):
            try:
                check_usage_record(record)
            except ValueError as error:
                return _usage_error("MKT.9002", f"Invalid usage entity {index}: {error}")
        oldest_allowed = datetime.now(UTC) - MAX_USAGE_AGE
        if any(parse_usage_time(record["begin_time"]) < oldest_allowed for record in records):
            return _usage_error("MKT.9004", "begin_time is more than 21 days ago.")
        with self._lock:
            if self.known_instances is not None:
                unknown = sorted({r["instance_id"] for r in records} - self.known_instances)
                if unknown:
                    return _usage_error("MKT.9001", f"Instance not found: {', '.join(unknown)}.")
            # metering_sn is the dedupe key: a resend is accepted and not counted twice.
            for record in records:
                if record["metering_sn"] not in self._metering_sns:
                    self._metering_sns.add(record["metering_sn"])
                    self.usage_records.append(record)
        return _api_answer(200, error_code="MKT.0000", error_msg="success")

    # Docs: 字符串/文件流上传 (zh-cn_topic_0070649351)
    def _upload_license(self, request: Request, body: bytes) -> Response:
        event_id = _upload_event_id(request) or ""
        if not _valid_id(event_id):
            return _upload_error(LICENSE_BAD_FORMAT, "eventId must be 1 to 64 characters.")
        if request.mimetype != "multipart/form-data":
            return _upload_error(LICENSE_BAD_FORMAT, "The body must be multipart/form-data.")
        # The form is parsed from the bytes already read (and signature-checked) above.
        file_part = request.files.get("file")
        request_text = request.form.get("isvUpdateFileReq")
        if request_text is None and "isvUpdateFileReq" in request.files:
            request_text = request.files["isvUpdateFileReq"].read().decode("utf-8", "replace")
        if file_part is None or request_text is None:
            return _upload_error(LICENSE_BAD_FORMAT, "Parts file and isvUpdateFileReq required.")
        try:
            upload_request = json.loads(request_text)
        except ValueError:
            return _upload_error(LICENSE_BAD_FORMAT, "isvUpdateFileReq is not JSON.")
        if not isinstance(upload_request, dict):
            return _upload_error(LICENSE_BAD_FORMAT, "isvUpdateFileReq is not a JSON object.")
        upload_type = upload_request.get("type")
        if upload_type not in (UPLOAD_TYPE_FILE, UPLOAD_TYPE_CHARACTERS):
            return _upload_error(LICENSE_BAD_FORMAT, "type must be FILE or CHARACTERS.")
        content = file_part.read()
        declared_sha256 = upload_request.get("sha256")
        actual_sha256 = hashlib.sha256(content).hexdigest()
        if not isinstance(declared_sha256, str) or not hmac.compare_digest(
            declared_sha256.lower().encode(), actual_sha256.encode()
        ):
            return _upload_error(LICENSE_BAD_FORMAT, "sha256 does not match the file.")
        characters = upload_request.get("characters")
        if upload_type == UPLOAD_TYPE_CHARACTERS:
            if not isinstance(characters, str) or characters.encode("utf-8") != content:
                return _upload_error(LICENSE_BAD_FORMAT, "characters do not match the file.")
        else:
            characters = None
        with self._lock:
            if event_id in self.unknown_events:
                return _upload_error(LICENSE_RESOURCE_INVALID, f"No event {event_id}.")
            self.uploads.append(
                {
                    "event_id": event_id,
                    "type": upload_type,
                    "file_name": upload_request.get("file_name") or file_part.filename,
                    "content": content,
                    "characters": characters,
                }
            )
        return _api_answer(200, error_code=LICENSE_UPLOAD_SUCCESS, error_msg="success")

    # Docs: License 授权码 2.0 › activate (zh-cn_topic_0070649244)
    def _activate_license_code(self, request: Request, body: bytes) -> Response:
        checked = self._license_code_request(body)
        if isinstance(checked, Response):
            return checked
        code, real_effect_time, entry = checked
        # A JSON string inside the JSON answer, in the documented key order (open-api.md).
        license_code_info = json.dumps(
            {
                "status": _license_code_status(entry),
                "expire_time": entry["expire_time"],
                "product_id": entry["product_id"],
                "order_id": entry["order_id"],
                "amount": entry["amount"],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        with self._lock:
            self.activations.append({"license": code, "real_effect_time": real_effect_time})
        return _license_code_answer({"license_code_info": license_code_info})

    # Docs: License 授权码 2.0 › query, formerly heartbeat (zh-cn_topic_0070649245)
    def _license_code_heartbeat(self, request: Request, body: bytes) -> Response:
        checked = self._license_code_request(body)
        if isinstance(checked, Response):
            return checked
        _, _, entry = checked
        return _license_code_answer({"status": _license_code_status(entry)})

    def _license_code_request(self, body: bytes) -> tuple[str, str | None, dict] | Response:
        """Read the body both 授权码 APIs take: code, real_effect_time and entry, or a refusal."""
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _license_code_error(LICENSE_CODE_INVALID_PARAM, "The body is not a JSON object.")
        code = payload.get("license")
        if not isinstance(code, str) or not 0 < len(code) <= MAX_LICENSE_CODE_LENGTH:
            return _license_code_error(
                LICENSE_CODE_INVALID_PARAM,
                f"license must be a string of 1 to {MAX_LICENSE_CODE_LENGTH} characters.",
            )
        real_effect_time = payload.get("real_effect_time")
        if real_effect_time is not None and _license_code_time(real_effect_time) is None:
            return _license_code_error(
                LICENSE_CODE_INVALID_PARAM, "real_effect_time must be yyyyMMddHHmmss."
            )
        with self._lock:
            entry = copy.deepcopy(self.license_codes.get(code))
        if entry is None:
            return _license_code_error(LICENSE_CODE_NOT_FOUND, "License code does not exist.")
        if not entry["received"]:
            return _license_code_error(
                LICENSE_CODE_NOT_RECEIVED, "The buyer has not received the license code."
            )
        return code, real_effect_time, entry

    def _usage_signature_valid(self, request: Request, body_text: str) -> bool:
        """Check the `signature`, `ts` and `nonce` headers over the exact body (security.md §8)."""
        given_signature = request.headers.get("signature", "")
        ts = request.headers.get("ts", "")
        nonce = request.headers.get("nonce", "")
        if not (given_signature and ts.isdigit() and 0 < len(nonce) <= MAX_NONCE_LENGTH):
            return False
        expected_signature = compute_usage_signature(self.usage_key, ts, nonce, body_text)
        return hmac.compare_digest(expected_signature.encode(), given_signature.encode())


def mock_orders() -> dict[str, dict]:
    """Return the nine debug orders of open-api.md by orderId, each with line `<id>-000001`."""
    template = json.loads(MOCKPERIODYEARNEW_ANSWER)["orderInfo"]

    def variant(
        order_id: str,
        order_type: str,
        charging_mode: str,
        billing: str,
        *,
        period: tuple[str, int] | None = None,
        expire_time: str | None = None,
        edition: str = "基础版",
        currency: str = "100",
    ) -> dict:
        order = copy.deepcopy(template)
        order.update(orderId=order_id, orderType=order_type)
        line = order["orderLine"][0]
        line.update(
            orderLineId=f"{order_id}-000001",
            chargingMode=charging_mode,
            periodType=period[0] if period else None,
            periodNumber=period[1] if period else None,
            currency=currency,
            currencyAfterDiscount=currency,
        )
        line.pop("expireTime")
        if expire_time:
            line["expireTime"] = expire_time
        product = line["productInfo"][0]
        product["productName"] = f"MOCK测试商品,测试规格,{edition},{billing}"
        if charging_mode == "ON_DEMAND":
            # Usage is metered, not bought in a quantity.
            product["linearValue"] = None
        return order

    orders = [
        template,
        variant("MOCKONETIMENEW", "NEW", "ONE_TIME", "一次性"),
        variant("MOCKONDEMAND", "NEW", "ON_DEMAND", "按需", currency="0"),
        variant(
            "MOCKONDEMANDPKG",
            "NEW",
            "ON_DEMAND_PKG",
            "套餐包",
            period=("month", 1),
            expire_time="20241221235959",
        ),
        variant(
            "MOCKPERIODDAYTRIAL",
            "TRIAL",
            "PERIOD",
            "包周期",
            period=("day", 7),
            expire_time="20241128235959",
            currency="0",
        ),
        variant(
            "MOCKMONTYTRIALTOFORMAL",
            "TRIAL_TO_FORMAL",
            "PERIOD",
            "包周期",
            period=("month", 1),
            expire_time="20241221235959",
        ),
        variant(
            "MOCKMONTYUNSUBSCRIBE",
            "UNSUBSCRIBE",
            "PERIOD",
            "包周期",
            period=("month", 1),
            expire_time="20241221235959",
        ),
        variant(
            "MOCKMONTYRENEW",
            "RENEW",
            "PERIOD",
            "包周期",
            period=("month", 1),
            expire_time="20250121235959",
        ),
        variant(
            "MOCKMONTYCHANGE",
            "CHANGE",
            "PERIOD",
            "包周期",
            period=("month", 1),
            expire_time="20241221235959",
            edition="专业版",
            currency="200",
        ),
    ]
    return {order["orderId"]: order for order in orders}


def _valid_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH


def _api_answer(status: int, **fields: Any) -> Response:
    return Response(
        json.dumps(fields, ensure_ascii=False),
        status=status,
        content_type="application/json;charset=UTF-8",
    )


def _gateway_error(status: int, code: str, message: str) -> Response:
    return _api_answer(status, error_code=code, error_msg=message, request_id=uuid.uuid4().hex)


def _app_auth_error(detail: str) -> Response:
    return _gateway_error(401, "APIG.0303", f"{APP_AUTH_FAILED}: {detail}")


def _usage_error(code: str, message: str) -> Response:
    return _api_answer(400, error_code=code, error_msg=message)


def _upload_error(code: str, detail: str) -> Response:
    return _api_answer(400, error_code=code, error_msg=f"{LICENSE_UPLOAD_ERRORS[code]} {detail}")


def _license_code_answer(data: dict[str, Any]) -> Response:
    return _api_answer(200, error_code=LICENSE_CODE_SUCCESS, error_msg="success", data=data)


def _license_code_error(code: str, message: str) -> Response:
    return _api_answer(400, error_code=code, error_msg=message)


def _license_code_time(value: object) -> datetime | None:
    """Read a `yyyyMMddHHmmss` time as UTC, or return None when it is not one."""
    if not isinstance(value, str) or not LICENSE_CODE_TIME_PATTERN.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, LICENSE_CODE_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _license_code_status(entry: dict) -> str:
    """Return a code's status now: ALIVE turns EXPIRED once its expire_time has passed."""
    if entry["status"] != LICENSE_CODE_ALIVE:
        return entry["status"]
    expires_at = _license_code_time(entry["expire_time"])
    if expires_at is not None and expires_at <= datetime.now(UTC):
        return LICENSE_CODE_EXPIRED
    return LICENSE_CODE_ALIVE


def _upload_event_id(request: Request) -> str | None:
    """Return the decoded event id of a License upload path, or None for any other path."""
    # Matched on the path as sent: the server has already decoded PATH_INFO, and an event id
    # holding an encoded "/" must stay one segment.
    raw_path = urlsplit(request.environ.get("RAW_URI") or request.full_path).path
    match = LICENSE_UPLOAD_PATTERN.fullmatch(raw_path.rstrip("/"))
    return unquote(match.group(1)) if match else None


def main(argv: list[str] | None = None) -> None:
    """Run the mock in the foreground until interrupted, printing how to point the app at it."""
    parser = argparse.ArgumentParser(
        prog="python -m app.marketplace.mock_api",
        description="Run a mock of the KooGallery open-API gateway on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any)")
    arguments = parser.parse_args(argv)
    # Leave through the context manager on `kill` too, so the certificate files are deleted.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    with MockOpenApi(port=arguments.port, log_requests=True) as mock:
        print(f"Mock KooGallery open API at {mock.base_url} (Ctrl+C to stop)\n")
        print("Point the app at it (mock values; the CA file is deleted when the mock stops):")
        print(f"  KOOGALLERY_API_BASE={mock.base_url}")
        print(f"  KOOGALLERY_API_CA_BUNDLE={mock.ca_bundle}")
        print(f"  KOOGALLERY_AK={mock.ak}")
        print(f"  KOOGALLERY_SK={mock.sk}")
        print(f"  KOOGALLERY_BASIC_KEY={mock.usage_key}    # signs usage pushes")
        print(f"\nMock orders: {', '.join(mock.orders)}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
