"""授权码 2.0 and online activation (POST /license), signed for real."""

from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.licensing import signing_key, verify_license
from app.models import Instance, License, LicenseHistory
from tests.marketplace import BASIC_KEY, LICENSE_KEY
from tests.saas_helpers import count, events, signed_by

CODE = "LIC-CODE-0001-ABCD"


def code_call(marketplace, activity, key=LICENSE_KEY, **body):
    return marketplace.v2_post("/license", {"activity": activity, **body}, key=key)


def online(marketplace, activity, **body):
    return marketplace.v2_post("/license", {"activity": activity, **body}, key=BASIC_KEY)


def code_row() -> License:
    return db.session.scalars(select(License).where(License.code == CODE)).one()


def code_events() -> list[str]:
    return list(db.session.scalars(select(LicenseHistory.event).order_by(LicenseHistory.id)))


# ------------------------------------------------------------------------------ 授权码 2.0

RENEWAL = {
    "scene": "RENEWAL",
    "orderId": "CS-CODE-RENEW",
    "orderLineId": "CS-CODE-RENEW-1",
    "license": CODE,
    "expireTime": "20281231235959",
}


def test_refresh_of_an_unseen_code_records_it_and_sets_the_expiry(app, marketplace):
    for _ in range(2):
        response = code_call(marketplace, "refreshLicenseCode", **RENEWAL)
        assert response.json["resultCode"] == "000000" and signed_by(response, LICENSE_KEY)
    with app.app_context():
        stored = code_row()
        assert (stored.kind, stored.state, stored.expire_time) == (
            "code",
            "active",
            "20281231235959",
        )
        assert code_events() == ["recorded", "renewed"]
        renewed = db.session.scalars(
            select(LicenseHistory).where(LicenseHistory.event == "renewed")
        ).one()
        assert (renewed.order_id, renewed.changes["scene"]) == ("CS-CODE-RENEW", "RENEWAL")


def test_code_calls_signed_with_the_basic_key_are_refused(app, marketplace):
    response = code_call(marketplace, "refreshLicenseCode", key=BASIC_KEY, **RENEWAL)
    assert response.json["resultCode"] == "000001"
    with app.app_context():
        assert count(License) == 0


def test_code_status_freezes_and_unfreezes(app, marketplace):
    for status, state in (("FREEZE", "frozen"), ("FREEZE", "frozen"), ("UNFREEZE", "active")):
        response = code_call(marketplace, "updateLicenseCodeStatus", license=CODE, status=status)
        assert response.json["resultCode"] == "000000" and signed_by(response, LICENSE_KEY)
        with app.app_context():
            assert code_row().state == state
    with app.app_context():
        assert code_events() == ["recorded", "frozen", "unfrozen"]


def test_code_lifecycle_ends_released(app, marketplace):
    steps = [
        ("refreshLicenseCode", RENEWAL, "000000"),
        ("updateLicenseCodeStatus", {"license": CODE, "status": "FREEZE"}, "000000"),
        ("releaseLicenseCode", {"license": CODE, "orderId": "CS-UNSUB"}, "000000"),
        ("releaseLicenseCode", {"license": CODE}, "000000"),
        ("updateLicenseCodeStatus", {"license": CODE, "status": "UNFREEZE"}, "000003"),
        ("refreshLicenseCode", {**RENEWAL, "orderId": "CS-LATE"}, "000003"),
    ]
    for activity, body, code in steps:
        response = code_call(marketplace, activity, **body)
        assert (activity, response.json["resultCode"]) == (activity, code)
        assert signed_by(response, LICENSE_KEY)
    with app.app_context():
        assert code_row().state == "released"
        assert code_events() == ["recorded", "renewed", "frozen", "released"]


@pytest.mark.parametrize(
    "body",
    [
        {"activity": "refreshLicenseCode", **{**RENEWAL, "scene": "TRIAL_TO_FORMAL"}},
        {"activity": "refreshLicenseCode", **{k: v for k, v in RENEWAL.items() if k != "license"}},
        {"activity": "updateLicenseCodeStatus", "license": "x" * 65, "status": "FREEZE"},
        {"activity": "releaseLicenseCode"},
    ],
    ids=["bad scene", "no license", "license over 64", "release without license"],
)
def test_bad_code_calls_get_000002_and_write_nothing(app, marketplace, body):
    response = marketplace.v2_post("/license", body, key=LICENSE_KEY)
    assert response.json["resultCode"] == "000002" and signed_by(response, LICENSE_KEY)
    with app.app_context():
        assert count(License) == 0


# ------------------------------------------------------------------------------ online activation

ORDER_ID = "CS-ONLINE"
QUANTITY_TWO = {
    "orderId": ORDER_ID,
    "orderType": "NEW",
    "createTime": "20261129090000",
    "orderLine": [
        {
            "orderLineId": f"{ORDER_ID}-000001",
            "chargingMode": "PERIOD",
            "periodType": "year",
            "periodNumber": 1,
            "expireTime": "20271129235959",
            "productInfo": [{"productId": "OFFI-CAD", "skuCode": "sku-cad", "linearValue": 2}],
        }
    ],
    "buyerInfo": {"customerId": "buyer-1", "customerName": "buyer", "mobilePhone": "13900000000"},
}


@pytest.fixture
def online_instance(app, marketplace, open_api):
    open_api.add_order(QUANTITY_TWO)
    response = online(
        marketplace,
        "newInstance",
        orderId=ORDER_ID,
        orderLineId=f"{ORDER_ID}-000001",
        businessId="online-business-1",
    )
    assert response.json == {
        "resultCode": "000000",
        "resultMsg": "success.",
        "instanceId": "online-business-1",
    }
    assert signed_by(response, BASIC_KEY)
    return "online-business-1"


def device_license(marketplace, instance_id, event, fingerprint, test_flag="0", **body):
    fields = {
        "instanceId": instance_id,
        "effectiveTime": "2026-11-29 10:30:15 z",
        "expireTime": "2027-11-29 23:59:59 z",
        "eventId": event,
        "testFlag": test_flag,
    }
    if fingerprint is not None:
        fields["deviceFingerprint"] = fingerprint
    fields = {name: value for name, value in {**fields, **body}.items() if value is not None}
    return online(marketplace, "getLicenseAsync", **fields)


def test_new_instance_learns_the_quantity_from_query_order(app, online_instance):
    with app.app_context():
        instance = db.session.scalars(select(Instance)).one()
        assert (instance.family, instance.state, instance.spec) == (
            "license",
            "active",
            {"linearValue": "2"},
        )
        assert (instance.charging_mode, instance.expire_time) == ("PERIOD", "20271129235959")
        assert events(online_instance) == ["created", "provisioned"]


def test_quota_of_two_devices(app, marketplace, online_instance):
    first = device_license(marketplace, online_instance, "event-1", "device-1")
    second = device_license(marketplace, online_instance, "event-2", "device-2")
    third = device_license(marketplace, online_instance, "event-3", "device-3")
    again = device_license(marketplace, online_instance, "event-1", "device-1")
    assert first.json["resultCode"] == second.json["resultCode"] == "000000"
    assert signed_by(first, BASIC_KEY) and first.json["instanceId"] == online_instance
    assert third.json["resultCode"] == "000900" and signed_by(third, BASIC_KEY)
    assert again.json["resultCode"] == "000000"
    assert again.json["license"] == first.json["license"]
    public = signing_key(app.config).public_key()
    document = verify_license(first.json["license"], public)
    assert (document["boundTo"], document["eventId"], document["quantity"]) == (
        "device-1",
        "event-1",
        2,
    )
    assert document["notBefore"] == "2026-11-29T10:30:15Z"
    assert document["notAfter"] == "2027-11-29T23:59:59Z"
    with app.app_context():
        assert count(License) == 2


def test_debug_calls_never_use_up_the_quota(app, marketplace, online_instance):
    for number in range(4):
        response = device_license(
            marketplace, online_instance, f"debug-{number}", f"probe-{number}", test_flag="1"
        )
        assert response.json["resultCode"] == "000000"
    real = [device_license(marketplace, online_instance, f"e{n}", f"d{n}") for n in range(2)]
    assert [response.json["resultCode"] for response in real] == ["000000", "000000"]


def test_periodic_order_without_expire_time_gets_000902(marketplace, online_instance):
    response = device_license(marketplace, online_instance, "event-1", "device-1", expireTime=None)
    assert response.json["resultCode"] == "000902"


def test_effective_time_after_the_order_ended_gets_000901(marketplace, online_instance):
    response = device_license(
        marketplace, online_instance, "event-1", "device-1", effectiveTime="2030-01-01 00:00:00 z"
    )
    assert response.json["resultCode"] == "000901"


def test_missing_fingerprint_gets_000903_when_required(
    app, marketplace, online_instance, monkeypatch
):
    monkeypatch.setitem(app.config, "KOOGALLERY_LICENSE_REQUIRE_FINGERPRINT", True)
    monkeypatch.delitem(app.extensions, "koogallery_license_issuer", raising=False)
    response = device_license(marketplace, online_instance, "event-1", None)
    assert response.json["resultCode"] == "000903"
    app.extensions.pop("koogallery_license_issuer", None)


def test_unknown_instance_gets_000003(marketplace):
    response = device_license(marketplace, "no-such-instance", "event-1", "device-1")
    assert response.json["resultCode"] == "000003"


@pytest.mark.parametrize(
    "fingerprint",
    [
        "$(touch {marker}); `touch {marker}`",
        "__import__('os').system('touch {marker}')",
        "x" * 1024,
    ],
    ids=["shell", "python", "1 KB"],
)
def test_hostile_fingerprints_are_signed_as_data(
    app, marketplace, online_instance, tmp_path, fingerprint
):
    marker = tmp_path / "executed"
    hostile = fingerprint.format(marker=marker)
    response = device_license(marketplace, online_instance, "event-h", hostile)
    document = verify_license(response.json["license"], signing_key(app.config).public_key())
    assert document["boundTo"] == hostile
    assert not Path(marker).exists()


def test_fingerprint_over_1024_characters_gets_000002(app, marketplace, online_instance):
    response = device_license(marketplace, online_instance, "event-1", "x" * 1025)
    assert response.json["resultCode"] == "000002"
    with app.app_context():
        assert count(License) == 0


def test_async_issuer_answers_000004_then_delivers_by_upload(
    app, marketplace, online_instance, open_api, use_issuer, runner, tmp_path
):
    use_issuer("tests.provisioners:LaterIssuer")
    pending = device_license(marketplace, online_instance, "event-async", "device-async")
    assert pending.json["resultCode"] == "000004" and signed_by(pending, BASIC_KEY)
    licence_file = tmp_path / "licence.lic"
    licence_file.write_text("LICENCE-FROM-THE-MERCHANT-BACKEND\n")
    result = runner.invoke(
        args=["market", "deliver-license", "event-async", "--file", str(licence_file)]
    )
    assert result.exit_code == 0, result.output
    (upload,) = open_api.uploads
    assert (upload["event_id"], upload["type"]) == ("event-async", "CHARACTERS")
    assert upload["characters"] == "LICENCE-FROM-THE-MERCHANT-BACKEND"
    resend = device_license(marketplace, online_instance, "event-async", "device-async")
    assert resend.json["resultCode"] == "000000"
    assert resend.json["license"] == "LICENCE-FROM-THE-MERCHANT-BACKEND"
    with app.app_context():
        stored = db.session.scalars(select(License)).one()
        assert stored.state == "active" and stored.delivered_at is not None


def test_online_lifecycle_ends_released(app, marketplace, online_instance):
    device_license(marketplace, online_instance, "event-1", "device-1")
    steps = [
        (
            "refreshInstance",
            {
                "scene": "RENEWAL",
                "orderId": "CS-ONLINE-R",
                "orderLineId": "CS-ONLINE-R-1",
                "expireTime": "20281129235959000",
            },
            "000000",
        ),
        ("updateInstanceStatus", {"status": "FREEZE"}, "000000"),
        ("updateInstanceStatus", {"status": "UNFREEZE"}, "000000"),
        ("releaseInstance", {}, "000000"),
        ("releaseInstance", {}, "000000"),
        ("updateInstanceStatus", {"status": "FREEZE"}, "000003"),
    ]
    for activity, body, code in steps:
        response = online(marketplace, activity, instanceId=online_instance, **body)
        assert (activity, response.json["resultCode"]) == (activity, code)
        assert signed_by(response, BASIC_KEY)
    after = device_license(marketplace, online_instance, "event-9", "device-9")
    assert after.json["resultCode"] == "000003"
    with app.app_context():
        instance = db.session.scalars(select(Instance)).one()
        assert (instance.state, instance.expire_time) == ("released", "20281129235959")
        assert db.session.scalars(select(License.state)).all() == ["released"]
        assert events(online_instance) == [
            "created",
            "provisioned",
            "renewed",
            "frozen",
            "unfrozen",
            "released",
        ]


def test_concurrent_devices_never_exceed_the_quota(app, marketplace, online_instance):
    from concurrent.futures import ThreadPoolExecutor

    from tests.marketplace import Marketplace

    def request(number):
        with app.test_client() as client:
            response = device_license(
                Marketplace(client), online_instance, f"e{number}", f"d{number}"
            )
            return response.json["resultCode"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = sorted(pool.map(request, range(6)))
    assert codes == ["000000", "000000", "000900", "000900", "000900", "000900"]
    with app.app_context():
        assert count(License) == 2
