"""V2 learns what was bought from query order, against a mock gateway that checks signatures."""

import json

from sqlalchemy import select

from app.extensions import db
from app.models import CallLog, Instance, OrderNotification
from tests import provisioners
from tests.marketplace import BASIC_KEY, GENERAL_KEY
from tests.saas_helpers import instance, last_history, signed_by


def buy(marketplace, order_id, business_id="b-1"):
    return marketplace.saas_v2(
        "newInstance", orderId=order_id, orderLineId=f"{order_id}-000001", businessId=business_id
    )


def test_new_instance_is_filled_from_query_order(app, marketplace, open_api, use_provisioner):
    use_provisioner("tests.provisioners:RecordingProvisioner")
    answer = buy(marketplace, "MOCKPERIODYEARNEW").json
    assert answer["resultCode"] == "000000"
    assert open_api.requests[-1].path == "/api/mkp-openapi-public/global/v1/order/query"
    purchase = provisioners.calls[0][1]
    assert purchase.mobile_phone == "18688888888"  # handed to the hook, from buyerInfo
    assert purchase.order_details["orderType"] == "NEW"
    with app.app_context():
        bought = instance("b-1")
        assert (bought.product_id, bought.sku_code) == (
            "OFFI846204237451911168",
            "0a4d1578-5295-46a7-92d4-7c803dccc51d",
        )
        assert (bought.charging_mode, bought.period_type, bought.period_number) == (
            "PERIOD",
            "year",
            1,
        )
        assert bought.expire_time == "20251121235959"
        assert bought.customer_id == "459bbbec25d24749b2eb83be37b602a8"
        assert bought.spec == {"linearValue": "50"}
        rows = [bought, *db.session.scalars(select(CallLog))]
        stored = json.dumps([[str(getattr(r, c.name)) for c in r.__table__.columns] for r in rows])
        assert "18688888888" not in stored


def order_queries(open_api) -> int:
    return sum(seen.path.endswith("/order/query") for seen in open_api.requests)


def test_a_resend_for_a_purchase_already_set_up_skips_query_order(app, marketplace, open_api):
    assert buy(marketplace, "MOCKPERIODYEARNEW").json["resultCode"] == "000000"
    assert order_queries(open_api) == 1
    resent = buy(marketplace, "MOCKPERIODYEARNEW", business_id="b-2").json
    assert (resent["resultCode"], resent["instanceId"]) == ("000000", "b-1")
    assert order_queries(open_api) == 1


def test_a_resend_that_retries_a_failed_setup_asks_query_order_again(
    app, marketplace, open_api, use_provisioner
):
    use_provisioner("tests.provisioners:FailingOnceProvisioner")
    assert buy(marketplace, "MOCKPERIODYEARNEW").json["resultCode"] != "000000"
    resent = buy(marketplace, "MOCKPERIODYEARNEW", business_id="b-2").json
    assert (resent["resultCode"], resent["instanceId"]) == ("000000", "b-1")
    # The retried setup gets the order's details again.
    assert order_queries(open_api) == 2


def test_trial_order_marks_the_instance_as_trial(app, marketplace, open_api):
    assert buy(marketplace, "MOCKPERIODDAYTRIAL").json["resultCode"] == "000000"
    with app.app_context():
        assert instance("b-1").trial is True


def test_query_order_failure_does_not_fail_the_purchase(app, marketplace, open_api):
    answer = buy(marketplace, "CS-NOT-KNOWN-TO-THE-MARKETPLACE").json
    assert answer["resultCode"] == "000000"
    with app.app_context():
        assert instance("b-1").product_id is None


def test_upgrade_takes_the_new_specification_from_query_order(app, marketplace, open_api):
    instance_id = buy(marketplace, "MOCKPERIODYEARNEW").json["instanceId"]
    open_api.add_order(
        {
            "orderId": "CS-CHANGE",
            "orderType": "CHANGE",
            "createTime": "20241201090000",
            "orderLine": [
                {
                    "orderLineId": "CS-CHANGE-000001",
                    "chargingMode": "PERIOD",
                    "productInfo": [
                        {"productId": "OFFI-PRO", "skuCode": "sku-pro", "linearValue": 200}
                    ],
                }
            ],
        }
    )
    answer = marketplace.saas_v2(
        "upgradeInstance",
        instanceId=instance_id,
        orderId="CS-CHANGE",
        orderLineId="CS-CHANGE-000001",
    ).json
    assert answer["resultCode"] == "000000"
    with app.app_context():
        upgraded = instance(instance_id)
        assert (upgraded.sku_code, upgraded.product_id, upgraded.spec) == (
            "sku-pro",
            "OFFI-PRO",
            {"linearValue": "200"},
        )
        assert last_history(instance_id).changes["sku_code"][1] == "sku-pro"


# ------------------------------------------------------------------------------ orderNotify

NOTIFY = {
    "activity": "orderNotify",
    "orderId": "MOCKPERIODYEARNEW",
    "orderLineId": "MOCKPERIODYEARNEW-000001",
    "testFlag": "1",
}


def notify(marketplace, key=GENERAL_KEY, **body):
    response = marketplace.v2_post("/notify", {**NOTIFY, **body}, key=key)
    response.close()  # the order details are fetched once the answer has been sent
    return response


def notifications():
    return db.session.scalars(select(OrderNotification)).all()


def test_order_notify_is_stored_once_and_its_order_fetched(app, marketplace, open_api):
    first = notify(marketplace)
    resend = notify(marketplace)
    assert first.json["resultCode"] == resend.json["resultCode"] == "000000"
    assert signed_by(first, GENERAL_KEY)
    with app.app_context():
        (stored,) = notifications()
        assert (stored.order_id, stored.test, stored.order_type) == (
            "MOCKPERIODYEARNEW",
            True,
            "NEW",
        )
        assert stored.fetched_at is not None
        assert stored.details["orderLine"][0]["productInfo"][0]["skuCode"]
        # The buyer's phone number is not kept.
        assert "18688888888" not in json.dumps(stored.details)
    queries = [seen for seen in open_api.requests if seen.path.endswith("/order/query")]
    assert len(queries) == 1  # the resend found the details already fetched


def test_order_notify_without_ak_sk_is_stored_without_details(app, marketplace):
    assert notify(marketplace).json["resultCode"] == "000000"
    with app.app_context():
        (stored,) = notifications()
        assert stored.details is None and stored.fetched_at is None


def test_order_notify_fetch_failure_is_recorded(app, marketplace, open_api):
    notify(marketplace, orderId="CS-UNKNOWN", orderLineId="CS-UNKNOWN-1")
    with app.app_context():
        (stored,) = notifications()
        assert stored.fetched_at is None and stored.fetch_error


def test_order_notify_signed_with_the_basic_key_is_refused(app, marketplace):
    response = notify(marketplace, key=BASIC_KEY)
    assert response.json["resultCode"] == "000001"
    with app.app_context():
        assert notifications() == []


def test_order_notify_without_test_flag_is_refused(app, marketplace):
    body = {name: value for name, value in NOTIFY.items() if name != "testFlag"}
    response = marketplace.v2_post("/notify", body, key=GENERAL_KEY)
    assert response.json["resultCode"] == "000002"
    with app.app_context():
        assert notifications() == []
        assert db.session.scalars(select(Instance)).all() == []


def test_market_usage_push_sends_a_signed_record(app, runner, open_api):
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    begin = end - timedelta(hours=1)
    fmt = "%Y%m%dT%H%M%SZ"
    result = runner.invoke(
        args=[
            "market",
            "usage-push",
            "--instance",
            "instance-1",
            "--value",
            "1.5",
            "--begin",
            begin.strftime(fmt),
            "--end",
            end.strftime(fmt),
            "--sn",
            "sn-cli-1",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "MKT.0000" in result.output
    assert any(record["metering_sn"] == "sn-cli-1" for record in open_api.usage_records)
