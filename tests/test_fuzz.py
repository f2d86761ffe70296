"""Fuzzing: random and adversarial input, correctly signed, must never break the contract.

Every marketplace route answers HTTP 200 with JSON, a documented resultCode and a valid
Body-Sign, whatever arrives; the pure parsers raise only their own errors.
"""

import contextlib
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.kit.schemas import parse_loose_json
from app.results import ResultCode
from app.security import (
    SecurityError,
    canonical_payload,
    decrypt_field,
    parse_json_object,
    parse_raw_query,
    v1_string_to_sign,
)
from tests.marketplace import BASIC_KEY, GENERAL_KEY, KIT_KEY, LICENSE_KEY
from tests.saas_helpers import signed_by

DOCUMENTED = {code.value for code in ResultCode}
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "1e309",
    "9" * 40,
    "null",
    "' OR 1=1 --",
    "$(touch /tmp/x)",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "\u0000",
    "\ud7ff\ue000",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "张三@例子.com",
    "a" * 5000,
    "%00%2e%2e%2f",
    "W3sibmFtZSI6ImEiLCJ2YWx1ZSI6ImIifV0=",
]
text = st.one_of(st.sampled_from(NASTY), st.text(max_size=80))
scalars = st.one_of(
    text, st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none()
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
FIELD_NAMES = [
    "activity",
    "orderId",
    "orderLineId",
    "businessId",
    "instanceId",
    "testFlag",
    "scene",
    "expireTime",
    "status",
    "productId",
    "skuCode",
    "buyerInfo",
    "orderInfo",
    "productInfo",
    "license",
    "eventId",
    "deviceFingerprint",
    "effectiveTime",
    "tenantId",
    "appId",
    "clientId",
    "clientSecret",
    "userList",
    "orgInfoList",
    "orgInfo",
    "flag",
    "orgCode",
    "domainName",
]
SAAS_ACTIVITIES = [
    "newInstance",
    "queryInstance",
    "refreshInstance",
    "updateInstanceStatus",
    "releaseInstance",
    "upgradeInstance",
    "changeInstanceCheck",
    "instanceStatus",
    "expireInstance",
    "upgrade",
]
LICENSE_ACTIVITIES = [
    "getLicense",
    "refreshLicense",
    "expireLicense",
    "releaseLicense",
    "refreshLicenseCode",
    "updateLicenseCodeStatus",
    "releaseLicenseCode",
    "getLicenseAsync",
]


def bodies(activities):
    """Bodies with a real or random activity and real or random field names and values."""
    return st.fixed_dictionaries(
        {"activity": st.one_of(st.sampled_from(activities), text)},
        optional={name: values for name in FIELD_NAMES if name != "activity"},
    ).flatmap(
        lambda body: st.dictionaries(text, values, max_size=3).map(lambda extra: {**extra, **body})
    )


def check_answer(response, key):
    assert response.status_code == 200
    answer = json.loads(response.data)
    assert answer["resultCode"] in DOCUMENTED
    assert signed_by(response, key)
    assert b"Traceback" not in response.data


FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(body=bodies(SAAS_ACTIVITIES))
def test_saas_v2_answers_every_body_by_the_contract(marketplace, body):
    check_answer(marketplace.v2_post("/saas", body), BASIC_KEY)


@FUZZ
@given(body=bodies(LICENSE_ACTIVITIES))
def test_license_post_answers_every_body_by_the_contract(marketplace, body):
    activity = body.get("activity")
    key = (
        LICENSE_KEY
        if activity in ("refreshLicenseCode", "updateLicenseCodeStatus", "releaseLicenseCode")
        else BASIC_KEY
    )
    check_answer(marketplace.v2_post("/license", body, key=key), key)


@FUZZ
@given(body=bodies(["orderNotify"]))
def test_notify_answers_every_body_by_the_contract(marketplace, body):
    check_answer(marketplace.v2_post("/notify", body, key=GENERAL_KEY), GENERAL_KEY)


@FUZZ
@given(
    interface=st.sampled_from(
        ["tenantSync", "applicationSync", "authSync", "singleOrgSync", "allOrgSync"]
    ),
    body=st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=8),
)
def test_kit_v2_answers_every_body_by_the_contract(marketplace, interface, body):
    check_answer(marketplace.kit_post(f"/saas/produceAPI/v2/{interface}", body), KIT_KEY)


@FUZZ
@given(
    interface=st.sampled_from(["tenantSync", "authSync", "allOrgSync"]),
    body=st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=8),
)
def test_kit_v1_answers_every_body_by_the_contract(marketplace, interface, body):
    check_answer(marketplace.kit_v1_post(f"/saas/produceAPI/{interface}", body), BASIC_KEY)


query_values = st.one_of(st.sampled_from(NASTY), st.text(alphabet=string.printable, max_size=60))


@FUZZ
@given(
    path=st.sampled_from(["/saas", "/license"]),
    activity=st.sampled_from(SAAS_ACTIVITIES + LICENSE_ACTIVITIES + ["x"]),
    params=st.dictionaries(
        st.sampled_from([*FIELD_NAMES, "customerId", "saasExtendParams", "mobilePhone"]),
        query_values,
        max_size=8,
    ),
)
def test_v1_get_answers_every_query_by_the_contract(marketplace, path, activity, params):
    params = {name: value for name, value in params.items() if name != "activity"}
    check_answer(marketplace.v1_get(path, {"activity": activity, **params}), BASIC_KEY)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_unparseable_v2_bodies_are_refused_cleanly(marketplace, raw):
    check_answer(marketplace.v2_post("/saas", {}, raw=raw), BASIC_KEY)


# ------------------------------------------------------------------------------ pure parsers


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_raw_query_parsing_never_fails(raw):
    pairs = parse_raw_query(raw)
    v1_string_to_sign(dict(pairs))


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300))
def test_json_bodies_parse_or_fail_with_the_security_error(raw):
    try:
        body = parse_json_object(raw)
    except SecurityError:
        return
    canonical_payload(body)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(st.text(max_size=120), st.sampled_from(NASTY)), bits=st.sampled_from([128, 256])
)
def test_field_decryption_fails_only_with_the_security_error(value, bits):
    with contextlib.suppress(SecurityError):
        decrypt_field(BASIC_KEY, value, bits)


@settings(max_examples=300, deadline=None)
@given(text_value=st.text(max_size=200))
def test_pseudo_json_parsing_fails_only_with_value_error(text_value):
    with contextlib.suppress(ValueError):
        parse_loose_json(text_value)


@pytest.mark.parametrize("value", NASTY)
def test_nasty_values_as_a_kit_org_list(marketplace, value):
    body = {"tenantId": "t-fuzz", "orgInfoList": value, "testFlag": 0}
    check_answer(marketplace.kit_post("/saas/produceAPI/v2/allOrgSync", body), KIT_KEY)


def test_found_by_fuzzing_a_non_json_license_body_is_signed_with_the_basic_key(marketplace):
    # Seed: body={"": inf} serialised as Infinity. The activity (and so the key type) cannot be
    # read from a body that is not JSON: the answer is 000002 signed with the 基础接口 key.
    response = marketplace.v2_post(
        "/license", {}, raw='{"activity": "refreshLicenseCode", "x": Infinity}'
    )
    assert response.json["resultCode"] == "000002"
    assert signed_by(response, BASIC_KEY)
