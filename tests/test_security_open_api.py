"""Usage-push body signature and APIG AK/SK signing, pinned to security.md §8–§9 vectors."""

import json
import re

from app.security import (
    canonical_request,
    canonical_usage_body,
    compute_usage_signature,
    sign_apig_request,
    string_to_sign,
)

# --- usage push (§8) ----------------------------------------------------------------------------

E1_KEY = "TEST_BASIC_ACCESS_KEY_456"
E1_TS = "1709690865879"
E1_NONCE = "6c63c221-1f6b-4141-8ff4-22f5dfe82b65"
E1_BODY = (
    '{"usage_records":[{"begin_time":"20220809T080000Z","end_time":"20220809T090000Z",'
    '"instance_id":"7f141bf1-aec8-4859-8323-fb3a8ad50721","metering_sn":"a1b2c3d4",'
    '"record_time":"20220809T091000Z","usage_value":"99"}]}'
)
E1_SIGNATURE = "VuYZ7LXdLfPdaHUOJBQA7FrKBzhA4hJjOgwT2P1f51Q="


def test_vector_e1_usage_signature():
    assert compute_usage_signature(E1_KEY, E1_TS, E1_NONCE, E1_BODY) == E1_SIGNATURE


def test_vector_e1_body_is_the_canonical_serialisation():
    record = {
        "usage_value": "99",
        "record_time": "20220809T091000Z",
        "metering_sn": "a1b2c3d4",
        "instance_id": "7f141bf1-aec8-4859-8323-fb3a8ad50721",
        "end_time": "20220809T090000Z",
        "begin_time": "20220809T080000Z",
    }
    assert canonical_usage_body({"usage_records": [record]}) == E1_BODY


def test_usage_body_sorts_nested_keys_and_escapes_non_ascii():
    body = canonical_usage_body({"b": {"z": 1, "a": "中"}, "a": []})
    assert body == '{"a":[],"b":{"a":"\\u4e2d","z":1}}'
    assert json.loads(body) == {"a": [], "b": {"a": "中", "z": 1}}


def test_usage_signature_changes_with_the_body():
    tampered = E1_BODY.replace('"99"', '"98"')
    assert compute_usage_signature(E1_KEY, E1_TS, E1_NONCE, tampered) != E1_SIGNATURE


# --- APIG SDK-HMAC-SHA256 (§9) ------------------------------------------------------------------

HOST = "mkt.myhuaweicloud.com"
SDK_DATE = "20240317T144237Z"

F1_URL = f"https://{HOST}/api/mkp-openapi-public/global/v1/license/activate"
F1_HEADERS = {"x-stage": "RELEASE", "X-Sdk-Date": SDK_DATE, "Content-Type": "application/json"}
F1_AUTHORIZATION = (
    "SDK-HMAC-SHA256 Access=test, SignedHeaders=content-type;host;x-sdk-date;x-stage, "
    "Signature=77595ad624b6e4e49990b8c4e84bf1c287457fca61069c4e60b9b6765b52053d"
)
F1_CANONICAL_REQUEST = (
    "POST\n"
    "/api/mkp-openapi-public/global/v1/license/activate/\n"
    "\n"
    "content-type:application/json\n"
    f"host:{HOST}\n"
    f"x-sdk-date:{SDK_DATE}\n"
    "x-stage:RELEASE\n"
    "\n"
    "content-type;host;x-sdk-date;x-stage\n"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

F2_URL = (
    f"https://{HOST}/api/mkp-openapi-public/global/v1/order/query"
    "?orderId=MOCKPERIODYEARNEW&orderLineId=MOCKPERIODYEARNEW-000001"
)
F2_HEADERS = {"Content-Type": "application/json", "X-Sdk-Date": SDK_DATE, "host": HOST}
F2_AUTHORIZATION = (
    "SDK-HMAC-SHA256 Access=test, SignedHeaders=content-type;host;x-sdk-date, "
    "Signature=df37ba3315950b108c9be5a4933a5fc864d004b012050c179dc3d22a78c99301"
)

# Computed with Huawei's own huaweicloudsdkcore 3.1.219 `signer.Signer`: a port in the host, an
# encoded non-ASCII path, repeated and encoded query parameters and a header value to strip.
ORACLE_URL = (
    "https://h.example:8443/a%20b/c~d/%E4%B8%AD?z=1&a=x%20y&a=b&e=&n=%2B%2F~&%E4%B8%AD=%E6%96%87"
)
ORACLE_HEADERS = {
    "Content-Type": "application/json;charset=UTF-8",
    "X-Sdk-Date": SDK_DATE,
    "X-Project-Id": "  p1 ",
}
ORACLE_BODY = b'{"usage_records":[]}'
ORACLE_AUTHORIZATION = (
    "SDK-HMAC-SHA256 Access=test, SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
    "Signature=d50176036f0879e618f4433493ab1a28ecab5b1876dbed2b31bd670928609b62"
)


def test_vector_f1_license_activate_authorization():
    signed = sign_apig_request("POST", F1_URL, F1_HEADERS, b"", "test", "123")
    assert signed["Authorization"] == F1_AUTHORIZATION


def test_vector_f1_host_is_added_from_the_url():
    signed = sign_apig_request("POST", F1_URL, F1_HEADERS, b"", "test", "123")
    assert signed["Host"] == HOST
    assert signed["X-Sdk-Date"] == SDK_DATE


def test_vector_f1_canonical_request_and_string_to_sign():
    headers = {**F1_HEADERS, "Host": HOST}
    canonical = canonical_request("POST", F1_URL, headers, b"")
    assert canonical == F1_CANONICAL_REQUEST
    assert string_to_sign(canonical, SDK_DATE).startswith(f"SDK-HMAC-SHA256\n{SDK_DATE}\n")


def test_vector_f2_order_query_with_query_string():
    signed = sign_apig_request("GET", F2_URL, F2_HEADERS, b"", "test", "123")
    assert signed["Authorization"] == F2_AUTHORIZATION
    assert signed["host"] == HOST
    assert "Host" not in signed


def test_sdk_oracle_vector_with_encoding_edge_cases():
    signed = sign_apig_request("post", ORACLE_URL, ORACLE_HEADERS, ORACLE_BODY, "test", "123")
    assert signed["Authorization"] == ORACLE_AUTHORIZATION


def test_query_order_in_the_url_does_not_matter():
    reordered = F2_URL.replace(
        "orderId=MOCKPERIODYEARNEW&orderLineId=MOCKPERIODYEARNEW-000001",
        "orderLineId=MOCKPERIODYEARNEW-000001&orderId=MOCKPERIODYEARNEW",
    )
    signed = sign_apig_request("GET", reordered, F2_HEADERS, b"", "test", "123")
    assert signed["Authorization"] == F2_AUTHORIZATION


def test_signing_returns_a_new_dict():
    headers = dict(F1_HEADERS)
    sign_apig_request("POST", F1_URL, headers, b"", "test", "123")
    assert headers == F1_HEADERS


def test_explicit_sdk_date_is_used_when_the_header_is_absent():
    headers = {"x-stage": "RELEASE", "Content-Type": "application/json"}
    signed = sign_apig_request("POST", F1_URL, headers, b"", "test", "123", sdk_date=SDK_DATE)
    assert signed["X-Sdk-Date"] == SDK_DATE
    assert signed["Authorization"] == F1_AUTHORIZATION


def test_sdk_date_defaults_to_utc_now_in_basic_format():
    signed = sign_apig_request("GET", F2_URL, {"host": HOST}, b"", "test", "123")
    assert re.fullmatch(r"\d{8}T\d{6}Z", signed["X-Sdk-Date"])
    assert "SignedHeaders=host;x-sdk-date," in signed["Authorization"]


def test_body_and_secret_change_the_signature():
    with_body = sign_apig_request("POST", F1_URL, F1_HEADERS, b"{}", "test", "123")
    other_secret = sign_apig_request("POST", F1_URL, F1_HEADERS, b"", "test", "124")
    assert with_body["Authorization"] != F1_AUTHORIZATION
    assert other_secret["Authorization"] != F1_AUTHORIZATION
