"""Client of the marketplace's open APIs: query order, usage push, License upload (open-api.md).

Every call is signed with the merchant's AK/SK (`SDK-HMAC-SHA256`, security.md §9) and sent over
HTTPS with certificate verification always on. Every failure, whatever its layer, raises
`MarketplaceError`; records that break the documented rules raise `ValueError` before sending.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote, urlencode, urlsplit

import requests
from urllib3 import encode_multipart_formdata
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.fields import RequestField

from app.security import canonical_usage_body, compute_usage_signature, sign_apig_request
from config import parse_key_ring

log = logging.getLogger(__name__)

CHINA_API_BASE = "https://mkt.myhuaweicloud.com"
# open-api.md: "fall back to https://mkt.myhuaweicloud.cn when it is unreachable".
CHINA_FALLBACK_API_BASE = "https://mkt.myhuaweicloud.cn"
INTERNATIONAL_API_BASE = "https://mkt-intl.myhuaweicloud.com"

QUERY_ORDER_PATH = "/api/mkp-openapi-public/global/v1/order/query"
USAGE_DATA_PATH = "/api/mkp-openapi-public/global/v1/isv/usage-data"
# {event_id} is the eventId of getLicenseAsync, percent-encoded as one path segment.
LICENSE_UPLOAD_PATH = "/api/mkp-openapi-public/global/v1/market-event/{event_id}/file"

# Query order answers MKT.0000; older tables of the same API print CBC.0000 (open-api.md).
QUERY_ORDER_SUCCESS = ("MKT.0000", "CBC.0000")
USAGE_PUSH_SUCCESS = "MKT.0000"
LICENSE_UPLOAD_SUCCESS = "CBC.0000"
# open-api.md, 字符串/文件流上传: the documented failure codes.
LICENSE_UPLOAD_ERRORS = {
    "91381033": "License resource invalid.",
    "91381034": "Application invalid.",
    "91381035": "No remaining amount.",
    "91381036": "Inner error.",
    "91381037": "Bad format.",
    "91381038": "Denied.",
}
UPLOAD_TYPE_FILE = "FILE"
UPLOAD_TYPE_CHARACTERS = "CHARACTERS"
# The name under which a CHARACTERS License travels in the mandatory `file` part.
CHARACTERS_FILE_NAME = "license.txt"

# Connect timeout a little above a multiple of 3 s (the TCP retransmission window), then read.
DEFAULT_TIMEOUT = (3.05, 5)

# Usage push limits (open-api.md, 按需使用量推送).
MAX_USAGE_RECORDS = 1000
MAX_ID_LENGTH = 64
USAGE_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
USAGE_TIME_PATTERN = re.compile(r"\d{8}T\d{6}Z")
USAGE_VALUE_PATTERN = re.compile(r"\d+(\.\d{1,4})?")
REQUIRED_USAGE_FIELDS = (
    "instance_id",
    "record_time",
    "begin_time",
    "end_time",
    "usage_value",
    "metering_sn",
)
USAGE_FIELDS = (*REQUIRED_USAGE_FIELDS, "relate_pkg_instance")


_sessions = threading.local()


def shared_session() -> requests.Session:
    """Return this thread's session, so that calls to the gateway reuse their TLS connection."""
    # Made lazily, so in each gunicorn worker after the fork; one per thread for the job worker.
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session


class MarketplaceError(Exception):
    """An open-API call failed: unreachable, refused by the gateway, or answered with an error."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message


class MarketplaceClient:
    """Call the marketplace's open APIs as one merchant (one AK/SK pair)."""

    def __init__(
        self,
        ak: str,
        sk: str,
        base_url: str = CHINA_API_BASE,
        *,
        usage_key: str | None = None,
        ca_bundle: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        fallback_url: str | None = None,
    ):
        if not ak or not sk:
            raise ValueError("the open API needs both an AK and an SK")
        self._ak = ak
        self._sk = sk
        self._usage_key = usage_key
        self.base_url = base_url.rstrip("/")
        if fallback_url is None and self.base_url == CHINA_API_BASE:
            fallback_url = CHINA_FALLBACK_API_BASE
        self.fallback_url = fallback_url.rstrip("/") if fallback_url else None
        # A private CA (a mock, a TLS-inspecting proxy) replaces the default store; nothing
        # turns verification off.
        self.verify: str | bool = ca_bundle or True
        self.timeout = timeout
        self.session = session or requests.Session()

    @classmethod
    def from_config(
        cls, config: Mapping, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT
    ) -> MarketplaceClient | None:
        """Build a client from the app settings, or return None when AK/SK are not set."""
        ak, sk = config.get("KOOGALLERY_AK"), config.get("KOOGALLERY_SK")
        if not ak or not sk:
            return None
        # The 基础接口 key signs usage pushes (security.md §8); with several configured for
        # rotation, the first one is the current one.
        basic_keys = parse_key_ring(config.get("KOOGALLERY_BASIC_KEY"))
        return cls(
            ak,
            sk,
            config.get("KOOGALLERY_API_BASE") or CHINA_API_BASE,
            usage_key=basic_keys[0] if basic_keys else None,
            ca_bundle=config.get("KOOGALLERY_API_CA_BUNDLE") or None,
            timeout=timeout,
            session=shared_session(),
        )

    # Docs: 查询订单 (zh-cn_topic_0070649350)
    def query_order(self, order_id: str, order_line_id: str | None = None) -> dict:
        """Return the `orderInfo` the marketplace holds for an order."""
        _check_id("orderId", order_id)
        params = {"orderId": order_id}
        if order_line_id is not None:
            _check_id("orderLineId", order_line_id)
            params["orderLineId"] = order_line_id
        answer, status = self._send("GET", QUERY_ORDER_PATH, params=params)
        result_code = answer.get("resultCode")
        if result_code not in QUERY_ORDER_SUCCESS:
            raise _answer_error(answer, status)
        order_info = answer.get("orderInfo")
        if not isinstance(order_info, dict):
            raise MarketplaceError("query order answered success without orderInfo", status=status)
        return order_info

    # Docs: 按需使用量推送(新) (zh-cn_topic_0070649410)
    def push_usage(self, records: list[dict]) -> dict:
        """Send usage records (all or nothing) and return the marketplace's answer."""
        if not self._usage_key:
            raise ValueError("usage push needs the 基础接口 key (KOOGALLERY_BASIC_KEY)")
        validate_usage_records(records)
        # Serialised once: these exact bytes are signed (§8), hashed by the AK/SK signature
        # (§9) and sent.
        body = canonical_usage_body({"usage_records": records})
        ts = str(time.time_ns() // 1_000_000)
        nonce = str(uuid.uuid4())
        headers = {
            "signature": compute_usage_signature(self._usage_key, ts, nonce, body),
            "ts": ts,
            "nonce": nonce,
        }
        answer, status = self._send(
            "POST", USAGE_DATA_PATH, body=body.encode("utf-8"), extra_headers=headers
        )
        if answer.get("error_code") != USAGE_PUSH_SUCCESS:
            raise _answer_error(answer, status)
        log.info("usage push accepted: %d record(s)", len(records))
        return answer

    # Docs: 字符串/文件流上传 (zh-cn_topic_0070649351)
    def upload_license(
        self,
        event_id: str,
        *,
        characters: str | None = None,
        file_name: str | None = None,
        content: bytes | None = None,
    ) -> dict:
        """Deliver the License of an asynchronous getLicenseAsync event, as text or as a file."""
        _check_id("event_id", event_id)
        upload_type, file_name, content = _license_upload(characters, file_name, content)
        body, content_type = license_upload_body(
            upload_type, file_name, content, characters=characters
        )
        path = LICENSE_UPLOAD_PATH.format(event_id=quote(event_id, safe=""))
        # The multipart body is encoded once: these exact bytes are hashed by the AK/SK
        # signature (§9) and sent, and its boundary is in the signed Content-Type.
        answer, status = self._send("POST", path, body=body, content_type=content_type)
        if answer.get("error_code") != LICENSE_UPLOAD_SUCCESS:
            raise _answer_error(answer, status)
        log.info(
            "License uploaded for event %s (%s, %d bytes)", event_id, upload_type, len(content)
        )
        return answer

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes = b"",
        extra_headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[dict, int]:
        """Sign and send one call, falling back to the second host only when the first is down."""
        headers = {"Content-Type": content_type, **(extra_headers or {})}
        try:
            response = self._send_to(self.base_url, method, path, params, body, headers)
        except requests.RequestException as error:
            if self.fallback_url is None or not _is_unreachable(error):
                raise _transport_error(self.base_url, error) from error
            # Only a connection that never opened is retried: an HTTP answer, even an error,
            # means the primary host is up, and a TLS failure must not be papered over.
            log.warning(
                "open API host %s unreachable (%s), retrying at %s",
                _host(self.base_url),
                type(error).__name__,
                _host(self.fallback_url),
            )
            try:
                response = self._send_to(self.fallback_url, method, path, params, body, headers)
            except requests.RequestException as fallback_error:
                raise _transport_error(self.fallback_url, fallback_error) from fallback_error
        return _json_answer(method, path, response), response.status_code

    def _send_to(
        self,
        base_url: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes,
        headers: Mapping[str, str],
    ) -> requests.Response:
        """Sign the call for this host (Host is a signed header) and send it."""
        url = base_url + path
        if params:
            # quote, not urlencode's default quote_plus: a "+" for a space would be read back
            # as a literal "+" by the canonical query (§9) and the signature would not match.
            url += "?" + urlencode(params, quote_via=quote, safe="")
        signed = sign_apig_request(method, url, headers, body, self._ak, self._sk)
        return self.session.request(
            method,
            url,
            data=body or None,
            headers=signed,
            timeout=self.timeout,
            verify=self.verify,
            # A redirect would carry the signed headers to a host that never asked for them.
            allow_redirects=False,
        )


def license_upload_body(
    upload_type: str, file_name: str, content: bytes, *, characters: str | None = None
) -> tuple[bytes, str]:
    """Encode the `file` and `isvUpdateFileReq` parts; return the body and its Content-Type."""
    request = {
        "type": upload_type,
        "file_name": file_name,
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    if upload_type == UPLOAD_TYPE_CHARACTERS:
        request["characters"] = characters
    file_part = RequestField("file", content, filename=file_name)
    file_part.make_multipart(content_type="application/octet-stream")
    request_part = RequestField(
        "isvUpdateFileReq", json.dumps(request, ensure_ascii=False).encode("utf-8")
    )
    request_part.make_multipart(content_type="application/json")
    return encode_multipart_formdata([file_part, request_part])


def _license_upload(
    characters: str | None, file_name: str | None, content: bytes | None
) -> tuple[str, str, bytes]:
    """Check that exactly one form was given; return the upload type, file name and bytes."""
    as_file = file_name is not None or content is not None
    if (characters is None) == (not as_file):
        raise ValueError("upload_license takes either characters or file_name and content")
    if characters is not None:
        if not isinstance(characters, str) or not characters:
            raise ValueError("characters must be a non-empty string")
        # The spec makes the `file` part mandatory even for CHARACTERS, so the text travels
        # twice: in the JSON part and, UTF-8 encoded, as a file whose sha256 is declared.
        return UPLOAD_TYPE_CHARACTERS, CHARACTERS_FILE_NAME, characters.encode("utf-8")
    if not isinstance(file_name, str) or not file_name:
        raise ValueError("a file upload needs a non-empty file_name")
    if not isinstance(content, bytes):
        raise ValueError("a file upload needs its content as bytes")
    return UPLOAD_TYPE_FILE, file_name, content


def validate_usage_records(records: list[dict]) -> None:
    """Raise ValueError unless the batch obeys the usage push rules (open-api.md)."""
    if not isinstance(records, list) or not records:
        raise ValueError("usage push needs a non-empty list of records")
    if len(records) > MAX_USAGE_RECORDS:
        raise ValueError(f"usage push takes at most {MAX_USAGE_RECORDS} records per call")
    seen_serial_numbers: set[str] = set()
    for index, record in enumerate(records):
        try:
            check_usage_record(record)
        except ValueError as error:
            raise ValueError(f"usage record {index}: {error}") from None
        serial_number = record["metering_sn"]
        # metering_sn is the marketplace's dedupe key: a repeat in one batch would be dropped.
        if serial_number in seen_serial_numbers:
            raise ValueError(f"usage record {index}: metering_sn {serial_number!r} repeated")
        seen_serial_numbers.add(serial_number)


def check_usage_record(record: Mapping) -> None:
    """Raise ValueError unless one usage record has the documented fields and formats."""
    if not isinstance(record, Mapping):
        raise ValueError("a record must be a JSON object")
    unknown = sorted(set(record) - set(USAGE_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    missing = [name for name in REQUIRED_USAGE_FIELDS if record.get(name) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    for name in ("instance_id", "metering_sn", "relate_pkg_instance"):
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
            raise ValueError(f"{name} must be a string of 1 to {MAX_ID_LENGTH} characters")
    times = {name: _usage_time(record, name) for name in ("record_time", "begin_time", "end_time")}
    if times["begin_time"] > times["end_time"]:
        raise ValueError("begin_time is after end_time")
    _check_usage_value(record["usage_value"])


def usage_record(
    instance_id: str,
    usage_value: str | int | Decimal,
    begin: datetime | str,
    end: datetime | str,
    *,
    metering_sn: str | None = None,
    record_time: datetime | str | None = None,
    relate_pkg_instance: str | None = None,
) -> dict:
    """Build one usage record: times in UTC `yyyyMMdd'T'HHmmss'Z'`, a fresh metering_sn if none."""
    if isinstance(usage_value, bool) or not isinstance(usage_value, str | int | Decimal):
        # A float such as 0.1 + 0.2 would be sent as 0.30000000000000004: pass a string.
        raise ValueError("usage_value must be a string, an int or a Decimal")
    record = {
        "instance_id": instance_id,
        "record_time": format_usage_time(record_time or datetime.now(UTC)),
        "begin_time": format_usage_time(begin),
        "end_time": format_usage_time(end),
        "usage_value": _usage_value_text(usage_value),
        # A fresh serial number makes the record a new one; keep it to resend the same record.
        "metering_sn": metering_sn or str(uuid.uuid4()),
    }
    if relate_pkg_instance:
        record["relate_pkg_instance"] = relate_pkg_instance
    return record


def format_usage_time(moment: datetime | str) -> str:
    """Format an aware datetime in UTC as `yyyyMMdd'T'HHmmss'Z'`; pass a string through."""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        # Guessing the zone of a naive datetime would shift usage by hours without a trace.
        raise ValueError("usage times must be timezone-aware datetimes")
    return moment.astimezone(UTC).strftime(USAGE_TIME_FORMAT)


def _usage_value_text(value: str | int | Decimal) -> str:
    """Write a usage value as plain decimal text (no exponent, as the marketplace expects)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def parse_usage_time(text: str) -> datetime:
    """Read a `yyyyMMdd'T'HHmmss'Z'` time as an aware UTC datetime."""
    if not isinstance(text, str) or not USAGE_TIME_PATTERN.fullmatch(text):
        raise ValueError(f"{text!r} is not yyyyMMddTHHmmssZ")
    return datetime.strptime(text, USAGE_TIME_FORMAT).replace(tzinfo=UTC)


def _usage_time(record: Mapping, name: str) -> datetime:
    try:
        return parse_usage_time(record[name])
    except ValueError:
        raise ValueError(f"{name} must be UTC yyyyMMddTHHmmssZ, not {record[name]!r}") from None


def _check_usage_value(value: object) -> None:
    """Require a decimal string greater than zero with at most four decimals."""
    if not isinstance(value, str) or not USAGE_VALUE_PATTERN.fullmatch(value):
        raise ValueError(f"usage_value must be a decimal string with ≤ 4 decimals, not {value!r}")
    if Decimal(value) <= 0:
        raise ValueError(f"usage_value must be greater than 0, not {value!r}")


def _check_id(name: str, value: str) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{name} must be a string of 1 to {MAX_ID_LENGTH} characters")


def _is_unreachable(error: requests.RequestException) -> bool:
    """Tell whether the connection itself failed: DNS, refused, unroutable or connect timeout."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.SSLError):
        return False
    cause = error.args[0] if error.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError)


def _transport_error(base_url: str, error: requests.RequestException) -> MarketplaceError:
    kind = {
        requests.exceptions.SSLError: "TLS verification failed",
        requests.ConnectTimeout: "connection timed out",
        requests.ReadTimeout: "no answer in time",
    }.get(type(error), "connection failed")
    # The exception text holds the URL and the cause, never the signed headers.
    return MarketplaceError(f"{kind} calling {_host(base_url)}: {error}")


def _json_answer(method: str, path: str, response: requests.Response) -> dict:
    """Decode the answer; a non-JSON or non-object body is a failure whatever the status."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise MarketplaceError(
            f"{method} {path} answered HTTP {response.status_code} without a JSON object",
            status=response.status_code,
        )
    if "error_code" in answer and str(answer["error_code"]).startswith("APIG."):
        # The gateway (not the API behind it) refused the call: signature, date, unknown API.
        raise _answer_error(answer, response.status_code)
    return answer


def _answer_error(answer: dict, status: int) -> MarketplaceError:
    """Turn an error answer into an exception; the gateway and usage push say `error_code`."""
    code = answer.get("error_code") or answer.get("resultCode")
    message = answer.get("error_msg") or answer.get("resultMsg") or "no message"
    log.warning("open API answered %s (HTTP %s)", code, status)
    return MarketplaceError(str(message), code=str(code) if code else None, status=status)


def _host(base_url: str) -> str:
    return urlsplit(base_url).netloc
