"""The open-API client against the mock gateway: real HTTPS on loopback, real signatures."""

import json
import logging
import socket
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from app.marketplace.client import (
    CHINA_FALLBACK_API_BASE,
    INTERNATIONAL_API_BASE,
    QUERY_ORDER_PATH,
    USAGE_DATA_PATH,
    USAGE_TIME_FORMAT,
    MarketplaceClient,
    MarketplaceError,
    usage_record,
)
from app.marketplace.commands import usage_push_command
from app.marketplace.mock_api import MOCK_AK, MOCK_SK, MOCK_USAGE_KEY, MockOpenApi
from app.security import canonical_usage_body, compute_usage_signature, sign_apig_request
from tests.marketplace import BASIC_KEY

# open-api.md, 查询订单: the real mock-order answer, values exact.
SPEC_MOCKPERIODYEARNEW = """
{"resultCode":"MKT.0000","resultMsg":"Success","orderInfo":{"orderId":"MOCKPERIODYEARNEW","orderType":"NEW","createTime":"20241121090846",
 "orderLine":[{"orderLineId":"MOCKPERIODYEARNEW-000001","chargingMode":"PERIOD","periodType":"year","periodNumber":1,"expireTime":"20251121235959",
   "productInfo":[{"productId":"OFFI846204237451911168","skuCode":"0a4d1578-5295-46a7-92d4-7c803dccc51d","linearValue":50,"productName":"MOCK测试商品,测试规格,基础版,包周期"}],
   "extendParams":[{"name":"emailDomainName","value":"test.xxxx.com"},{"name":"ip","value":"127.0.0.1"}],"currency":"100","currencyAfterDiscount":"100"}],
 "buyerInfo":{"mobilePhone":"18688888888","email":null,"customerId":"459bbbec25d24749b2eb83be37b602a8","customerName":"mock_user_01","customerRealName":"测试用户1","customerType":0,"userId":null,"userName":null},
 "extendParams":[]}}
"""

# The debug orders of open-api.md with the order type and charging mode each stands for.
MOCK_ORDERS = {
    "MOCKPERIODYEARNEW": ("NEW", "PERIOD"),
    "MOCKONETIMENEW": ("NEW", "ONE_TIME"),
    "MOCKONDEMAND": ("NEW", "ON_DEMAND"),
    "MOCKONDEMANDPKG": ("NEW", "ON_DEMAND_PKG"),
    "MOCKPERIODDAYTRIAL": ("TRIAL", "PERIOD"),
    "MOCKMONTYTRIALTOFORMAL": ("TRIAL_TO_FORMAL", "PERIOD"),
    "MOCKMONTYUNSUBSCRIBE": ("UNSUBSCRIBE", "PERIOD"),
    "MOCKMONTYRENEW": ("RENEW", "PERIOD"),
    "MOCKMONTYCHANGE": ("CHANGE", "PERIOD"),
}

INSTANCE_ID = "7f141bf1-aec8-4859-8323-fb3a8ad50721"


@pytest.fixture
def mock_api():
    with MockOpenApi() as mock:
        yield mock


@pytest.fixture
def open_api(mock_api):
    return client_for(mock_api)


def client_for(mock, **overrides) -> MarketplaceClient:
    settings = {
        "ak": MOCK_AK,
        "sk": MOCK_SK,
        "base_url": mock.base_url,
        "usage_key": mock.usage_key,
        "ca_bundle": mock.ca_bundle,
        **overrides,
    }
    return MarketplaceClient(settings.pop("ak"), settings.pop("sk"), **settings)


def unused_port() -> int:
    """Return a loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def last_hour() -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=1), end


def hourly_record(metering_sn=None, value="1.5", instance_id=INSTANCE_ID, hours_ago=0) -> dict:
    begin, end = last_hour()
    shift = timedelta(hours=hours_ago)
    return usage_record(instance_id, value, begin - shift, end - shift, metering_sn=metering_sn)


def send_signed(mock, method, path, body=b"", headers=None, *, sk=MOCK_SK, sdk_date=None):
    """Send a call signed by hand, for what the client will not send."""
    url = mock.base_url + path
    signed = sign_apig_request(
        method,
        url,
        {"Content-Type": "application/json", **(headers or {})},
        body,
        MOCK_AK,
        sk,
        sdk_date=sdk_date,
    )
    return requests.request(
        method, url, data=body, headers=signed, verify=mock.ca_bundle, timeout=5
    )


def send_usage_by_hand(mock, records) -> requests.Response:
    """Push records past the client's checks, correctly signed, to see the mock's answer."""
    body = canonical_usage_body({"usage_records": records})
    headers = {
        "signature": compute_usage_signature(mock.usage_key, "1709690865879", "n-1", body),
        "ts": "1709690865879",
        "nonce": "n-1",
    }
    return send_signed(mock, "POST", USAGE_DATA_PATH, body.encode(), headers)


# --- query order --------------------------------------------------------------------------------


@pytest.mark.parametrize("order_id", MOCK_ORDERS)
def test_query_order_answers_each_mock_order(open_api, order_id):
    order = open_api.query_order(order_id, f"{order_id}-000001")

    order_type, charging_mode = MOCK_ORDERS[order_id]
    assert order["orderId"] == order_id
    assert order["orderType"] == order_type
    [line] = order["orderLine"]
    assert line["orderLineId"] == f"{order_id}-000001"
    assert line["chargingMode"] == charging_mode
    assert line["productInfo"][0]["productId"]
    assert order["buyerInfo"]["customerId"]


def test_mock_period_year_new_answer_is_the_spec_json(open_api, mock_api):
    spec_answer = json.loads(SPEC_MOCKPERIODYEARNEW)

    query = "?orderId=MOCKPERIODYEARNEW&orderLineId=MOCKPERIODYEARNEW-000001"
    response = send_signed(mock_api, "GET", QUERY_ORDER_PATH + query)

    assert response.status_code == 200
    assert response.json() == spec_answer
    assert open_api.query_order("MOCKPERIODYEARNEW") == spec_answer["orderInfo"]


def test_query_order_sends_a_signed_get_with_the_ids(open_api, mock_api):
    open_api.query_order("MOCKMONTYRENEW", "MOCKMONTYRENEW-000001")

    [seen] = mock_api.requests
    assert (seen.method, seen.path) == ("GET", QUERY_ORDER_PATH)
    assert seen.query == "orderId=MOCKMONTYRENEW&orderLineId=MOCKMONTYRENEW-000001"
    assert seen.headers["Authorization"].startswith(
        f"SDK-HMAC-SHA256 Access={MOCK_AK}, SignedHeaders=content-type;host;x-sdk-date, "
    )


def test_added_order_is_answered(open_api, mock_api):
    order = {"orderId": "CS2211181819B4LVS", "orderType": "NEW", "orderLine": []}
    mock_api.add_order(order)

    assert open_api.query_order("CS2211181819B4LVS") == order


def test_unknown_order_fails_with_the_api_code(open_api):
    with pytest.raises(MarketplaceError) as failure:
        open_api.query_order("CS0000000000NOSUCH")

    assert (failure.value.code, failure.value.status) == ("MKT.0100", 500)


def test_order_line_of_another_order_fails(open_api):
    with pytest.raises(MarketplaceError) as failure:
        open_api.query_order("MOCKONDEMAND", "MOCKONETIMENEW-000001")

    assert failure.value.code == "MKT.0100"


def test_order_id_longer_than_64_is_refused_before_sending(open_api, mock_api):
    with pytest.raises(ValueError):
        open_api.query_order("X" * 65)
    assert mock_api.requests == []


# --- the gateway's AK/SK check --------------------------------------------------------------------


def test_wrong_sk_fails_with_apig_0303(mock_api):
    with pytest.raises(MarketplaceError) as failure:
        client_for(mock_api, sk="not-the-sk").query_order("MOCKPERIODYEARNEW")

    assert (failure.value.code, failure.value.status) == ("APIG.0303", 401)
    assert "verify aksk signature fail" in failure.value.message


def test_unknown_ak_fails_with_apig_0303(mock_api):
    with pytest.raises(MarketplaceError) as failure:
        client_for(mock_api, ak="someone-else").query_order("MOCKPERIODYEARNEW")

    assert failure.value.code == "APIG.0303"
    assert "app not found" in failure.value.message


def test_old_sdk_date_fails(mock_api):
    sixteen_minutes_ago = (datetime.now(UTC) - timedelta(minutes=16)).strftime("%Y%m%dT%H%M%SZ")

    response = send_signed(
        mock_api, "GET", QUERY_ORDER_PATH + "?orderId=MOCKONDEMAND", sdk_date=sixteen_minutes_ago
    )

    assert response.status_code == 401
    assert response.json()["error_code"] == "APIG.0303"
    assert "signature expired" in response.json()["error_msg"]


def test_sdk_date_within_15_minutes_passes(mock_api):
    fourteen_minutes_ago = (datetime.now(UTC) - timedelta(minutes=14)).strftime("%Y%m%dT%H%M%SZ")

    response = send_signed(
        mock_api, "GET", QUERY_ORDER_PATH + "?orderId=MOCKONDEMAND", sdk_date=fourteen_minutes_ago
    )

    assert response.json()["resultCode"] == "MKT.0000"


def test_query_changed_after_signing_fails(mock_api):
    url = mock_api.base_url + QUERY_ORDER_PATH
    headers = {"Content-Type": "application/json"}
    signed = sign_apig_request("GET", url + "?orderId=MOCKONDEMAND", headers, b"", MOCK_AK, MOCK_SK)

    response = requests.get(
        url + "?orderId=MOCKPERIODYEARNEW", headers=signed, verify=mock_api.ca_bundle, timeout=5
    )

    assert response.status_code == 401
    assert "verify aksk signature fail" in response.json()["error_msg"]


def test_unsigned_call_fails(mock_api):
    response = requests.get(
        mock_api.base_url + QUERY_ORDER_PATH + "?orderId=MOCKONDEMAND",
        verify=mock_api.ca_bundle,
        timeout=5,
    )

    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0303")


# --- transport: TLS and the fallback host ---------------------------------------------------------


def test_self_signed_server_is_refused_without_its_ca_bundle(mock_api):
    with pytest.raises(MarketplaceError) as failure:
        client_for(mock_api, ca_bundle=None).query_order("MOCKPERIODYEARNEW")

    assert failure.value.code is None
    assert "TLS verification failed" in failure.value.message
    assert mock_api.requests == []


def test_unreachable_primary_host_falls_back(mock_api, caplog):
    unreachable = f"https://127.0.0.1:{unused_port()}"
    client = client_for(mock_api, base_url=unreachable, fallback_url=mock_api.base_url)

    order = client.query_order("MOCKPERIODYEARNEW")

    assert order["orderId"] == "MOCKPERIODYEARNEW"
    [seen] = mock_api.requests
    # Host is a signed header, so the retry was signed again for the fallback host.
    assert seen.headers["Host"] == mock_api.base_url.removeprefix("https://")
    assert "unreachable" in caplog.text


def test_error_answer_is_not_retried_at_the_fallback_host(mock_api):
    # Were the fallback taken, this would end in a connection error, not the API's code.
    unreachable = f"https://127.0.0.1:{unused_port()}"
    client = client_for(mock_api, fallback_url=unreachable)

    with pytest.raises(MarketplaceError) as failure:
        client.query_order("CS0000000000NOSUCH")

    assert failure.value.code == "MKT.0100"
    assert len(mock_api.requests) == 1


def test_both_hosts_unreachable_fails_with_a_marketplace_error():
    client = MarketplaceClient(
        MOCK_AK,
        MOCK_SK,
        f"https://127.0.0.1:{unused_port()}",
        fallback_url=f"https://127.0.0.1:{unused_port()}",
    )

    with pytest.raises(MarketplaceError) as failure:
        client.query_order("MOCKPERIODYEARNEW")

    assert (failure.value.code, failure.value.status) == (None, None)


def test_only_the_china_host_has_a_fallback():
    assert MarketplaceClient("ak", "sk").fallback_url == CHINA_FALLBACK_API_BASE
    assert MarketplaceClient("ak", "sk", INTERNATIONAL_API_BASE).fallback_url is None


def test_from_config_needs_ak_and_sk():
    assert MarketplaceClient.from_config({"KOOGALLERY_AK": "ak", "KOOGALLERY_SK": None}) is None
    assert MarketplaceClient.from_config({}) is None


def test_from_config_signs_usage_with_the_first_basic_key(mock_api):
    config = {
        "KOOGALLERY_AK": MOCK_AK,
        "KOOGALLERY_SK": MOCK_SK,
        "KOOGALLERY_API_BASE": mock_api.base_url,
        "KOOGALLERY_API_CA_BUNDLE": mock_api.ca_bundle,
        "KOOGALLERY_BASIC_KEY": (MOCK_USAGE_KEY, "an-older-key"),
    }

    answer = MarketplaceClient.from_config(config).push_usage([hourly_record()])

    assert answer["error_code"] == "MKT.0000"


# --- usage push -----------------------------------------------------------------------------------


def test_push_usage_is_accepted_and_stored(open_api, mock_api):
    records = [hourly_record(), hourly_record(value="2", hours_ago=1)]

    answer = open_api.push_usage(records)

    assert answer == {"error_code": "MKT.0000", "error_msg": "success"}
    assert mock_api.usage_records == records


def test_push_usage_sends_the_bytes_it_signed(open_api, mock_api):
    records = [hourly_record(metering_sn="a1b2c3d4")]

    open_api.push_usage(records)

    [seen] = mock_api.requests
    assert (seen.method, seen.path) == ("POST", USAGE_DATA_PATH)
    assert seen.body == canonical_usage_body({"usage_records": records}).encode()
    assert seen.headers["Ts"].isdigit() and len(seen.headers["Ts"]) == 13
    assert 0 < len(seen.headers["Nonce"]) <= 64
    expected_signature = compute_usage_signature(
        MOCK_USAGE_KEY, seen.headers["Ts"], seen.headers["Nonce"], seen.body.decode()
    )
    assert seen.headers["Signature"] == expected_signature


def test_resent_metering_sn_is_stored_once(open_api, mock_api):
    record = hourly_record(metering_sn="sn-resent")

    open_api.push_usage([record])
    open_api.push_usage([record])

    assert mock_api.usage_records == [record]


def test_wrong_usage_key_fails_with_mkt_0102(mock_api):
    client = client_for(mock_api, usage_key="not-the-basic-key")

    with pytest.raises(MarketplaceError) as failure:
        client.push_usage([hourly_record()])

    assert failure.value.code == "MKT.0102"
    assert mock_api.usage_records == []


def test_1001_records_raise_before_sending(open_api, mock_api):
    records = [hourly_record(metering_sn=f"sn-{n}") for n in range(1001)]

    with pytest.raises(ValueError, match="at most 1000"):
        open_api.push_usage(records)
    assert mock_api.requests == []


def test_1000_records_are_accepted(open_api, mock_api):
    records = [hourly_record(metering_sn=f"sn-{n}") for n in range(1000)]

    open_api.push_usage(records)

    assert len(mock_api.usage_records) == 1000


def test_duplicate_metering_sn_in_a_batch_raises_before_sending(open_api, mock_api):
    records = [hourly_record(metering_sn="sn-1"), hourly_record(metering_sn="sn-1", hours_ago=1)]

    with pytest.raises(ValueError, match="repeated"):
        open_api.push_usage(records)
    assert mock_api.requests == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("usage_value", "0"),
        ("usage_value", "-1"),
        ("usage_value", "1.23456"),
        ("usage_value", "1e3"),
        ("usage_value", 1.5),
        ("instance_id", "i" * 65),
        ("metering_sn", ""),
        ("metering_sn", "s" * 65),
        ("begin_time", "2026-11-29T08:00:00Z"),
        ("end_time", "20261129T0900Z"),
        ("record_time", None),
        ("relate_pkg_instance", 42),
        ("usage_unit", "hour"),
    ],
)
def test_record_breaking_a_rule_raises_before_sending(open_api, mock_api, field, value):
    record = hourly_record()
    record[field] = value

    with pytest.raises(ValueError):
        open_api.push_usage([record])
    assert mock_api.requests == []


def test_begin_after_end_raises(open_api):
    record = hourly_record()
    record["begin_time"], record["end_time"] = record["end_time"], record["begin_time"]

    with pytest.raises(ValueError, match="after end_time"):
        open_api.push_usage([record])


def test_empty_batch_raises(open_api):
    with pytest.raises(ValueError):
        open_api.push_usage([])


def test_usage_older_than_21_days_fails_with_mkt_9004(open_api, mock_api):
    with pytest.raises(MarketplaceError) as failure:
        open_api.push_usage([hourly_record(hours_ago=22 * 24)])

    assert failure.value.code == "MKT.9004"
    assert mock_api.usage_records == []


def test_unknown_instance_fails_with_mkt_9001_when_instances_are_known(open_api, mock_api):
    mock_api.known_instances = {INSTANCE_ID}

    open_api.push_usage([hourly_record()])
    with pytest.raises(MarketplaceError) as failure:
        open_api.push_usage([hourly_record(instance_id="not-an-instance")])

    assert failure.value.code == "MKT.9001"
    assert len(mock_api.usage_records) == 1


def test_mock_refuses_more_than_1000_records_with_mkt_9003(mock_api):
    records = [hourly_record(metering_sn=f"sn-{n}") for n in range(1001)]

    response = send_usage_by_hand(mock_api, records)

    assert response.json()["error_code"] == "MKT.9003"


def test_mock_refuses_an_invalid_usage_value_with_mkt_9002(mock_api):
    record = {**hourly_record(), "usage_value": "1.23456"}

    response = send_usage_by_hand(mock_api, [record])

    assert response.json()["error_code"] == "MKT.9002"
    assert mock_api.usage_records == []


def test_mock_refuses_a_body_changed_after_signing_with_mkt_0102(mock_api):
    body = canonical_usage_body({"usage_records": [hourly_record(value="99")]})
    headers = {
        "signature": compute_usage_signature(mock_api.usage_key, "1709690865879", "n-1", body),
        "ts": "1709690865879",
        "nonce": "n-1",
    }
    tampered = body.replace('"99"', '"98"').encode()

    response = send_signed(mock_api, "POST", USAGE_DATA_PATH, tampered, headers)

    assert response.json()["error_code"] == "MKT.0102"


# --- usage_record ---------------------------------------------------------------------------------


def test_usage_record_formats_times_in_utc_and_generates_a_metering_sn():
    beijing = timezone(timedelta(hours=8))
    begin = datetime(2026, 11, 29, 16, 0, tzinfo=beijing)

    record = usage_record(
        "inst-1",
        Decimal("1.50"),
        begin,
        begin + timedelta(hours=1),
        record_time=datetime(2026, 11, 29, 9, 10, tzinfo=UTC),
        relate_pkg_instance="pkg-1",
    )

    assert record == {
        "instance_id": "inst-1",
        "record_time": "20261129T091000Z",
        "begin_time": "20261129T080000Z",
        "end_time": "20261129T090000Z",
        "usage_value": "1.50",
        "metering_sn": record["metering_sn"],
        "relate_pkg_instance": "pkg-1",
    }
    assert len(record["metering_sn"]) == 36
    assert usage_record("i", 3, begin, begin)["metering_sn"] != record["metering_sn"]


def test_usage_record_keeps_a_given_metering_sn_and_integer_value():
    begin, end = last_hour()

    record = usage_record("inst-1", 3, begin, end, metering_sn="sn-7")

    assert (record["usage_value"], record["metering_sn"]) == ("3", "sn-7")


def test_usage_record_refuses_naive_times_and_floats():
    with pytest.raises(ValueError, match="timezone-aware"):
        usage_record("inst-1", "1", datetime(2026, 11, 29, 8), datetime(2026, 11, 29, 9))
    begin, end = last_hour()
    with pytest.raises(ValueError, match="string, an int or a Decimal"):
        usage_record("inst-1", 0.1, begin, end)


# --- logging --------------------------------------------------------------------------------------


def test_credentials_never_reach_the_log(caplog):
    caplog.set_level(logging.DEBUG)
    ak, sk, usage_key = "AKLOGCHECK7Q2W9E4R", "SKLOGCHECKsecret8d7f6g5h4j3k", "USAGEKEYLOGCHECK3n4m"
    wrong_sk = "WRONGSKLOGCHECK1a2s3d"
    with MockOpenApi(ak=ak, sk=sk, usage_key=usage_key) as mock:
        settings = {"usage_key": usage_key, "ca_bundle": mock.ca_bundle}
        client = MarketplaceClient(ak, sk, mock.base_url, **settings)
        client.query_order("MOCKPERIODYEARNEW")
        client.push_usage([hourly_record()])
        with pytest.raises(MarketplaceError):
            MarketplaceClient(ak, wrong_sk, mock.base_url, **settings).query_order("MOCKONDEMAND")
        with pytest.raises(MarketplaceError):
            MarketplaceClient(ak, sk, mock.base_url, **{**settings, "usage_key": "k2"}).push_usage(
                [hourly_record()]
            )
        unreachable = f"https://127.0.0.1:{unused_port()}"
        fallback = MarketplaceClient(ak, sk, unreachable, fallback_url=mock.base_url, **settings)
        fallback.query_order("MOCKONDEMAND")
        signatures = [
            value
            for seen in mock.requests
            for name, value in seen.headers.items()
            if name in ("Authorization", "Signature")
        ]

    logged = caplog.text + "".join(repr(record.args) for record in caplog.records)
    assert "unreachable" in logged  # the capture does see the client's log
    assert len(signatures) == 7
    for secret in (ak, sk, usage_key, wrong_sk, *signatures):
        assert secret not in logged
    assert "Signature=" not in logged


# --- the usage-push command -----------------------------------------------------------------------


@pytest.fixture
def configured_app(app, monkeypatch):
    """Point the app's open-API settings at a mock that knows the app's basic key."""
    with MockOpenApi(usage_key=BASIC_KEY) as mock:
        monkeypatch.setitem(app.config, "KOOGALLERY_AK", MOCK_AK)
        monkeypatch.setitem(app.config, "KOOGALLERY_SK", MOCK_SK)
        monkeypatch.setitem(app.config, "KOOGALLERY_API_BASE", mock.base_url)
        monkeypatch.setitem(app.config, "KOOGALLERY_API_CA_BUNDLE", mock.ca_bundle)
        yield mock


def record_options(value: str, begin: datetime, end: datetime) -> list[str]:
    times = (begin.strftime(USAGE_TIME_FORMAT), end.strftime(USAGE_TIME_FORMAT))
    return ["--instance", INSTANCE_ID, "--value", value, "--begin", times[0], "--end", times[1]]


def test_usage_push_command_pushes_one_record(runner, configured_app):
    begin, end = last_hour()
    options = [*record_options("1.5", begin, end), "--sn", "sn-cli-1", "--related-package", "p-1"]

    result = runner.invoke(usage_push_command, options)

    assert result.exit_code == 0, result.output
    assert "MKT.0000 ok" in result.output
    assert configured_app.usage_records == [
        {
            "instance_id": INSTANCE_ID,
            "record_time": configured_app.usage_records[0]["record_time"],
            "begin_time": begin.strftime(USAGE_TIME_FORMAT),
            "end_time": end.strftime(USAGE_TIME_FORMAT),
            "usage_value": "1.5",
            "metering_sn": "sn-cli-1",
            "relate_pkg_instance": "p-1",
        }
    ]


def test_usage_push_command_pushes_a_file(runner, configured_app, tmp_path):
    records = [hourly_record(metering_sn="sn-f1"), hourly_record(metering_sn="sn-f2", hours_ago=1)]
    records_file = tmp_path / "records.json"
    records_file.write_text(json.dumps(records))

    result = runner.invoke(usage_push_command, ["--file", str(records_file)])

    assert result.exit_code == 0, result.output
    assert "2 usage record(s) accepted" in result.output
    assert configured_app.usage_records == records


def test_usage_push_command_fails_with_the_error_code(runner, app, configured_app, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_BASIC_KEY", ("not-the-basic-key",))

    result = runner.invoke(usage_push_command, record_options("1", *last_hour()))

    assert result.exit_code != 0
    assert "MKT.0102" in result.output
    assert configured_app.usage_records == []


def test_usage_push_command_refuses_an_invalid_value(runner, configured_app):
    result = runner.invoke(usage_push_command, record_options("0", *last_hour()))

    assert result.exit_code != 0
    assert "greater than 0" in result.output
    assert configured_app.requests == []


def test_usage_push_command_needs_ak_and_sk(runner, app, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_AK", None)

    result = runner.invoke(usage_push_command, record_options("1", *last_hour()))

    assert result.exit_code != 0
    assert "KOOGALLERY_AK" in result.output
