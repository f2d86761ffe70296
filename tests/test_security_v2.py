"""V2 basic `signature` and kit `x-sign`, pinned to security.md §4–§5 vectors."""

import json

import pytest

from app.security import (
    Reason,
    SecurityError,
    canonical_payload,
    check_timestamp,
    compute_kit_signature,
    compute_v2_inner_digest,
    compute_v2_signature,
    parse_json_object,
    verify_kit_signature,
    verify_v2_signature,
)

KEY = "ebf72724-bacc-414b-a86b-fda5bcc8153c"

C1_NONCE = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
C1_TIMESTAMP = "1680508066618"
C1_BODY = (
    b'{"activity":"newInstance","businessId":"8a2c4e6f-405a-4f8d-8e24-f41090522646",'
    b'"orderId":"CS2210101920BWXLK","orderLineId":"CS2210101920BWXLK-000001","testFlag":"1"}'
)
C1_INNER = "6000563815c62e4c3fd5995e1717ba1169cb666ef3fc89d7ebad43771175f56e"
C1_SIGNATURE = "043fa6d1501549aec56efbf5b51b410b897168c7889aa673b26cc5475cde3454"

C2_NONCE = "9FB42E04DF4594B1FAA50B304E647AD7154AB9B4F144A65F1168886540A8B24C"
C2_TIMESTAMP = "1680508237508"
C2_BODY = (
    b'{"activity":"queryInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e",'
    b'"testFlag":"0"}'
)
C2_INNER = "d478abffa24683182ac337fadd9ff6559546be083c7df17c84bf3b82866e28ea"
C2_SIGNATURE = "af5dfdce1c9112403ed1dbd81d235d6b4b53a97f089e705bbcaff67b7d6bc0ad"

C3_KEY = "TEST_BASIC_ACCESS_KEY_456"
C3_NONCE = "Of4lsV7H1qrzVDI52O5CFk2ofPcZRaA6"
C3_TIMESTAMP = "1729566664115"
C3_BODY = (
    b'{"activity":"orderNotify","orderId":"CS2211181819B4LVS",'
    b'"orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}'
)
C3_SIGNATURE = "0A6083C493B1B08034F6F6CDD05742FD8541048E3A2C59B67081AB941EC31060"

D1_SIGNATURE = "e2bfa387bacf5e694991da7051edeccbf271eda7640c4c364863977175117a00"

D2_KEY = "TEST_KIT_ACCESS_KEY_123"
# Exactly as printed in the documentation: unsorted, with ": " spacing.
D2_BODY = (
    b'{"instanceId": "huaiweitest123456","orderId": "CS1906666666ABCDE",'
    b'"tenantId": "68cbc86****************880d92f36422fa0e","tenantCode": "huawei",'
    b'"name": "huaiweitest","domainName": "https://example.tenantaccount.com","flag": 1,'
    b'"testFlag": 0,"timeStamp": "20220413093539534"}'
)
D2_PAYLOAD = (
    '{"domainName":"https://example.tenantaccount.com","flag":1,"instanceId":"huaiweitest123456",'
    '"name":"huaiweitest","orderId":"CS1906666666ABCDE","tenantCode":"huawei",'
    '"tenantId":"68cbc86****************880d92f36422fa0e","testFlag":0,'
    '"timeStamp":"20220413093539534"}'
)
D2_SIGNATURE = "DC6F33BE32689955C7E2031F42A7F283AAD2C348A349BBDE95A28711E5F6859C"

NOW_C1 = int(C1_TIMESTAMP)


def _verify_c1(**overrides):
    """Verify vector C1, with any argument replaced."""
    arguments = {
        "signature": C1_SIGNATURE,
        "timestamp": C1_TIMESTAMP,
        "nonce": C1_NONCE,
        "body": C1_BODY,
        "now_ms": NOW_C1,
    }
    arguments.update(overrides)
    keys = arguments.pop("keys", [KEY])
    return verify_v2_signature(keys, **arguments)


def _verify_d1(**overrides):
    """Verify vector D1 (the kit signature over C1's request), with any argument replaced."""
    arguments = {
        "signature": D1_SIGNATURE,
        "timestamp": C1_TIMESTAMP,
        "nonce": C1_NONCE,
        "body": C1_BODY,
        "now_ms": NOW_C1,
    }
    arguments.update(overrides)
    keys = arguments.pop("keys", [KEY])
    return verify_kit_signature(keys, **arguments)


def _reason_of(verify, **overrides) -> Reason:
    with pytest.raises(SecurityError) as excinfo:
        verify(**overrides)
    return excinfo.value.reason


BOTH = pytest.mark.parametrize("verify", [_verify_c1, _verify_d1], ids=["v2", "kit"])


# --- known answers ------------------------------------------------------------------------------


def test_vector_c1_documented_body_is_already_canonical():
    assert canonical_payload(parse_json_object(C1_BODY)) == C1_BODY.decode("utf-8")


def test_vector_c1_inner_digest():
    assert compute_v2_inner_digest(KEY, C1_BODY.decode("utf-8")) == C1_INNER


def test_vector_c1_signature():
    payload = C1_BODY.decode("utf-8")
    assert compute_v2_signature(KEY, C1_NONCE, C1_TIMESTAMP, payload) == C1_SIGNATURE


def test_vector_c1_verifies():
    assert _verify_c1() == KEY


def test_vector_c1_upper_case_signature_verifies():
    assert _verify_c1(signature=C1_SIGNATURE.upper()) == KEY


def test_vector_c2_inner_digest():
    assert compute_v2_inner_digest(KEY, C2_BODY.decode("utf-8")) == C2_INNER


def test_vector_c2_signature_verifies():
    payload = C2_BODY.decode("utf-8")
    assert compute_v2_signature(KEY, C2_NONCE, C2_TIMESTAMP, payload) == C2_SIGNATURE
    assert (
        _verify_c1(
            signature=C2_SIGNATURE,
            nonce=C2_NONCE,
            timestamp=C2_TIMESTAMP,
            body=C2_BODY,
            now_ms=int(C2_TIMESTAMP),
        )
        == KEY
    )


def test_vector_c3_upper_case_signature_verifies():
    payload = C3_BODY.decode("utf-8")
    assert compute_v2_signature(C3_KEY, C3_NONCE, C3_TIMESTAMP, payload) == C3_SIGNATURE.lower()
    assert (
        _verify_c1(
            keys=[C3_KEY],
            signature=C3_SIGNATURE,
            nonce=C3_NONCE,
            timestamp=C3_TIMESTAMP,
            body=C3_BODY,
            now_ms=int(C3_TIMESTAMP),
        )
        == C3_KEY
    )


def test_vector_d1_kit_signature_has_no_inner_digest():
    payload = C1_BODY.decode("utf-8")
    assert compute_kit_signature(KEY, C1_NONCE, C1_TIMESTAMP, payload) == D1_SIGNATURE
    assert _verify_d1() == KEY


def test_vector_d2_kit_body_as_printed_is_canonicalised():
    assert canonical_payload(parse_json_object(D2_BODY)) == D2_PAYLOAD


def test_vector_d2_kit_signature_verifies():
    signature = compute_kit_signature(D2_KEY, C1_NONCE, C1_TIMESTAMP, D2_PAYLOAD)
    assert signature == D2_SIGNATURE.lower()
    assert _verify_d1(keys=[D2_KEY], signature=D2_SIGNATURE, body=D2_BODY) == D2_KEY


def test_vector_d2_kit_signature_over_raw_body_is_rejected():
    raw_text = D2_BODY.decode("utf-8")
    signature = compute_kit_signature(D2_KEY, C1_NONCE, C1_TIMESTAMP, raw_text)
    assert _reason_of(_verify_d1, keys=[D2_KEY], signature=signature, body=D2_BODY) == (
        Reason.BAD_SIGNATURE
    )


def test_v2_signature_over_raw_body_text_is_accepted():
    raw_body = b'{"testFlag": "1", "activity": "newInstance"}'
    signature = compute_v2_signature(KEY, C1_NONCE, C1_TIMESTAMP, raw_body.decode("utf-8"))
    assert _verify_c1(signature=signature, body=raw_body) == KEY


def test_v2_signature_over_canonical_payload_of_unsorted_body_is_accepted():
    raw_body = b'{"testFlag": "1", "activity": "newInstance", "remark": null}'
    payload = '{"activity":"newInstance","testFlag":"1"}'
    signature = compute_v2_signature(KEY, C1_NONCE, C1_TIMESTAMP, payload)
    assert _verify_c1(signature=signature, body=raw_body) == KEY


# --- canonical payload and body parsing ---------------------------------------------------------


def test_canonical_payload_drops_nulls_keeps_nested_order_and_raw_utf8():
    body = {"b": {"z": 1, "a": None}, "a": "张三", "c": None, "d": [3, 1]}
    assert canonical_payload(body) == '{"a":"张三","b":{"z":1,"a":null},"d":[3,1]}'


def test_duplicate_keys_last_one_wins():
    assert parse_json_object(b'{"flag": 1, "flag": 2}') == {"flag": 2}


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe{}", b'{"n": NaN}', b'{"a": 1'],
    ids=["empty", "not-json", "array", "string", "bad-utf8", "nan", "truncated"],
)
def test_malformed_body_is_rejected(raw):
    with pytest.raises(SecurityError) as excinfo:
        parse_json_object(raw)
    assert excinfo.value.reason is Reason.MALFORMED_BODY


def test_parse_json_object_accepts_text():
    assert parse_json_object(json.dumps({"a": 1})) == {"a": 1}


# --- timestamp window ---------------------------------------------------------------------------


def test_timestamp_inside_window_is_returned_as_int():
    assert check_timestamp("1000", now_ms=61_000, tolerance_ms=60_000) == 1000
    assert check_timestamp("121000", now_ms=61_000, tolerance_ms=60_000) == 121_000


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        (None, Reason.MISSING_TIMESTAMP),
        ("", Reason.MISSING_TIMESTAMP),
        (" ", Reason.MISSING_TIMESTAMP),
        ("abc", Reason.BAD_TIMESTAMP),
        ("1.5", Reason.BAD_TIMESTAMP),
        ("-1", Reason.BAD_TIMESTAMP),
        ("999", Reason.STALE_TIMESTAMP),
        ("121001", Reason.FUTURE_TIMESTAMP),
    ],
)
def test_timestamp_outside_rules_fails(timestamp, reason):
    with pytest.raises(SecurityError) as excinfo:
        check_timestamp(timestamp, now_ms=61_000, tolerance_ms=60_000)
    assert excinfo.value.reason is reason


# --- verification failures and check order (security.md §4, shared by §5) ----------------------


@BOTH
def test_wrong_key_fails(verify):
    assert _reason_of(verify, keys=["another-key"]) is Reason.BAD_SIGNATURE


@BOTH
def test_tampered_body_fails(verify):
    body = C1_BODY.replace(b'"testFlag":"1"', b'"testFlag":"0"')
    assert _reason_of(verify, body=body) is Reason.BAD_SIGNATURE


@BOTH
def test_other_nonce_fails(verify):
    assert _reason_of(verify, nonce="another-nonce") is Reason.BAD_SIGNATURE


@BOTH
def test_stale_timestamp_fails(verify):
    assert _reason_of(verify, now_ms=NOW_C1 + 60_001) is Reason.STALE_TIMESTAMP


@BOTH
def test_future_timestamp_fails(verify):
    assert _reason_of(verify, now_ms=NOW_C1 - 60_001) is Reason.FUTURE_TIMESTAMP


@BOTH
def test_timestamp_at_window_edge_verifies(verify):
    assert verify(now_ms=NOW_C1 + 60_000) == KEY
    assert verify(now_ms=NOW_C1 - 60_000) == KEY


@BOTH
def test_window_is_configurable(verify):
    assert _reason_of(verify, now_ms=NOW_C1 + 2_000, tolerance_ms=1_000) is Reason.STALE_TIMESTAMP


@BOTH
def test_missing_timestamp_fails(verify):
    assert _reason_of(verify, timestamp=None) is Reason.MISSING_TIMESTAMP


@BOTH
def test_non_numeric_timestamp_fails(verify):
    assert _reason_of(verify, timestamp="2023-04-03") is Reason.BAD_TIMESTAMP


@BOTH
def test_missing_nonce_fails(verify):
    assert _reason_of(verify, nonce="") is Reason.MISSING_NONCE


@BOTH
def test_missing_signature_fails(verify):
    assert _reason_of(verify, signature=None) is Reason.MISSING_SIGNATURE


@BOTH
def test_malformed_body_fails(verify):
    assert _reason_of(verify, body=b"[]") is Reason.MALFORMED_BODY


@BOTH
def test_non_ascii_signature_fails_cleanly(verify):
    assert _reason_of(verify, signature="é" * 64) is Reason.BAD_SIGNATURE


@BOTH
def test_check_order_timestamp_before_signature(verify):
    stale_now = NOW_C1 + 3_600_000
    assert _reason_of(verify, now_ms=stale_now, signature=None) is Reason.STALE_TIMESTAMP


@BOTH
def test_check_order_timestamp_before_nonce(verify):
    assert _reason_of(verify, timestamp=None, nonce=None) is Reason.MISSING_TIMESTAMP


@BOTH
def test_check_order_nonce_before_signature(verify):
    assert _reason_of(verify, nonce=None, signature=None) is Reason.MISSING_NONCE


@BOTH
def test_check_order_signature_before_body(verify):
    assert _reason_of(verify, signature="", body=b"not json") is Reason.MISSING_SIGNATURE


@BOTH
def test_check_order_body_before_mismatch(verify):
    assert _reason_of(verify, signature="0" * 64, body=b"not json") is Reason.MALFORMED_BODY


@BOTH
def test_second_key_of_ring_verifies_and_is_returned(verify):
    assert verify(keys=["old-key", KEY]) == KEY


@BOTH
def test_empty_key_ring_fails(verify):
    assert _reason_of(verify, keys=[]) is Reason.NO_KEY
