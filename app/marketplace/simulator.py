"""The marketplace's side of a production-interface call: build, sign, send, and judge the answer.

A call is built exactly as KooGallery builds it (spec security.md, saas.md, license.md,
kit-oauth.md) and the answer is judged by every check the seller console's debugger makes, with
the console's own messages (spec debug-tool.md).
"""

from __future__ import annotations

import json
import secrets
import shlex
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import requests

from app.security import (
    SecurityError,
    canonical_payload,
    compute_body_signature,
    compute_kit_signature,
    compute_v1_token,
    compute_v2_signature,
    decrypt_field,
    encryption_bits,
    kit_v1_string_to_sign,
    parse_body_sign_header,
    v1_string_to_sign,
)

PROTOCOLS = ("v1", "v2", "kit-v1", "kit-v2", "license-v1", "license", "notify")
# License 授权码 2.0 activities are signed with the License key, online activation with the basic
# key (spec license.md §2, §3).
LICENSE_CODE_ACTIVITIES = ("refreshLicenseCode", "updateLicenseCodeStatus", "releaseLicenseCode")
BUDGET_SECONDS = 5.0
BEIJING = timedelta(hours=8)

# The seller console's messages (spec debug-tool.md).
PARSE_FAILED = "Parse response body failed"
ERROR_RESULT_CODE = "Call interface failed. The production interface returns an error result code"
MISSING_FIELD = "接口响应中不包含{field}"
BAD_LENGTH = "{field}长度不合法"
NO_BODY_SIGN = "http header->bodySign is empty"
BAD_SIGN_TYPE = "http header->sign_type is not equals HMAC-SHA256 or signature is empty"
WRONG_SIGNATURE = "响应Http Body签名校验失败,预期的签名值:{expected}"
TIMEOUT = "timeout"

LENGTH_LIMITS = {
    "resultMsg": 255,
    "instanceId": 64,
    "frontEndUrl": 512,
    "adminUrl": 512,
    "userName": 128,
    "password": 128,
    "memo": 1024,
}


@dataclass
class Call:
    """One signed request, ready to send (or to print as curl)."""

    protocol: str
    activity: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    fields: dict
    key: str

    def curl(self) -> str:
        """Return the equivalent curl command line."""
        parts = ["curl", "-sS", "-i", "-X", self.method, shlex.quote(self.url)]
        for name, value in self.headers.items():
            parts += ["-H", shlex.quote(f"{name}: {value}")]
        if self.body:
            parts += ["--data-binary", shlex.quote(self.body.decode("utf-8"))]
        return " ".join(parts)


@dataclass
class Answer:
    """What came back: status, headers with their names as sent, body, and time taken."""

    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float
    error: str | None = None

    def json(self) -> dict | None:
        """Return the body as a JSON object, or None."""
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


@dataclass
class Check:
    """One verdict, worded as the seller console words it."""

    name: str
    passed: bool
    message: str = ""


@dataclass
class Verdict:
    """All checks of one answer, and the credentials found in it."""

    checks: list[Check] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


class Keys:
    """The keys the marketplace would sign with, read from the app's settings."""

    def __init__(self, config):
        self.config = config

    def first(self, setting: str) -> str:
        value = self.config.get(setting) or ()
        keys = value.split(",") if isinstance(value, str) else value
        if not keys or not keys[0].strip():
            raise ValueError(f"{setting} is not configured: there is no key to sign with")
        return keys[0].strip()

    def for_call(self, protocol: str, activity: str) -> str:
        """Return the key of the interface type this call belongs to (spec README, "Keys")."""
        if protocol == "kit-v2":
            return self.first("KOOGALLERY_KIT_KEY")
        if protocol == "notify":
            return self.first("KOOGALLERY_GENERAL_KEY")
        if protocol == "license" and activity in LICENSE_CODE_ACTIVITIES:
            return self.first("KOOGALLERY_LICENSE_KEY")
        return self.first("KOOGALLERY_BASIC_KEY")


# ------------------------------------------------------------------------------ building


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def v1_timestamp(zone: timedelta = timedelta(0)) -> str:
    """Return yyyyMMddHHmmssSSS in the given zone (UTC for GET, Beijing for kit bodies)."""
    moment = datetime.now(UTC) + zone
    return moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"


def build_call(
    protocol: str,
    activity: str,
    url: str,
    fields: dict,
    key: str,
    *,
    timestamp_ms: int | None = None,
    nonce: str | None = None,
    raw_body: bytes | None = None,
) -> Call:
    """Sign a call the way the marketplace signs it for this protocol generation."""
    if protocol in ("v1", "license-v1"):
        params = {"activity": activity, **fields, "timeStamp": v1_timestamp()}
        params = {name: str(value) for name, value in params.items()}
        token = compute_v1_token(key, params["timeStamp"], v1_string_to_sign(params))
        # The marketplace URL-encodes every value, the token included.
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
        full = f"{url}?{query}&authToken={quote(token, safe='')}"
        return Call(protocol, activity, "GET", full, {}, b"", params, key)
    if protocol == "kit-v1":
        body = {**fields, "timeStamp": fields.get("timeStamp") or v1_timestamp(BEIJING)}
        token = compute_v1_token(key, body["timeStamp"], kit_v1_string_to_sign(body))
        raw = raw_body if raw_body is not None else _json_bytes(body)
        headers = {"Content-Type": "application/json", "authToken": token}
        return Call(
            protocol, activity, "POST", f"{url}/produceAPI/{activity}", headers, raw, body, key
        )
    timestamp = str(timestamp_ms if timestamp_ms is not None else now_ms())
    nonce = nonce or secrets.token_hex(32).upper()
    if protocol == "kit-v2":
        body = {**fields, "timeStamp": fields.get("timeStamp") or v1_timestamp(BEIJING)}
        raw = raw_body if raw_body is not None else _json_bytes(body)
        headers = {
            "Content-Type": "application/json",
            "x-sign": compute_kit_signature(key, nonce, timestamp, canonical_payload(body)),
            "x-timestamp": timestamp,
            "x-nonce": nonce,
        }
        return Call(
            protocol, activity, "POST", f"{url}/produceAPI/v2/{activity}", headers, raw, body, key
        )
    body = {"activity": activity, **fields}
    raw = raw_body if raw_body is not None else _json_bytes(body)
    signature = compute_v2_signature(key, nonce, timestamp, canonical_payload(body))
    query = f"signature={signature}&timestamp={timestamp}&nonce={nonce}"
    headers = {"Content-Type": "application/json"}
    return Call(protocol, activity, "POST", f"{url}?{query}", headers, raw, body, key)


def _json_bytes(body: dict) -> bytes:
    """Serialise a body as the marketplace does: top-level keys sorted, nested order kept.

    The signature covers the canonical payload, which keeps nested objects in the order
    received; sorting them too (json.dumps(sort_keys=True)) would change what the server
    canonicalises and break the signature of any body with nested objects (authSync's users).
    """
    return canonical_payload(body).encode("utf-8")


# ------------------------------------------------------------------------------ sending


def send(call: Call, *, timeout: float = 30.0, verify: str | bool = True) -> Answer:
    """Send a call and return the answer; a transport failure is an answer with an error."""
    started = time.perf_counter()
    try:
        response = requests.request(
            call.method,
            call.url,
            headers=call.headers,
            data=call.body or None,
            timeout=timeout,
            verify=verify,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        return Answer(None, [], b"", time.perf_counter() - started, type(error).__name__)
    # The raw header names, as sent: the console's Body-Sign check is case-sensitive.
    headers = list(response.raw.headers.items())
    return Answer(response.status_code, headers, response.content, time.perf_counter() - started)


# ------------------------------------------------------------------------------ judging


def judge(
    call: Call,
    answer: Answer,
    *,
    expect: str = "000000",
    budget: float = BUDGET_SECONDS,
    answer_key: str | None = None,
    encrypt_type_default: str = "1",
) -> Verdict:
    """Apply every check of the seller console's debugger to an answer.

    `answer_key` is the key the server should sign its answer with, when the call was signed
    with another one on purpose (a wrong-key test).
    """
    verdict = Verdict()
    checks = verdict.checks
    if answer.error:
        checks.append(Check("answered", False, f"{TIMEOUT} ({answer.error})"))
        return verdict
    checks.append(
        Check(
            "answered in time",
            answer.seconds <= budget,
            "" if answer.seconds <= budget else TIMEOUT,
        )
    )
    body = answer.json()
    checks.append(Check("JSON body", body is not None, "" if body is not None else PARSE_FAILED))
    if body is None:
        return verdict
    code = str(body.get("resultCode"))
    message = "" if code == expect else f"{ERROR_RESULT_CODE} ({code}: {body.get('resultMsg')})"
    if expect != "000000" and code != expect:
        message = f"expected resultCode {expect}, got {code}: {body.get('resultMsg')}"
    checks.append(Check(f"resultCode {expect}", code == expect, message))
    if code == "000000" and expect == "000000":
        for name in mandatory_fields(call, body):
            checks.append(Check(f"contains {name}", False, MISSING_FIELD.format(field=name)))
    for name, value in fields_with_limits(body):
        if len(str(value)) > LENGTH_LIMITS[name]:
            checks.append(Check(f"length of {name}", False, BAD_LENGTH.format(field=name)))
    checks.extend(body_sign_checks(answer, answer_key or call.key))
    if code == "000000":
        credentials_check(call, body, verdict, encrypt_type_default)
    return verdict


def mandatory_fields(call: Call, body: dict) -> list[str]:
    """Return the mandatory answer fields that are missing (spec debug-tool.md)."""
    missing = []
    if call.activity in ("newInstance", "getLicense") and not body.get("instanceId"):
        missing.append("instanceId")
    # V1 answers synchronously, so its new purchase must carry the appInfo.
    v1_purchase = call.protocol == "v1" and call.activity == "newInstance"
    if v1_purchase and not (body.get("appInfo") or {}).get("frontEndUrl"):
        missing.append("appInfo.frontEndUrl")
    if call.activity == "getLicense" and not body.get("license"):
        missing.append("license")
    if call.activity == "queryInstance":
        for entry in body.get("info") or []:
            if not entry.get("instanceId"):
                missing.append("instanceId")
            for usage in entry.get("usageInfo") or []:
                missing += [name for name in ("usageValue", "statisticalTime") if name not in usage]
    return missing


def fields_with_limits(body: dict):
    """Yield (name, value) for every answer field whose length the console checks."""
    app_infos = [body.get("appInfo") or {}] + [
        entry.get("appInfo") or {} for entry in body.get("info") or [] if isinstance(entry, dict)
    ]
    for source in [body, *app_infos]:
        for name in LENGTH_LIMITS:
            if isinstance(source, dict) and source.get(name) is not None:
                yield name, source[name]


def body_sign_checks(answer: Answer, key: str) -> list[Check]:
    """Check the Body-Sign header: exact name, quoted form, and the value (security.md §3)."""
    values = [value for name, value in answer.headers if name == "Body-Sign"]
    if not values:
        return [Check("Body-Sign present", False, NO_BODY_SIGN)]
    try:
        sign_type, signature = parse_body_sign_header(values[0])
    except SecurityError:
        return [Check("Body-Sign format", False, BAD_SIGN_TYPE)]
    if sign_type != "HMAC-SHA256":  # the algorithm's public name, not a secret
        return [Check("Body-Sign format", False, BAD_SIGN_TYPE)]
    expected = compute_body_signature(key, answer.body)
    matches = secrets.compare_digest(expected.encode(), signature.encode())
    return [
        Check(
            "Body-Sign value", matches, "" if matches else WRONG_SIGNATURE.format(expected=expected)
        )
    ]


def credentials_check(call: Call, body: dict, verdict: Verdict, default: str) -> None:
    """Decrypt appInfo credentials with the call's key, as the buyer's console page would."""
    app_infos = [body.get("appInfo")] + [entry.get("appInfo") for entry in body.get("info") or []]
    encrypt_type = body.get("encryptType")
    for app_info in filter(None, app_infos):
        for name in ("userName", "password"):
            value = app_info.get(name)
            if not value:
                continue
            if encrypt_type is None and call.protocol != "v1":
                verdict.credentials[name] = value  # sent in clear (allowed for V2)
                continue
            try:
                bits = encryption_bits(encrypt_type or default)
                verdict.credentials[name] = decrypt_field(call.key, value, bits)
            except (SecurityError, ValueError):
                verdict.checks.append(
                    Check(
                        f"{name} decrypts", False, f"appInfo.{name} does not decrypt with the key"
                    )
                )


def new_order() -> dict:
    """Return a fresh orderId and its order line, shaped as the marketplace's (`<id>-000001`)."""
    order = fresh_id("CS")
    return {"orderId": order, "orderLineId": f"{order}-000001"}


def fresh_id(prefix: str) -> str:
    """Return an id shaped like the marketplace's, unique enough for repeated runs."""
    return f"{prefix}{datetime.now(UTC).strftime('%y%m%d%H%M%S')}{uuid.uuid4().hex[:6].upper()}"
