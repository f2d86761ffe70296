"""SaaS V1 (GET /saas): every activity, signed with the Key值 over the query string."""

import base64
import json

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import CallLog, Instance
from app.security import encrypt_field
from tests import provisioners
from tests.marketplace import BASIC_KEY
from tests.saas_helpers import (
    decrypted_credentials,
    events,
    instance,
    last_history,
    rows_other_than_the_call_log,
    signed_by,
    stored_credentials,
)
from tests.test_auth import A1_QUERY

PURCHASE = {
    "businessId": "61e834ba-7b97-4418-b8f7-e5345137278c",
    "customerId": "68cbc86abc2018ab880d92f36422fa0e",
    "orderId": "CS1906666666ABCDE",
    "productId": "00301-666666-0--0",
    "expireTime": "20200727153156",
    "testFlag": "1",
}
INSTANCE_ID = PURCHASE["businessId"]
# The spec's saasExtendParams example (spec saas.md, V1 newInstance).
EXTEND_PARAMS = (
    "W3sibmFtZSI6ImlkTnVtIiwidmFsdWUiOiIzNTIyNTU1NTU1NTU2NTYifSx7Im5hbWUiOiJ1c2VyTmFtZSIsInZhbHVl"
    "IjoiaHVhd2VpMTIzIn0seyJuYW1lIjoiY3VzdEVtYWlsIiwidmFsdWUiOiIxMjNAaHVhd2VpLmNvbSJ9XQ=="
)


def test_huawei_example_url_a1_gets_an_instance(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_BASIC_KEY", ("xxxxxxx",))
    response = client.get(f"/saas?{A1_QUERY}")
    answer = response.json
    assert answer["resultCode"] == "000000" and signed_by(response, "xxxxxxx")
    assert answer["instanceId"] == INSTANCE_ID
    assert answer["appInfo"]["frontEndUrl"]
    with app.app_context():
        created = instance(INSTANCE_ID)
        assert (created.state, created.protocol, created.test) == ("active", "v1", True)
        assert created.purchase_key == "v1:CS1906666666ABCDE:00301-666666-0--0"
        # V1 expireTime is Beijing time.
        assert created.expires_at.strftime("%Y%m%d%H%M%S") == "20200727073156"
        assert decrypted_credentials(answer["appInfo"], "xxxxxxx") == stored_credentials(
            INSTANCE_ID
        )


def test_resend_returns_the_same_instance_and_credentials(app, marketplace):
    first = marketplace.saas_v1("newInstance", **PURCHASE).json
    resend = marketplace.saas_v1("newInstance", **{**PURCHASE, "businessId": "second-b"}).json
    assert resend["instanceId"] == first["instanceId"] == INSTANCE_ID
    assert decrypted_credentials(resend["appInfo"], BASIC_KEY) == decrypted_credentials(
        first["appInfo"], BASIC_KEY
    )
    with app.app_context():
        assert len(db.session.scalars(select(Instance)).all()) == 1


def test_on_demand_order_with_two_products_gets_two_instances(app, marketplace):
    first = marketplace.saas_v1("newInstance", **PURCHASE).json["instanceId"]
    second = marketplace.saas_v1(
        "newInstance", **{**PURCHASE, "businessId": "b2", "productId": "00301-666666-0--1"}
    ).json["instanceId"]
    assert first != second


@pytest.mark.parametrize("trial_flag", ["1", "0", None])
def test_trial_flag_one_zero_or_absent_all_work(app, marketplace, trial_flag):
    params = {**PURCHASE, "trialFlag": trial_flag} if trial_flag else PURCHASE
    assert marketplace.saas_v1("newInstance", **params).json["resultCode"] == "000000"
    with app.app_context():
        assert instance(INSTANCE_ID).trial is (trial_flag == "1")


def test_customer_phone_and_email_are_decrypted_for_the_hook_only(
    app, marketplace, use_provisioner
):
    use_provisioner("tests.provisioners:RecordingProvisioner")
    phone = encrypt_field(BASIC_KEY, "15905222222", 256)
    email = encrypt_field(BASIC_KEY, "张三@例子.com", 256)
    params = {**PURCHASE, "mobilePhone": phone, "email": email, "saasExtendParams": EXTEND_PARAMS}
    assert marketplace.saas_v1("newInstance", **params).json["resultCode"] == "000000"
    purchase = provisioners.calls[0][1]
    assert (purchase.mobile_phone, purchase.email) == ("15905222222", "张三@例子.com")
    assert purchase.extend_params == {
        "idNum": "352255555555656",
        "userName": "huawei123",
        "custEmail": "123@huawei.com",
    }
    assert "15905222222" not in repr(purchase)
    with app.app_context():
        stored = json.dumps(
            [
                [str(getattr(row, c.name)) for c in row.__table__.columns]
                for row in db.session.scalars(select(Instance)).all()
                + db.session.scalars(select(CallLog)).all()
            ]
        )
    for secret in ("15905222222", "张三", phone, email, "352255555555656", "123@huawei.com"):
        assert secret not in stored


def test_inbound_encrypt_type_two_decrypts_with_aes_128(
    app, marketplace, monkeypatch, use_provisioner
):
    use_provisioner("tests.provisioners:RecordingProvisioner")
    monkeypatch.setitem(app.config, "KOOGALLERY_INBOUND_ENCRYPT_TYPE", "2")
    phone = encrypt_field(BASIC_KEY, "13800138000", 128)
    assert marketplace.saas_v1("newInstance", **PURCHASE, mobilePhone=phone).json["resultCode"] == (
        "000000"
    )
    assert provisioners.calls[0][1].mobile_phone == "13800138000"


def test_undecryptable_phone_answers_000002_and_writes_nothing(app, marketplace):
    phone = encrypt_field("another-key", "15905222222", 256)
    answer = marketplace.saas_v1("newInstance", **PURCHASE, mobilePhone=phone).json
    assert answer["resultCode"] == "000002"
    with app.app_context():
        assert rows_other_than_the_call_log() == 0


def test_v1_credentials_are_encrypted_even_when_v2_sends_them_in_clear(
    app, marketplace, monkeypatch
):
    monkeypatch.setitem(app.config, "KOOGALLERY_ENCRYPT_CREDENTIALS", False)
    answer = marketplace.saas_v1("newInstance", **PURCHASE).json
    assert answer["encryptType"] == "1"
    with app.app_context():
        assert decrypted_credentials(answer["appInfo"], BASIC_KEY) == stored_credentials(
            INSTANCE_ID
        )


def test_refresh_with_and_without_product_id_and_trial_to_formal(app, marketplace):
    marketplace.saas_v1("newInstance", **{**PURCHASE, "trialFlag": "1"})
    base = {"instanceId": INSTANCE_ID, "orderId": "CS-RENEW-1", "expireTime": "20211231235959"}
    assert marketplace.saas_v1("refreshInstance", **base).json["resultCode"] == "000000"
    changed = {
        **base,
        "orderId": "CS-RENEW-2",
        "productId": "00301-666666-0--2",
        "trialToFormal": "1",
    }
    assert marketplace.saas_v1("refreshInstance", **changed).json["resultCode"] == "000000"
    with app.app_context():
        renewed = instance(INSTANCE_ID)
        assert (renewed.product_id, renewed.trial) == ("00301-666666-0--2", False)
        assert events(INSTANCE_ID) == ["created", "provisioned", "renewed", "renewed"]


def test_expire_freezes_and_status_normal_unfreezes(app, marketplace):
    marketplace.saas_v1("newInstance", **PURCHASE)
    expire = marketplace.saas_v1(
        "expireInstance", instanceId=INSTANCE_ID, orderId="CS1906666666ABCDE"
    )
    assert expire.json["resultCode"] == "000000" and signed_by(expire, BASIC_KEY)
    with app.app_context():
        assert instance(INSTANCE_ID).state == "frozen"
        assert last_history(INSTANCE_ID).order_id == "CS1906666666ABCDE"
    normal = marketplace.saas_v1("instanceStatus", instanceId=INSTANCE_ID, instanceStatus="NORMAL")
    assert normal.json["resultCode"] == "000000"
    freeze = marketplace.saas_v1("instanceStatus", instanceId=INSTANCE_ID, instanceStatus="FREEZE")
    assert freeze.json["resultCode"] == "000000"
    with app.app_context():
        assert instance(INSTANCE_ID).state == "frozen"
        assert events(INSTANCE_ID)[2:] == ["frozen", "unfrozen", "frozen"]


def test_upgrade_changes_the_specification_once(app, marketplace, use_provisioner):
    use_provisioner("tests.provisioners:RecordingProvisioner")
    marketplace.saas_v1("newInstance", **PURCHASE, skuCode="basic", amount="5")
    upgrade = {
        "instanceId": INSTANCE_ID,
        "orderId": "CS-UPGRADE",
        "skuCode": "pro",
        "productId": "00301-666666-0--0",
        "amount": "50",
    }
    for _ in range(2):
        assert marketplace.saas_v1("upgrade", **upgrade).json["resultCode"] == "000000"
    with app.app_context():
        upgraded = instance(INSTANCE_ID)
        assert (upgraded.sku_code, upgraded.spec) == ("pro", {"amount": "50"})
        assert last_history(INSTANCE_ID).changes["sku_code"] == ["basic", "pro"]
        assert events(INSTANCE_ID).count("upgraded") == 1
    assert [name for name, _ in provisioners.calls].count("upgrade") == 1


def test_query_instance_batch(app, marketplace):
    marketplace.saas_v1("newInstance", **PURCHASE)
    response = marketplace.saas_v1("queryInstance", instanceId=f"{INSTANCE_ID},unknown")
    answer = response.json
    assert answer["resultCode"] == "000000" and answer["encryptType"] == "1"
    assert [entry["instanceId"] for entry in answer["info"]] == [INSTANCE_ID]


def test_full_lifecycle(app, marketplace):
    steps = [
        ("newInstance", PURCHASE, "000000"),
        ("queryInstance", {"instanceId": INSTANCE_ID}, "000000"),
        (
            "refreshInstance",
            {"instanceId": INSTANCE_ID, "orderId": "R1", "expireTime": "20211231235959"},
            "000000",
        ),
        ("expireInstance", {"instanceId": INSTANCE_ID, "orderId": "CS1906666666ABCDE"}, "000000"),
        ("instanceStatus", {"instanceId": INSTANCE_ID, "instanceStatus": "NORMAL"}, "000000"),
        (
            "upgrade",
            {"instanceId": INSTANCE_ID, "orderId": "U1", "skuCode": "pro", "productId": "p2"},
            "000000",
        ),
        ("releaseInstance", {"instanceId": INSTANCE_ID, "orderId": "CS1906666666ABCDE"}, "000000"),
        ("releaseInstance", {"instanceId": INSTANCE_ID, "orderId": "CS1906666666ABCDE"}, "000000"),
        (
            "refreshInstance",
            {"instanceId": INSTANCE_ID, "orderId": "R2", "expireTime": "20221231235959"},
            "000003",
        ),
    ]
    for activity, params, code in steps:
        response = marketplace.saas_v1(activity, **params)
        assert (activity, response.json["resultCode"]) == (activity, code)
        assert signed_by(response, BASIC_KEY)
    with app.app_context():
        assert events(INSTANCE_ID) == [
            "created",
            "provisioned",
            "renewed",
            "frozen",
            "unfrozen",
            "upgraded",
            "released",
        ]


BAD_INPUT = [
    ("unknown activity", {"activity": "dropInstance"}, "000002"),
    (
        "newInstance without customerId",
        {"activity": "newInstance", **{k: v for k, v in PURCHASE.items() if k != "customerId"}},
        "000002",
    ),
    (
        "newInstance without productId",
        {"activity": "newInstance", **{k: v for k, v in PURCHASE.items() if k != "productId"}},
        "000002",
    ),
    ("blank orderId", {"activity": "newInstance", **PURCHASE, "orderId": ""}, "000002"),
    ("bad chargingMode", {"activity": "newInstance", **PURCHASE, "chargingMode": "7"}, "000002"),
    ("bad periodNumber", {"activity": "newInstance", **PURCHASE, "periodNumber": "one"}, "000002"),
    (
        "bad saasExtendParams",
        {"activity": "newInstance", **PURCHASE, "saasExtendParams": "not-base64!"},
        "000002",
    ),
    (
        "bad instanceStatus",
        {"activity": "instanceStatus", "instanceId": "i", "instanceStatus": "PAUSED"},
        "000002",
    ),
    (
        "refresh without expireTime",
        {"activity": "refreshInstance", "instanceId": "i", "orderId": "o"},
        "000002",
    ),
    (
        "expire unknown",
        {"activity": "expireInstance", "instanceId": "nothing", "orderId": "o"},
        "000003",
    ),
    (
        "upgrade without skuCode",
        {"activity": "upgrade", "instanceId": "i", "orderId": "o", "productId": "p"},
        "000002",
    ),
    (
        "query of 101 ids",
        {"activity": "queryInstance", "instanceId": ",".join(str(n) for n in range(101))},
        "000002",
    ),
]


@pytest.mark.parametrize(
    ("case", "params", "code"), BAD_INPUT, ids=[case for case, *_ in BAD_INPUT]
)
def test_bad_input_gets_the_documented_code_and_writes_nothing(
    app, marketplace, case, params, code
):
    response = marketplace.v1_get("/saas", params)
    assert response.status_code == 200
    assert response.json["resultCode"] == code
    assert signed_by(response, BASIC_KEY)
    with app.app_context():
        assert rows_other_than_the_call_log() == 0


def test_extend_params_example_decodes():
    decoded = json.loads(base64.b64decode(EXTEND_PARAMS))
    assert decoded[0] == {"name": "idNum", "value": "352255555555656"}
