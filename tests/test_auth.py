"""The verification decorators, proven through real signed requests and a real database."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.auth import purge_expired_nonces
from app.extensions import db
from app.models import CallLog, SeenNonce, utcnow
from app.security import (
    canonical_payload,
    compute_body_signature,
    compute_kit_signature,
    compute_v1_token,
    compute_v2_signature,
    kit_v1_string_to_sign,
)
from tests import probe
from tests.marketplace import (
    BASIC_KEY,
    KIT_KEY,
    SECOND_BASIC_KEY,
    WRONG_KEY,
    now_ms,
    v1_timestamp,
)

NEW_INSTANCE = {
    "activity": "newInstance",
    "businessId": "8a2c4e6f-405a-4f8d-8e24-f41090522646",
    "orderId": "CS2210101920BWXLK",
    "orderLineId": "CS2210101920BWXLK-000001",
    "testFlag": "1",
}
TENANT_SYNC = {
    "instanceId": "huaiweitest123456",
    "orderId": "CS1906666666ABCDE",
    "tenantId": "68cbc86abc2018ab880d92f36422fa0e",
    "tenantCode": "huawei",
    "name": "huaiweitest",
    "domainName": "https://example.tenantaccount.com",
    "flag": 1,
    "testFlag": 0,
}
V1_NEW_INSTANCE = {
    "activity": "newInstance",
    "businessId": "61e834ba-7b97-4418-b8f7-e5345137278c",
    "customerId": "68cbc86abc2018ab880d92f36422fa0e",
    "orderId": "CS1906666666ABCDE",
    "productId": "00301-666666-0--0",
    "testFlag": "1",
}

# Huawei's own example URL (security.md vector A1), signed with Key值 "xxxxxxx": the authToken
# carries a raw "+", which form decoding would turn into a space.
A1_QUERY = (
    "activity=newInstance&businessId=61e834ba-7b97-4418-b8f7-e5345137278c"
    "&customerId=68cbc86abc2018ab880d92f36422fa0e&expireTime=20200727153156"
    "&orderId=CS1906666666ABCDE&productId=00301-666666-0--0&testFlag=1"
    "&timeStamp=20200727073711903&authToken=Gzbfjf9LHRBcI3bFVi++sLinCNOBF6qa7is1fvjEgYQ="
)


def last_call() -> CallLog:
    return db.session.scalars(select(CallLog).order_by(CallLog.id.desc())).first()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def body_sign_of(response) -> str:
    return response.headers["Body-Sign"].split('signature="')[1].rstrip('"')


def assert_rejected(app, response, code: str, reason: str):
    """The call got `code` with HTTP 200, the view never ran, and only the call log changed."""
    assert response.status_code == 200
    assert response.json["resultCode"] == code
    assert probe.views_run == []
    with app.app_context():
        call = last_call()
        assert (call.result_code, call.reason, call.verified) == (code, reason, False)
        assert count(CallLog) == 1
        assert count(SeenNonce) == 0


def assert_accepted(response, key: str):
    assert response.status_code == 200
    assert response.json["resultCode"] == "000000"
    assert len(probe.views_run) == 1
    assert body_sign_of(response) == compute_body_signature(key, response.data)


# ---------------------------------------------------------------- every protected route at once

SEND_CORRECTLY = {
    "v1": lambda m, **kw: m.v1_get("/saas/probe/v1", V1_NEW_INSTANCE, **kw),
    "kit-v1": lambda m, **kw: m.kit_v1_post("/saas/probe/kit-v1", TENANT_SYNC, **kw),
    "v2": lambda m, **kw: m.v2_post("/saas/probe/v2", NEW_INSTANCE, **kw),
    "kit-v2": lambda m, **kw: m.kit_post("/saas/probe/kit-v2", TENANT_SYNC, **kw),
}
KEY_OF = {"v1": BASIC_KEY, "kit-v1": BASIC_KEY, "v2": BASIC_KEY, "kit-v2": KIT_KEY}


@pytest.mark.parametrize("protocol", SEND_CORRECTLY)
def test_correctly_signed_call_passes_and_is_logged(app, marketplace, protocol):
    response = SEND_CORRECTLY[protocol](marketplace)
    assert_accepted(response, KEY_OF[protocol])
    with app.app_context():
        call = last_call()
        assert (call.protocol, call.verified, call.result_code, call.reason) == (
            protocol,
            True,
            "000000",
            None,
        )


@pytest.mark.parametrize("protocol", SEND_CORRECTLY)
def test_call_signed_with_wrong_key_fails(app, marketplace, protocol):
    response = SEND_CORRECTLY[protocol](marketplace, key=WRONG_KEY)
    assert_rejected(app, response, "000001", "bad_signature")
    # Still answered in the signed format, with the family's first key.
    assert body_sign_of(response) == compute_body_signature(KEY_OF[protocol], response.data)


@pytest.mark.parametrize("protocol", SEND_CORRECTLY)
def test_call_without_key_configured_fails(app, marketplace, monkeypatch, protocol):
    setting = "KOOGALLERY_KIT_KEY" if protocol == "kit-v2" else "KOOGALLERY_BASIC_KEY"
    monkeypatch.setitem(app.config, setting, ())
    response = SEND_CORRECTLY[protocol](marketplace)
    assert_rejected(app, response, "000001", "no_key")
    assert "Body-Sign" not in response.headers


# ---------------------------------------------------------------- V1 GET (security.md §1)


def test_vector_a1_huawei_example_passes_through_the_route(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_BASIC_KEY", ("xxxxxxx",))
    response = client.get(f"/saas/probe/v1?{A1_QUERY}")
    assert_accepted(response, "xxxxxxx")
    assert probe.views_run[0]["orderId"] == "CS1906666666ABCDE"


def test_vector_a1_with_the_plus_lost_to_a_space_still_passes(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_BASIC_KEY", ("xxxxxxx",))
    lost_plus = A1_QUERY.replace("Vi++sL", "Vi%20%20sL")
    response = client.get(f"/saas/probe/v1?{lost_plus}")
    assert_accepted(response, "xxxxxxx")


def test_v1_tampered_parameter_fails(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_BASIC_KEY", ("xxxxxxx",))
    tampered = A1_QUERY.replace("orderId=CS1906666666ABCDE", "orderId=CS1906666666ABCDF")
    assert_rejected(app, client.get(f"/saas/probe/v1?{tampered}"), "000001", "bad_signature")


def test_v1_missing_token_fails(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_BASIC_KEY", ("xxxxxxx",))
    without_token = A1_QUERY.split("&authToken=")[0]
    response = client.get(f"/saas/probe/v1?{without_token}")
    assert_rejected(app, response, "000001", "missing_signature")


def test_v1_old_timestamp_passes_when_no_max_age_is_set(app, marketplace):
    response = marketplace.v1_get(
        "/saas/probe/v1", V1_NEW_INSTANCE, timestamp=v1_timestamp(timedelta(days=-30))
    )
    assert_accepted(response, BASIC_KEY)


def test_v1_old_timestamp_fails_when_max_age_is_set(app, marketplace, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_V1_MAX_AGE", 300)
    response = marketplace.v1_get(
        "/saas/probe/v1", V1_NEW_INSTANCE, timestamp=v1_timestamp(timedelta(minutes=-6))
    )
    assert_rejected(app, response, "000002", "stale_timestamp")


def test_v1_recent_timestamp_passes_when_max_age_is_set(app, marketplace, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_V1_MAX_AGE", 300)
    response = marketplace.v1_get(
        "/saas/probe/v1", V1_NEW_INSTANCE, timestamp=v1_timestamp(timedelta(minutes=-4))
    )
    assert_accepted(response, BASIC_KEY)


def test_v1_resend_of_the_same_url_is_not_a_replay(app, marketplace):
    # V1 has no nonce and the marketplace re-sends the same call: idempotency is the handler's job.
    timestamp = v1_timestamp()
    first = marketplace.v1_get("/saas/probe/v1", V1_NEW_INSTANCE, timestamp=timestamp)
    second = marketplace.v1_get("/saas/probe/v1", V1_NEW_INSTANCE, timestamp=timestamp)
    assert first.json["resultCode"] == second.json["resultCode"] == "000000"
    assert len(probe.views_run) == 2


# ---------------------------------------------------------------- kit V1 POST (security.md §2)


def test_kit_v1_missing_token_fails(app, marketplace):
    response = marketplace.kit_v1_post("/saas/probe/kit-v1", TENANT_SYNC, token="")
    assert_rejected(app, response, "000001", "missing_signature")


def test_kit_v1_tampered_body_fails(app, client):
    body = {**TENANT_SYNC, "timeStamp": v1_timestamp(zone=timedelta(hours=8))}
    token = compute_v1_token(BASIC_KEY, body["timeStamp"], kit_v1_string_to_sign(body))
    tampered = {**body, "name": "another enterprise"}
    response = client.post(
        "/saas/probe/kit-v1", data=json.dumps(tampered), headers={"authToken": token}
    )
    assert_rejected(app, response, "000001", "bad_signature")


def test_kit_v1_malformed_json_fails(app, client):
    response = client.post("/saas/probe/kit-v1", data="{not json", headers={"authToken": "x"})
    assert_rejected(app, response, "000002", "malformed_body")


# ---------------------------------------------------------------- V2 and kit V2 (§4, §5)

SIGNED_V2 = {
    "v2": lambda m, **kw: m.v2_post("/saas/probe/v2", NEW_INSTANCE, **kw),
    "kit-v2": lambda m, **kw: m.kit_post("/saas/probe/kit-v2", TENANT_SYNC, **kw),
}


@pytest.mark.parametrize("protocol", SIGNED_V2)
def test_stale_timestamp_fails(app, marketplace, protocol):
    response = SIGNED_V2[protocol](marketplace, timestamp=now_ms() - 61_000)
    assert_rejected(app, response, "000002", "stale_timestamp")


@pytest.mark.parametrize("protocol", SIGNED_V2)
def test_future_timestamp_fails(app, marketplace, protocol):
    response = SIGNED_V2[protocol](marketplace, timestamp=now_ms() + 61_000)
    assert_rejected(app, response, "000002", "future_timestamp")


@pytest.mark.parametrize("protocol", SIGNED_V2)
def test_timestamp_inside_the_window_passes(app, marketplace, protocol):
    response = SIGNED_V2[protocol](marketplace, timestamp=now_ms() - 50_000)
    assert_accepted(response, KEY_OF[protocol])


@pytest.mark.parametrize("protocol", SIGNED_V2)
def test_window_follows_the_configured_tolerance(app, marketplace, monkeypatch, protocol):
    monkeypatch.setitem(app.config, "KOOGALLERY_TIMESTAMP_TOLERANCE", 10)
    response = SIGNED_V2[protocol](marketplace, timestamp=now_ms() - 20_000)
    assert_rejected(app, response, "000002", "stale_timestamp")


@pytest.mark.parametrize("protocol", SIGNED_V2)
@pytest.mark.parametrize(
    ("part", "code", "reason"),
    [
        ("timestamp", "000002", "missing_timestamp"),
        ("nonce", "000002", "missing_nonce"),
        ("signature", "000001", "missing_signature"),
    ],
)
def test_missing_part_fails_with_the_documented_code(
    app, marketplace, protocol, part, code, reason
):
    response = SIGNED_V2[protocol](marketplace, send={part: None})
    assert_rejected(app, response, code, reason)


@pytest.mark.parametrize("protocol", SIGNED_V2)
def test_non_numeric_timestamp_fails(app, marketplace, protocol):
    response = SIGNED_V2[protocol](marketplace, send={"timestamp": "yesterday"})
    assert_rejected(app, response, "000002", "bad_timestamp")


@pytest.mark.parametrize("protocol", SIGNED_V2)
def test_check_order_puts_the_timestamp_before_the_signature(app, marketplace, protocol):
    response = SIGNED_V2[protocol](marketplace, key=WRONG_KEY, timestamp=now_ms() - 120_000)
    assert_rejected(app, response, "000002", "stale_timestamp")


@pytest.mark.parametrize("protocol", SIGNED_V2)
def test_tampered_body_fails(app, marketplace, protocol):
    body = NEW_INSTANCE if protocol == "v2" else TENANT_SYNC
    tampered = json.dumps({**body, "orderId": "CS0000000000TAMPER"})
    response = SIGNED_V2[protocol](marketplace, raw=tampered)
    assert_rejected(app, response, "000001", "bad_signature")


@pytest.mark.parametrize("protocol", SIGNED_V2)
def test_replayed_nonce_fails(app, marketplace, protocol):
    nonce = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
    timestamp = now_ms()
    first = SIGNED_V2[protocol](marketplace, nonce=nonce, timestamp=timestamp)
    replay = SIGNED_V2[protocol](marketplace, nonce=nonce, timestamp=timestamp)
    assert first.json["resultCode"] == "000000"
    assert replay.json["resultCode"] == "000001"
    assert len(probe.views_run) == 1
    with app.app_context():
        assert last_call().reason == "replayed_nonce"
        assert count(SeenNonce) == 1


def test_concurrent_copies_of_one_signed_call_pass_once(app, client):
    # Eight copies of one signed request race: the unique constraint lets exactly one through.
    raw = json.dumps(NEW_INSTANCE, separators=(",", ":"))
    timestamp, nonce = str(now_ms()), "concurrent-copies-nonce"
    signature = compute_v2_signature(BASIC_KEY, nonce, timestamp, canonical_payload(NEW_INSTANCE))
    query = {"signature": signature, "timestamp": timestamp, "nonce": nonce}

    def send(_):
        return app.test_client().post("/saas/probe/v2", query_string=query, data=raw)

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = sorted(response.json["resultCode"] for response in pool.map(send, range(8)))
    assert codes == ["000000"] + ["000001"] * 7
    assert len(probe.views_run) == 1


def test_fresh_nonce_on_a_marketplace_retry_passes(app, marketplace):
    first = marketplace.v2_post("/saas/probe/v2", NEW_INSTANCE)
    retry = marketplace.v2_post("/saas/probe/v2", NEW_INSTANCE)
    assert first.json["resultCode"] == retry.json["resultCode"] == "000000"
    assert len(probe.views_run) == 2


def test_overlong_nonce_fails(app, marketplace):
    response = marketplace.v2_post("/saas/probe/v2", NEW_INSTANCE, nonce="N" * 129)
    assert response.json["resultCode"] == "000002"
    assert probe.views_run == []


def test_v2_signature_in_upper_case_passes(app, client):
    timestamp, nonce = str(now_ms()), "9FB42E04DF4594B1FAA50B304E647AD7154AB9B4F144A65F11688865"
    raw = json.dumps(NEW_INSTANCE, separators=(",", ":"))
    signature = compute_v2_signature(BASIC_KEY, nonce, timestamp, canonical_payload(NEW_INSTANCE))
    query = {"signature": signature.upper(), "timestamp": timestamp, "nonce": nonce}
    assert_accepted(client.post("/saas/probe/v2", query_string=query, data=raw), BASIC_KEY)


def test_kit_body_with_spacing_and_duplicate_keys_passes(app, client):
    # Documented kit bodies are unsorted, spaced, and repeat keys; the signature covers the
    # canonical payload, in which the last duplicate wins.
    raw = '{"instanceId": "first", "tenantId": "t1", "instanceId": "huaiweitest123456", "flag": 1}'
    canonical = '{"flag":1,"instanceId":"huaiweitest123456","tenantId":"t1"}'
    timestamp, nonce = str(now_ms()), "kit-duplicate-keys-nonce"
    headers = {
        "x-sign": compute_kit_signature(KIT_KEY, nonce, timestamp, canonical),
        "x-timestamp": timestamp,
        "x-nonce": nonce,
    }
    assert_accepted(client.post("/saas/probe/kit-v2", data=raw, headers=headers), KIT_KEY)
    assert probe.views_run[0]["instanceId"] == "huaiweitest123456"


def test_v2_malformed_json_fails(app, marketplace):
    response = marketplace.v2_post("/saas/probe/v2", NEW_INSTANCE, raw='{"activity": ')
    assert_rejected(app, response, "000002", "malformed_body")


def test_expired_nonces_are_purged(app):
    with app.app_context():
        db.session.add(SeenNonce(scope="v2", nonce="old", expires_at=utcnow() - timedelta(1)))
        db.session.add(SeenNonce(scope="v2", nonce="new", expires_at=utcnow() + timedelta(1)))
        db.session.commit()
        assert purge_expired_nonces(force=True) == 1
        assert db.session.scalars(select(SeenNonce.nonce)).all() == ["new"]


# ---------------------------------------------------------------- key rotation (§10)


@pytest.mark.parametrize("protocol", ["v1", "kit-v1", "v2"])
def test_second_key_of_the_ring_verifies_and_signs_the_answer(
    app, marketplace, monkeypatch, protocol
):
    monkeypatch.setitem(app.config, "KOOGALLERY_BASIC_KEY", (BASIC_KEY, SECOND_BASIC_KEY))
    response = SEND_CORRECTLY[protocol](marketplace, key=SECOND_BASIC_KEY)
    assert_accepted(response, SECOND_BASIC_KEY)
    assert body_sign_of(response) != compute_body_signature(BASIC_KEY, response.data)


def test_second_kit_key_verifies_and_signs_the_answer(app, marketplace, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_KIT_KEY", (KIT_KEY, "NEW_KIT_KEY"))
    response = marketplace.kit_post("/saas/probe/kit-v2", TENANT_SYNC, key="NEW_KIT_KEY")
    assert_accepted(response, "NEW_KIT_KEY")


def test_comma_separated_key_setting_is_a_ring(app, marketplace, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_BASIC_KEY", f"{BASIC_KEY}, {SECOND_BASIC_KEY}")
    response = marketplace.v2_post("/saas/probe/v2", NEW_INSTANCE, key=SECOND_BASIC_KEY)
    assert_accepted(response, SECOND_BASIC_KEY)


# ---------------------------------------------------------------- failures after verification


def test_exception_in_a_view_answers_000005_signed(app, marketplace):
    response = marketplace.v2_post("/saas/probe/fails", NEW_INSTANCE)
    assert response.status_code == 200
    assert response.json["resultCode"] == "000005"
    assert body_sign_of(response) == compute_body_signature(BASIC_KEY, response.data)
    assert "backend is down" not in response.get_data(as_text=True)
    with app.app_context():
        call = last_call()
        assert (call.result_code, call.reason, call.verified) == ("000005", "internal_error", True)
