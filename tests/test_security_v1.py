"""V1 `authToken` on GET queries and kit POST bodies, pinned to security.md §1–§2 vectors."""

import pytest

from app.security import (
    Reason,
    SecurityError,
    compute_v1_token,
    kit_v1_string_to_sign,
    parse_raw_query,
    v1_string_to_sign,
    verify_v1_body,
    verify_v1_query,
)

KEY = "xxxxxxx"

# Vector A1: Huawei's official sample URL. Its authToken carries a raw "+".
A1_QUERY = (
    "?activity=newInstance&businessId=61e834ba-7b97-4418-b8f7-e5345137278c"
    "&customerId=68cbc86abc2018ab880d92f36422fa0e&expireTime=20200727153156"
    "&orderId=CS1906666666ABCDE&productId=00301-666666-0--0&testFlag=1"
    "&timeStamp=20200727073711903&authToken=Gzbfjf9LHRBcI3bFVi++sLinCNOBF6qa7is1fvjEgYQ="
)
A1_STRING_TO_SIGN = (
    "activity=newInstance&businessId=61e834ba-7b97-4418-b8f7-e5345137278c"
    "&customerId=68cbc86abc2018ab880d92f36422fa0e&expireTime=20200727153156"
    "&orderId=CS1906666666ABCDE&productId=00301-666666-0--0&testFlag=1"
    "&timeStamp=20200727073711903"
)
A1_TIMESTAMP = "20200727073711903"
A1_TOKEN = "Gzbfjf9LHRBcI3bFVi++sLinCNOBF6qa7is1fvjEgYQ="

# Vector A2, without and with a blank customerName.
A2_TIMESTAMP = "20210927095952430"
A2_STRING_TO_SIGN = (
    "activity=expireInstance&instanceId=huaiweitest123456&orderId=CS1906666666ABCDE"
    "&testFlag=1&timeStamp=20210927095952430"
)
A2_TOKEN = "4a16HLDA1DD/h6g1iFu7FDX1YTBPwMnkZ4tzcpQQA+8="
A2_BLANK_STRING_TO_SIGN = (
    "activity=expireInstance&customerName=&instanceId=huaiweitest123456"
    "&orderId=CS1906666666ABCDE&testFlag=1&timeStamp=20210927095952430"
)
A2_BLANK_TOKEN = "Zzk+h3s4chBS1LMhKzzmVNMmxgMbShissllrLQGZjoc="

# Vector A3: a V1 kit POST body; authToken arrives in a header.
A3_BODY = {
    "instanceId": "huaiweitest123456",
    "orderId": "CS1906666666ABCDE",
    "tenantId": "68cbc86abc2018ab880d92f36422fa0e",
    "tenantCode": "huawei",
    "name": "huaiweitest",
    "domainName": "https://example.tenantaccount.com",
    "flag": 1,
    "testFlag": 0,
    "timeStamp": "20220413093539534",
}
A3_STRING_TO_SIGN = (
    "domainName=https://example.tenantaccount.com&flag=1&instanceId=huaiweitest123456"
    "&name=huaiweitest&orderId=CS1906666666ABCDE&tenantCode=huawei"
    "&tenantId=68cbc86abc2018ab880d92f36422fa0e&testFlag=0&timeStamp=20220413093539534"
)
A3_TOKEN = "X3QWCLbvu/AfnAlJ0tamPHcrdERi800scV32sfQe65s="

# Derived from the A-vector HMAC: a form-encoded space in a value ("Zhang+San" means "Zhang San")
# next to a token whose own "+" is raw, so only `unquote_plus` plus restoring "+" verifies it.
FORM_TIMESTAMP = "20240317144237000"
FORM_TOKEN = "T39GuW5Zw1DuP+GyIfm9tvEV/vYG37otsirUXlDmMDQ="
FORM_QUERY = (
    "activity=newInstance&customerName=Zhang+San&orderId=CS1906666666ABCDE&testFlag=1"
    f"&timeStamp={FORM_TIMESTAMP}&authToken={FORM_TOKEN}"
)


def _reason(excinfo: pytest.ExceptionInfo[SecurityError]) -> Reason:
    return excinfo.value.reason


# --- GET queries (§1) ---------------------------------------------------------------------------


def test_vector_a1_string_to_sign_excludes_token_and_sorts():
    params = dict(parse_raw_query(A1_QUERY))
    assert v1_string_to_sign(params) == A1_STRING_TO_SIGN


def test_vector_a1_token_uses_key_plus_timestamp():
    assert compute_v1_token(KEY, A1_TIMESTAMP, A1_STRING_TO_SIGN) == A1_TOKEN


def test_vector_a1_huawei_example_with_raw_plus_verifies():
    verified = verify_v1_query([KEY], A1_QUERY)
    assert verified.key == KEY
    assert verified.params["activity"] == "newInstance"
    assert verified.params["authToken"] == A1_TOKEN


def test_vector_a1_verifies_from_flask_query_string_bytes():
    raw = A1_QUERY.removeprefix("?").encode("ascii")
    assert verify_v1_query([KEY], raw).key == KEY


def test_vector_a1_with_percent_encoded_plus_verifies():
    query = A1_QUERY.replace("++", "%2B%2B")
    assert verify_v1_query([KEY], query).key == KEY


def test_vector_a1_with_plus_lost_to_space_in_token_still_verifies():
    # A proxy that form-decoded the URL and re-encoded it sends the "+" as "%20".
    query = A1_QUERY.replace("++", "%20%20")
    assert verify_v1_query([KEY], query).key == KEY


def test_form_encoded_space_verifies_through_unquote_plus_with_plus_lost_in_token():
    verified = verify_v1_query([KEY], FORM_QUERY)
    assert verified.key == KEY
    assert verified.params["customerName"] == "Zhang San"


def test_form_encoded_token_matches_its_string_to_sign():
    string_to_sign = (
        "activity=newInstance&customerName=Zhang San&orderId=CS1906666666ABCDE&testFlag=1"
        f"&timeStamp={FORM_TIMESTAMP}"
    )
    assert compute_v1_token(KEY, FORM_TIMESTAMP, string_to_sign) == FORM_TOKEN


def test_vector_a2_expire_instance_token():
    assert compute_v1_token(KEY, A2_TIMESTAMP, A2_STRING_TO_SIGN) == A2_TOKEN


def test_vector_a2_blank_customer_name_is_signed():
    assert compute_v1_token(KEY, A2_TIMESTAMP, A2_BLANK_STRING_TO_SIGN) == A2_BLANK_TOKEN
    query = "customerName=&" + A2_STRING_TO_SIGN + "&authToken=" + A2_BLANK_TOKEN
    assert verify_v1_query([KEY], query).params["customerName"] == ""


def test_vector_a2_dropping_the_blank_value_fails():
    query = A2_STRING_TO_SIGN + "&authToken=" + A2_BLANK_TOKEN
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_query([KEY], query)
    assert _reason(excinfo) is Reason.BAD_SIGNATURE


def test_wrong_key_fails():
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_query(["yyyyyyy"], A1_QUERY)
    assert _reason(excinfo) is Reason.BAD_SIGNATURE


def test_tampered_query_fails():
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_query([KEY], A1_QUERY.replace("testFlag=1", "testFlag=0"))
    assert _reason(excinfo) is Reason.BAD_SIGNATURE


def test_second_key_of_ring_verifies_and_is_returned():
    assert verify_v1_query(["old-key", KEY], A1_QUERY).key == KEY


def test_empty_key_ring_fails():
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_query([], A1_QUERY)
    assert _reason(excinfo) is Reason.NO_KEY


def test_missing_token_fails():
    query = A1_QUERY.split("&authToken=")[0]
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_query([KEY], query)
    assert _reason(excinfo) is Reason.MISSING_SIGNATURE


def test_blank_token_fails():
    query = A1_QUERY.split("&authToken=")[0] + "&authToken="
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_query([KEY], query)
    assert _reason(excinfo) is Reason.MISSING_SIGNATURE


def test_missing_timestamp_fails():
    query = A1_QUERY.replace("&timeStamp=20200727073711903", "")
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_query([KEY], query)
    assert _reason(excinfo) is Reason.MISSING_TIMESTAMP


def test_repeated_parameter_first_value_wins():
    verified = verify_v1_query([KEY], A1_QUERY + "&testFlag=0")
    assert verified.params["testFlag"] == "1"


def test_repeated_parameter_later_value_is_ignored_even_when_first():
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_query([KEY], "?testFlag=0&" + A1_QUERY.removeprefix("?"))
    assert _reason(excinfo) is Reason.BAD_SIGNATURE


def test_non_ascii_token_is_rejected_cleanly():
    query = A1_QUERY.split("&authToken=")[0] + "&authToken=%C3%A9t%C3%A9"
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_query([KEY], query)
    assert _reason(excinfo) is Reason.BAD_SIGNATURE


def test_parse_raw_query_keeps_blanks_and_raw_encoding():
    pairs = parse_raw_query("a=1&&b=&c=x%20y+z&d=e=f&flag")
    assert pairs == [("a", "1"), ("b", ""), ("c", "x%20y+z"), ("d", "e=f"), ("flag", "")]


def test_string_to_sign_sorts_by_code_point():
    params = {"b": "2", "a": "1", "Z": "0", "authToken": "ignored"}
    assert v1_string_to_sign(params) == "Z=0&a=1&b=2"


# --- kit POST bodies (§2) -----------------------------------------------------------------------


def test_vector_a3_kit_body_string_to_sign():
    assert kit_v1_string_to_sign(A3_BODY) == A3_STRING_TO_SIGN


def test_vector_a3_kit_body_token_verifies():
    assert compute_v1_token(KEY, A3_BODY["timeStamp"], A3_STRING_TO_SIGN) == A3_TOKEN
    assert verify_v1_body([KEY], A3_TOKEN, A3_BODY) == KEY


def test_kit_body_skips_null_empty_and_blank_values():
    body = {**A3_BODY, "remark": None, "extra": "", "blank": "   "}
    assert kit_v1_string_to_sign(body) == A3_STRING_TO_SIGN
    assert verify_v1_body([KEY], A3_TOKEN, body) == KEY


def test_kit_body_renders_booleans_and_nested_values_like_java():
    body = {"on": True, "off": False, "n": 1, "obj": {"b": 1, "a": [1, "x"]}}
    assert kit_v1_string_to_sign(body) == 'n=1&obj={"b":1,"a":[1,"x"]}&off=false&on=true'


def test_kit_body_wrong_key_fails():
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_body(["yyyyyyy"], A3_TOKEN, A3_BODY)
    assert _reason(excinfo) is Reason.BAD_SIGNATURE


def test_kit_body_tampered_body_fails():
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_body([KEY], A3_TOKEN, {**A3_BODY, "flag": 2})
    assert _reason(excinfo) is Reason.BAD_SIGNATURE


def test_kit_body_second_key_of_ring_verifies_and_is_returned():
    assert verify_v1_body(["old-key", KEY], A3_TOKEN, A3_BODY) == KEY


def test_kit_body_empty_key_ring_fails():
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_body([], A3_TOKEN, A3_BODY)
    assert _reason(excinfo) is Reason.NO_KEY


@pytest.mark.parametrize("token", [None, "", "  "])
def test_kit_body_missing_token_fails(token):
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_body([KEY], token, A3_BODY)
    assert _reason(excinfo) is Reason.MISSING_SIGNATURE


def test_kit_body_missing_timestamp_fails():
    body = {name: value for name, value in A3_BODY.items() if name != "timeStamp"}
    with pytest.raises(SecurityError) as excinfo:
        verify_v1_body([KEY], A3_TOKEN, body)
    assert _reason(excinfo) is Reason.MISSING_TIMESTAMP
