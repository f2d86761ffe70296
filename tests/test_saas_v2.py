"""SaaS V2 (POST /saas): every activity, signed for real, checked in the answer and the database."""

import json

import pytest

from app.models import InstanceState
from tests import provisioners
from tests.marketplace import BASIC_KEY
from tests.saas_helpers import (
    count,
    decrypted_credentials,
    events,
    instance,
    last_call,
    last_history,
    rows_other_than_the_call_log,
    signed_by,
    stored_credentials,
)

ORDER = {"orderId": "CS2210101920BWXLK", "orderLineId": "CS2210101920BWXLK-000001"}
BUSINESS_ID = "8a2c4e6f-405a-4f8d-8e24-f41090522646"


def buy(marketplace, business_id=BUSINESS_ID, test_flag="0", **order):
    return marketplace.saas_v2(
        "newInstance", **{**ORDER, **order}, businessId=business_id, testFlag=test_flag
    )


def test_new_instance_creates_an_active_instance(app, marketplace):
    response = buy(marketplace, test_flag="1")
    answer = response.json
    assert response.status_code == 200 and signed_by(response, BASIC_KEY)
    assert answer["resultCode"] == "000000"
    assert answer["instanceId"] == BUSINESS_ID  # the first businessId, as recommended
    assert answer["encryptType"] == "1"
    with app.app_context():
        created = instance(BUSINESS_ID)
        assert (created.state, created.protocol, created.test) == ("active", "v2", True)
        assert (created.order_id, created.order_line_id) == (ORDER["orderId"], ORDER["orderLineId"])
        assert events(BUSINESS_ID) == ["created", "provisioned"]
        assert decrypted_credentials(answer["appInfo"], BASIC_KEY) == stored_credentials(
            BUSINESS_ID
        )
    assert answer["appInfo"]["frontEndUrl"] == "http://127.0.0.1:5000/"
    # The test instance's memo (测试实例…) travels as \uXXXX escapes, signed as sent.
    assert answer["appInfo"]["memo"].startswith("测试实例")
    assert b"\\u6d4b\\u8bd5\\u5b9e\\u4f8b" in response.data and response.data.isascii()


def test_resend_with_a_new_business_id_returns_the_same_instance_and_credentials(app, marketplace):
    first = buy(marketplace).json
    resend = buy(marketplace, business_id="another-business-id").json
    assert resend["resultCode"] == "000000"
    assert resend["instanceId"] == first["instanceId"]
    # Encrypted with a fresh IV each time, identical once decrypted.
    assert resend["appInfo"]["password"] != first["appInfo"]["password"]
    assert decrypted_credentials(resend["appInfo"], BASIC_KEY) == decrypted_credentials(
        first["appInfo"], BASIC_KEY
    )
    with app.app_context():
        assert count(provisioners_model()) == 1
        assert events(BUSINESS_ID) == ["created", "provisioned"]


def provisioners_model():
    from app.models import Instance

    return Instance


def test_business_id_taken_by_another_order_gets_a_fresh_instance_id(app, marketplace):
    buy(marketplace)
    other = buy(marketplace, orderId="CS-OTHER", orderLineId="CS-OTHER-000001").json
    assert other["resultCode"] == "000000"
    assert other["instanceId"] != BUSINESS_ID


def test_nested_body_shape_is_accepted(app, marketplace, use_provisioner):
    use_provisioner("tests.provisioners:RecordingProvisioner")
    body = {
        "buyerInfo": {
            "customerId": "68cbc86abc2018ab880d92f36422fa0e",
            "customerName": "huawei_test",
            "mobilePhone": "15905222222",
            "email": "buyer@example.com",
        },
        "orderInfo": [
            {
                "businessId": "nested-business-id",
                "orderId": "CS-NESTED",
                "trialFlag": "0",
                "orderAmount": 100.5,
                "chargingMode": "PERIOD",
                "periodType": "year",
                "periodNumber": 1,
                "provisionType": 1,
                "productInfo": [{"skuCode": "sku-1", "productId": "prod-1", "linearValue": 50}],
                "expireTime": "20271129235959",
                "extendParams": [{"name": "emailDomainName", "value": "test.example.com"}],
            }
        ],
    }
    answer = marketplace.saas_v2("newInstance", **body).json
    assert answer["resultCode"] == "000000"
    purchase = provisioners.calls[0][1]
    assert (purchase.order_id, purchase.product_id, purchase.sku_code) == (
        "CS-NESTED",
        "prod-1",
        "sku-1",
    )
    assert purchase.mobile_phone == "15905222222"
    assert purchase.period_number == 1 and purchase.charging_mode == "PERIOD"
    assert purchase.extend_params == {"emailDomainName": "test.example.com"}
    assert purchase.spec == {"linearValue": "50"}
    with app.app_context():
        stored = instance("nested-business-id")
        assert stored.purchase_key == "v1:CS-NESTED:prod-1"
        assert stored.expire_time == "20271129235959"
        row = json.dumps({c.name: str(getattr(stored, c.name)) for c in stored.__table__.columns})
        assert "15905222222" not in row and "buyer@example.com" not in row


def test_query_instance_returns_app_info_for_each_id(app, marketplace):
    first = buy(marketplace).json["instanceId"]
    second = buy(marketplace, "b2", orderId="CS2", orderLineId="CS2-1").json["instanceId"]
    response = marketplace.saas_v2("queryInstance", instanceId=f"{first},{second},unknown")
    answer = response.json
    assert answer["resultCode"] == "000000" and signed_by(response, BASIC_KEY)
    assert [entry["instanceId"] for entry in answer["info"]] == [first, second]
    with app.app_context():
        for entry in answer["info"]:
            assert decrypted_credentials(entry["appInfo"], BASIC_KEY) == stored_credentials(
                entry["instanceId"]
            )


def test_query_reports_usage_when_the_hook_has_it(marketplace, use_provisioner):
    use_provisioner("tests.provisioners:MeteredProvisioner")
    instance_id = buy(marketplace).json["instanceId"]
    entry = marketplace.saas_v2("queryInstance", instanceId=instance_id).json["info"][0]
    assert entry["usageInfo"] == [
        {
            "usageValue": 12.3457,
            "statisticalTime": "20261129080000123",
            "dashboardUrl": "https://isv.example.com/usage",
        }
    ]


def test_credentials_too_long_once_encrypted_answer_000005(app, marketplace, use_provisioner):
    use_provisioner("tests.provisioners:LongNameProvisioner")
    response = buy(marketplace)
    assert response.json["resultCode"] == "000005"
    assert signed_by(response, BASIC_KEY)
    with app.app_context():
        assert last_call().reason == "appInfo_userName_too_long"


def test_query_of_unknown_instances_answers_000003(marketplace):
    answer = marketplace.saas_v2("queryInstance", instanceId="nope,nothing").json
    assert answer["resultCode"] == "000003"


def test_query_of_more_than_100_ids_answers_000002(marketplace):
    ids = ",".join(f"id-{number}" for number in range(101))
    assert marketplace.saas_v2("queryInstance", instanceId=ids).json["resultCode"] == "000002"


def test_refresh_sets_the_expiry_and_records_the_renewal(app, marketplace):
    instance_id = buy(marketplace, expireTime="20261231235959").json["instanceId"]
    renewal = {"orderId": "CS-RENEW", "orderLineId": "CS-RENEW-1", "expireTime": "20271231235959"}
    response = marketplace.saas_v2(
        "refreshInstance", instanceId=instance_id, scene="RENEWAL", **renewal
    )
    assert response.json["resultCode"] == "000000" and signed_by(response, BASIC_KEY)
    resend = marketplace.saas_v2(
        "refreshInstance", instanceId=instance_id, scene="RENEWAL", **renewal
    ).json
    assert resend["resultCode"] == "000000"
    with app.app_context():
        renewed = instance(instance_id)
        assert renewed.expire_time == "20271231235959"
        assert renewed.expires_at.strftime("%Y%m%d%H%M%S") == "20271231235959"  # V2 is UTC
        assert events(instance_id) == ["created", "provisioned", "renewed"]
        history = last_history(instance_id)
        assert (history.order_id, history.order_line_id) == ("CS-RENEW", "CS-RENEW-1")
        assert history.changes["expire_time"][1] == "20271231235959"


def test_trial_to_formal_clears_the_trial_flag(app, marketplace):
    instance_id = buy(marketplace, test_flag="0").json["instanceId"]
    with app.app_context():
        from app.extensions import db

        instance(instance_id).trial = True
        db.session.commit()
    marketplace.saas_v2(
        "refreshInstance",
        instanceId=instance_id,
        scene="TRIAL_TO_FORMAL",
        orderId="CS-T2F",
        orderLineId="CS-T2F-1",
        expireTime="20271231235959",
    )
    with app.app_context():
        assert instance(instance_id).trial is False
        assert last_history(instance_id).changes["trial"] == [True, False]


def test_update_status_freezes_and_unfreezes(app, marketplace):
    instance_id = buy(marketplace).json["instanceId"]
    for status, state in (("FREEZE", "frozen"), ("FREEZE", "frozen"), ("UNFREEZE", "active")):
        response = marketplace.saas_v2(
            "updateInstanceStatus", instanceId=instance_id, status=status
        )
        assert response.json["resultCode"] == "000000" and signed_by(response, BASIC_KEY)
        with app.app_context():
            assert instance(instance_id).state == state
    with app.app_context():
        # The repeated FREEZE changed nothing.
        assert events(instance_id) == ["created", "provisioned", "frozen", "unfrozen"]
        assert last_history(instance_id).changes == {"state": ["frozen", "active"]}


def test_release_is_final_and_repeatable(app, marketplace):
    instance_id = buy(marketplace).json["instanceId"]
    first = marketplace.saas_v2("releaseInstance", instanceId=instance_id, **ORDER)
    again = marketplace.saas_v2("releaseInstance", instanceId=instance_id)
    assert first.json["resultCode"] == again.json["resultCode"] == "000000"
    assert signed_by(first, BASIC_KEY) and signed_by(again, BASIC_KEY)
    with app.app_context():
        assert instance(instance_id).state == "released"
        assert events(instance_id) == ["created", "provisioned", "released"]
    refresh = marketplace.saas_v2(
        "refreshInstance",
        instanceId=instance_id,
        scene="RENEWAL",
        orderId="CS-LATE",
        orderLineId="CS-LATE-1",
        expireTime="20301231235959",
    ).json
    assert refresh["resultCode"] == "000003"
    assert marketplace.saas_v2("queryInstance", instanceId=instance_id).json["resultCode"] == (
        "000003"
    )


def test_upgrade_is_applied_once_per_order(app, marketplace, use_provisioner):
    use_provisioner("tests.provisioners:RecordingProvisioner")
    instance_id = buy(marketplace).json["instanceId"]
    upgrade = {"orderId": "CS-UP", "orderLineId": "CS-UP-1"}
    for _ in range(2):
        response = marketplace.saas_v2("upgradeInstance", instanceId=instance_id, **upgrade)
        assert response.json["resultCode"] == "000000" and signed_by(response, BASIC_KEY)
    assert [name for name, _ in provisioners.calls].count("upgrade") == 1
    with app.app_context():
        assert events(instance_id) == ["created", "provisioned", "upgraded"]
        assert last_history(instance_id).once_key == f"upgrade:{instance_id}:CS-UP:CS-UP-1"


def test_change_instance_check_allows_by_default(marketplace):
    instance_id = buy(marketplace).json["instanceId"]
    response = marketplace.saas_v2(
        "changeInstanceCheck", instanceId=instance_id, productInfo={"skuCode": "smaller"}
    )
    assert response.json["resultCode"] == "000000" and signed_by(response, BASIC_KEY)


def test_change_instance_check_refused_by_the_hook(marketplace, use_provisioner):
    use_provisioner("tests.provisioners:RefusingProvisioner")
    instance_id = buy(marketplace).json["instanceId"]
    answer = marketplace.saas_v2(
        "changeInstanceCheck", instanceId=instance_id, productInfo={"skuCode": "smaller"}
    ).json
    assert answer["resultCode"] == "000005"


@pytest.mark.parametrize(("encrypt_type", "bits"), [("1", 256), ("2", 128)])
def test_credentials_decrypt_with_the_configured_encrypt_type(
    app, marketplace, monkeypatch, encrypt_type, bits
):
    monkeypatch.setitem(app.config, "KOOGALLERY_ENCRYPT_TYPE", encrypt_type)
    answer = buy(marketplace).json
    assert answer["encryptType"] == encrypt_type
    with app.app_context():
        assert decrypted_credentials(answer["appInfo"], BASIC_KEY, bits) == stored_credentials(
            answer["instanceId"]
        )
    query = marketplace.saas_v2("queryInstance", instanceId=answer["instanceId"]).json
    assert query["encryptType"] == encrypt_type
    assert decrypted_credentials(query["info"][0]["appInfo"], BASIC_KEY, bits) == (
        decrypted_credentials(answer["appInfo"], BASIC_KEY, bits)
    )


def test_v2_credentials_can_be_sent_in_clear(app, marketplace, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_ENCRYPT_CREDENTIALS", False)
    answer = buy(marketplace).json
    assert "encryptType" not in answer
    with app.app_context():
        stored = stored_credentials(answer["instanceId"])
    assert (answer["appInfo"]["userName"], answer["appInfo"]["password"]) == stored


def test_slow_provisioning_answers_at_once_and_query_polls_000004(
    app, marketplace, use_provisioner
):
    use_provisioner("tests.provisioners:SlowProvisioner")
    answer = buy(marketplace).json
    assert answer == {
        "resultCode": "000000",
        "resultMsg": "success.",
        "instanceId": BUSINESS_ID,
    }
    assert marketplace.saas_v2("queryInstance", instanceId=BUSINESS_ID).json["resultCode"] == (
        "000004"
    )
    with app.app_context():
        from app.saas.service import complete_provisioning

        complete_provisioning(BUSINESS_ID)
    query = marketplace.saas_v2("queryInstance", instanceId=BUSINESS_ID).json
    assert query["resultCode"] == "000000"
    assert query["info"][0]["appInfo"]["frontEndUrl"] == "https://slow.example.com/"


def test_provisioner_failure_answers_000005_and_a_resend_retries(app, marketplace, use_provisioner):
    use_provisioner("tests.provisioners:FailingOnceProvisioner")
    failed = buy(marketplace).json
    assert failed["resultCode"] == "000005"
    with app.app_context():
        assert instance(BUSINESS_ID).state == InstanceState.FAILED
        assert instance(BUSINESS_ID).failure_reason == "ConnectionError"
        assert last_call().reason == "provisioning_failed"
    assert marketplace.saas_v2("queryInstance", instanceId=BUSINESS_ID).json["resultCode"] == (
        "000005"
    )
    retried = buy(marketplace, business_id="resend-business-id").json
    assert retried["resultCode"] == "000000"
    assert retried["instanceId"] == BUSINESS_ID
    with app.app_context():
        assert instance(BUSINESS_ID).state == "active"
        assert events(BUSINESS_ID) == ["created", "failed", "provisioned"]


def test_full_lifecycle(app, marketplace):
    instance_id = buy(marketplace, expireTime="20261231235959").json["instanceId"]
    steps = [
        ("queryInstance", {"instanceId": instance_id}, "000000"),
        (
            "refreshInstance",
            {
                "instanceId": instance_id,
                "scene": "RENEWAL",
                "orderId": "R1",
                "orderLineId": "R1-1",
                "expireTime": "20271231235959",
            },
            "000000",
        ),
        ("updateInstanceStatus", {"instanceId": instance_id, "status": "FREEZE"}, "000000"),
        ("updateInstanceStatus", {"instanceId": instance_id, "status": "UNFREEZE"}, "000000"),
        (
            "upgradeInstance",
            {"instanceId": instance_id, "orderId": "U1", "orderLineId": "U1-1"},
            "000000",
        ),
        ("releaseInstance", {"instanceId": instance_id}, "000000"),
        ("releaseInstance", {"instanceId": instance_id}, "000000"),
        (
            "refreshInstance",
            {
                "instanceId": instance_id,
                "scene": "RENEWAL",
                "orderId": "R2",
                "orderLineId": "R2-1",
                "expireTime": "20281231235959",
            },
            "000003",
        ),
    ]
    for activity, body, code in steps:
        response = marketplace.saas_v2(activity, **body)
        assert (activity, response.json["resultCode"]) == (activity, code)
        assert signed_by(response, BASIC_KEY)
    with app.app_context():
        assert events(instance_id) == [
            "created",
            "provisioned",
            "renewed",
            "frozen",
            "unfrozen",
            "upgraded",
            "released",
        ]


BAD_INPUT = [
    ("no activity", {"orderId": "o"}, "000002"),
    ("activity not a string", {"activity": ["newInstance"], "orderId": "o"}, "000002"),
    (
        "impossible expireTime",
        {
            "activity": "refreshInstance",
            "instanceId": "i",
            "scene": "RENEWAL",
            **ORDER,
            "expireTime": "20261399250000",
        },
        "000002",
    ),
    ("unknown activity", {"activity": "deleteEverything", "instanceId": "i"}, "000002"),
    (
        "newInstance without orderId",
        {"activity": "newInstance", "businessId": "b", "orderLineId": "l"},
        "000002",
    ),
    ("newInstance without businessId", {"activity": "newInstance", **ORDER}, "000002"),
    (
        "newInstance without orderLineId",
        {"activity": "newInstance", "orderId": "o", "businessId": "b"},
        "000002",
    ),
    (
        "orderId over 64",
        {"activity": "newInstance", "businessId": "b", "orderId": "o" * 65, "orderLineId": "l"},
        "000002",
    ),
    (
        "orderId a number",
        {"activity": "newInstance", "businessId": "b", "orderId": 12345, "orderLineId": "l"},
        "000002",
    ),
    (
        "testFlag 2",
        {"activity": "newInstance", "businessId": "b", **ORDER, "testFlag": "2"},
        "000002",
    ),
    (
        "bad status",
        {"activity": "updateInstanceStatus", "instanceId": "i", "status": "PAUSE"},
        "000002",
    ),
    (
        "bad scene",
        {
            "activity": "refreshInstance",
            "instanceId": "i",
            "scene": "X",
            **ORDER,
            "expireTime": "20271231235959",
        },
        "000002",
    ),
    (
        "bad expireTime",
        {
            "activity": "refreshInstance",
            "instanceId": "i",
            "scene": "RENEWAL",
            **ORDER,
            "expireTime": "tomorrow",
        },
        "000002",
    ),
    ("query without ids", {"activity": "queryInstance", "instanceId": " , "}, "000002"),
    ("query id over 64", {"activity": "queryInstance", "instanceId": "i" * 65}, "000002"),
    ("release unknown", {"activity": "releaseInstance", "instanceId": "nothing"}, "000003"),
    (
        "status unknown",
        {"activity": "updateInstanceStatus", "instanceId": "nothing", "status": "FREEZE"},
        "000003",
    ),
    (
        "upgrade unknown",
        {"activity": "upgradeInstance", "instanceId": "nothing", **ORDER},
        "000003",
    ),
    (
        "productInfo not an object",
        {"activity": "changeInstanceCheck", "instanceId": "i", "productInfo": "big"},
        "000002",
    ),
]


@pytest.mark.parametrize(("case", "body", "code"), BAD_INPUT, ids=[case for case, *_ in BAD_INPUT])
def test_bad_input_gets_the_documented_code_and_writes_nothing(app, marketplace, case, body, code):
    response = marketplace.v2_post("/saas", body)
    assert response.status_code == 200
    assert response.json["resultCode"] == code
    assert signed_by(response, BASIC_KEY)
    with app.app_context():
        assert rows_other_than_the_call_log() == 0
        assert last_call().result_code == code


@pytest.mark.parametrize(
    ("case", "raw"),
    [
        ("malformed JSON", '{"activity": "newInstance",'),
        ("JSON array", "[1, 2]"),
        ("not UTF-8", b"\xff\xfe"),
    ],
)
def test_unparseable_bodies_get_000002(app, marketplace, case, raw):
    response = marketplace.v2_post("/saas", {}, raw=raw)
    assert response.status_code == 200
    assert response.json["resultCode"] == "000002"
    assert signed_by(response, BASIC_KEY)
    with app.app_context():
        assert rows_other_than_the_call_log() == 0


def test_oversized_body_gets_000002(app, marketplace, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    body = {"activity": "newInstance", "businessId": "b", **ORDER, "padding": "x" * 5000}
    response = marketplace.v2_post("/saas", body)
    assert response.status_code == 200
    assert response.json["resultCode"] == "000002"
    assert signed_by(response, BASIC_KEY)
    with app.app_context():
        assert rows_other_than_the_call_log() == 0


def test_complete_provisioning_command(app, marketplace, runner, use_provisioner):
    use_provisioner("tests.provisioners:SlowProvisioner")
    buy(marketplace)
    output = runner.invoke(args=["market", "complete-provisioning", BUSINESS_ID]).output
    assert output == f"{BUSINESS_ID}: active\n"
    unknown = runner.invoke(args=["market", "complete-provisioning", "nothing"])
    assert unknown.exit_code != 0 and "no instance nothing" in unknown.output
