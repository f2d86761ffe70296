"""The combined mock marketplace: open API and identity domain on one loopback HTTPS port."""

import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from dotenv import dotenv_values

from app.marketplace.client import MarketplaceClient, usage_record
from app.marketplace.mock_api import (
    LICENSE_ACTIVATE_PATH,
    LICENSE_HEARTBEAT_PATH,
    MOCK_AK,
    MOCK_SK,
    MOCK_USAGE_KEY,
)
from app.marketplace.mock_marketplace import (
    DEFAULT_PORT,
    DEMO_APP_ID,
    DEMO_LICENSE_CODE,
    MockMarketplace,
    default_usage_key,
    describe,
    env_settings,
    mock_command,
    register_demo,
)
from app.security import sign_apig_request
from tests.marketplace import BASIC_KEY

ROOT = Path(__file__).resolve().parent.parent

APP_ID = "app-1"
CLIENT_ID = "client-1"
CLIENT_SECRET = "secret-1"
CALLBACK_URL = "https://isv.example.com/oauth/callback"
TENANT_ID = "68cbc86abc2018ab880d92f36422fa0e"
INSTANCE_ID = "7f141bf1-aec8-4859-8323-fb3a8ad50721"

LICENSE_CODE = "LC-7Q2M-9XKD-4HBA"
PRODUCT_ID = "OFFI846204237451911168"
ORDER_ID = "CS2411210908NYXAB"
EXPIRE_TIME = "20991231235959"

# open-api.md, License 授权码 2.0: the documented result codes.
SUCCESS = "92020000"
INVALID_PARAM = "92020002"
NOT_RECEIVED = "92020004"
NOT_FOUND = "92020005"


class LicensedSoftware:
    """Call the 授权码 2.0 APIs as the merchant's installed software does: APIG-signed POSTs."""

    def __init__(self, mock: MockMarketplace, sk: str = MOCK_SK):
        self.mock = mock
        self.sk = sk

    def post(self, path: str, body: bytes) -> requests.Response:
        url = self.mock.base_url + path
        headers = sign_apig_request(
            "POST", url, {"Content-Type": "application/json"}, body, MOCK_AK, self.sk
        )
        return requests.post(url, data=body, headers=headers, verify=self.mock.ca_bundle, timeout=5)

    def activate(self, code: str, **extra) -> requests.Response:
        return self.post(LICENSE_ACTIVATE_PATH, json.dumps({"license": code, **extra}).encode())

    def heartbeat(self, code: str) -> requests.Response:
        return self.post(LICENSE_HEARTBEAT_PATH, json.dumps({"license": code}).encode())


@pytest.fixture
def mock_marketplace():
    with MockMarketplace() as mock:
        mock.identity.register_app(APP_ID, CLIENT_ID, CLIENT_SECRET, CALLBACK_URL)
        mock.identity.add_user(TENANT_ID, "alice", name="Alice Zhang", role="admin")
        mock.open_api.add_license_code(
            LICENSE_CODE,
            product_id=PRODUCT_ID,
            order_id=ORDER_ID,
            amount=5,
            expire_time=EXPIRE_TIME,
        )
        yield mock


@pytest.fixture
def merchant(mock_marketplace):
    """The merchant server's open-API client, pointed at the combined mock."""
    return MarketplaceClient(
        MOCK_AK,
        MOCK_SK,
        mock_marketplace.base_url,
        usage_key=MOCK_USAGE_KEY,
        ca_bundle=mock_marketplace.ca_bundle,
    )


@pytest.fixture
def software(mock_marketplace):
    return LicensedSoftware(mock_marketplace)


def get(mock: MockMarketplace, path: str, **kwargs) -> requests.Response:
    return requests.get(
        mock.base_url + path, verify=mock.ca_bundle, allow_redirects=False, timeout=5, **kwargs
    )


def post(mock: MockMarketplace, path: str, **kwargs) -> requests.Response:
    return requests.post(
        mock.base_url + path, verify=mock.ca_bundle, allow_redirects=False, timeout=5, **kwargs
    )


# --- One server, two mocks ------------------------------------------------------------------------


def test_client_queries_a_mock_order(merchant):
    order = merchant.query_order("MOCKPERIODYEARNEW", "MOCKPERIODYEARNEW-000001")

    assert order["orderType"] == "NEW"
    assert order["orderLine"][0]["productInfo"][0]["productId"] == PRODUCT_ID


def test_client_pushes_usage(merchant, mock_marketplace):
    now = datetime.now(UTC).replace(microsecond=0)
    record = usage_record(INSTANCE_ID, "1.5", now - timedelta(hours=1), now)

    answer = merchant.push_usage([record])

    assert answer == {"error_code": "MKT.0000", "error_msg": "success"}
    assert mock_marketplace.open_api.usage_records == [record]


def test_identity_part_serves_the_login_page(mock_marketplace):
    response = get(mock_marketplace, "/unified-login/", params={"ind": "UNOP", "appId": APP_ID})

    assert response.status_code == 200
    assert f'<option value="{TENANT_ID}/alice">Alice Zhang</option>' in response.text
    # The form posts back to a path on whatever host served the page.
    assert 'action="/unified-login/"' in response.text


def test_identity_part_logs_in_and_exchanges_the_code(mock_marketplace):
    login = post(
        mock_marketplace, "/unified-login/", data={"appId": APP_ID, "user": f"{TENANT_ID}/alice"}
    )
    assert login.status_code == 302
    callback = parse_qs(urlsplit(login.headers["Location"]).query)
    assert callback["tenant"] == [TENANT_ID]

    token = post(
        mock_marketplace,
        "/api/v1/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"][0],
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert token.status_code == 200, token.text
    userinfo = get(
        mock_marketplace,
        "/api/v1/oauth2/userinfo",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert userinfo.json()["userName"] == "alice"
    assert userinfo.json()["tenant"] == TENANT_ID


def test_logout_goes_to_the_identity_part(mock_marketplace):
    response = get(mock_marketplace, "/api/v1/logout", params={"redirect_url": CALLBACK_URL})

    assert response.status_code == 302
    assert mock_marketplace.identity.logouts == [CALLBACK_URL]


def test_login_url_is_on_the_combined_server(mock_marketplace):
    url = mock_marketplace.login_url(APP_ID)

    assert url == f"{mock_marketplace.base_url}/unified-login/?ind=UNOP&appId={APP_ID}"
    assert requests.get(url, verify=mock_marketplace.ca_bundle, timeout=5).status_code == 200


@pytest.mark.parametrize("path", ["/", "/healthz", "/unified-loginx", "/api/v1/other"])
def test_unknown_path_is_a_json_404(mock_marketplace, path):
    response = get(mock_marketplace, path)

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


def test_unknown_open_api_path_is_the_gateways_404(mock_marketplace):
    response = get(mock_marketplace, "/api/mkp-openapi-public/global/v1/nothing")

    assert response.status_code == 404
    assert response.json()["error_code"] == "APIG.0101"


def test_inner_mocks_are_not_started_and_share_the_address(mock_marketplace):
    assert mock_marketplace.open_api._server is None
    assert mock_marketplace.identity._server is None
    assert mock_marketplace.open_api.base_url == mock_marketplace.base_url
    assert mock_marketplace.identity.ca_bundle == mock_marketplace.ca_bundle


def test_stop_deletes_the_certificate():
    with MockMarketplace() as mock:
        ca_bundle = mock.ca_bundle
        assert Path(ca_bundle).exists()

    assert not Path(ca_bundle).exists()
    assert mock.open_api.base_url is None
    assert mock.identity.base_url is None


# --- License 授权码 2.0 --------------------------------------------------------------------------


def test_activate_answers_the_code_info_as_a_json_string(software, mock_marketplace):
    response = software.activate(LICENSE_CODE, real_effect_time="20241121090846")

    assert response.status_code == 200
    answer = response.json()
    assert answer["error_code"] == SUCCESS
    assert answer["error_msg"]
    info = answer["data"]["license_code_info"]
    assert isinstance(info, str)
    assert json.loads(info) == {
        "status": "ALIVE",
        "expire_time": EXPIRE_TIME,
        "product_id": PRODUCT_ID,
        "order_id": ORDER_ID,
        "amount": 5,
    }
    assert mock_marketplace.open_api.activations == [
        {"license": LICENSE_CODE, "real_effect_time": "20241121090846"}
    ]


def test_activate_without_real_effect_time_is_recorded_without_it(software, mock_marketplace):
    assert software.activate(LICENSE_CODE).json()["error_code"] == SUCCESS

    assert mock_marketplace.open_api.activations == [
        {"license": LICENSE_CODE, "real_effect_time": None}
    ]


def test_heartbeat_of_a_live_code_is_alive(software):
    response = software.heartbeat(LICENSE_CODE)

    assert response.status_code == 200
    assert response.json()["error_code"] == SUCCESS
    assert response.json()["data"] == {"status": "ALIVE"}


@pytest.mark.parametrize("call", ["activate", "heartbeat"])
def test_unknown_code_fails_with_92020005(software, mock_marketplace, call):
    response = getattr(software, call)("LC-NOT-ISSUED")

    assert response.status_code == 400
    assert response.json()["error_code"] == NOT_FOUND
    assert mock_marketplace.open_api.activations == []


@pytest.mark.parametrize("call", ["activate", "heartbeat"])
def test_code_not_received_by_the_buyer_fails_with_92020004(software, mock_marketplace, call):
    mock_marketplace.open_api.add_license_code(
        "LC-PENDING", product_id=PRODUCT_ID, order_id=ORDER_ID, received=False
    )

    response = getattr(software, call)("LC-PENDING")

    assert response.json()["error_code"] == NOT_RECEIVED
    assert mock_marketplace.open_api.activations == []


def test_heartbeat_after_expire_time_is_expired(software, mock_marketplace):
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%d%H%M%S")
    mock_marketplace.open_api.add_license_code(
        "LC-OLD", product_id=PRODUCT_ID, order_id=ORDER_ID, expire_time=yesterday
    )

    assert software.heartbeat("LC-OLD").json()["data"] == {"status": "EXPIRED"}
    info = json.loads(software.activate("LC-OLD").json()["data"]["license_code_info"])
    assert info["status"] == "EXPIRED"


def test_heartbeat_of_a_released_code_is_released(software, mock_marketplace):
    mock_marketplace.open_api.add_license_code(
        "LC-GONE", product_id=PRODUCT_ID, order_id=ORDER_ID, status="RELEASED"
    )

    assert software.heartbeat("LC-GONE").json()["data"] == {"status": "RELEASED"}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'["LC-7Q2M-9XKD-4HBA"]',
        b"{}",
        b'{"license": ""}',
        b'{"license": 42}',
        json.dumps({"license": "L" * 65}).encode(),
        json.dumps({"license": LICENSE_CODE, "real_effect_time": "2024-11-21"}).encode(),
        json.dumps({"license": LICENSE_CODE, "real_effect_time": "20241341090846"}).encode(),
    ],
)
def test_bad_body_fails_with_92020002(software, mock_marketplace, body):
    response = software.post(LICENSE_ACTIVATE_PATH, body)

    assert response.status_code == 400
    assert response.json()["error_code"] == INVALID_PARAM
    assert mock_marketplace.open_api.activations == []


@pytest.mark.parametrize("path", [LICENSE_ACTIVATE_PATH, LICENSE_HEARTBEAT_PATH])
def test_wrong_sk_is_refused_by_the_gateway(mock_marketplace, path):
    software = LicensedSoftware(mock_marketplace, sk="wrong-sk")

    response = software.post(path, json.dumps({"license": LICENSE_CODE}).encode())

    assert response.status_code == 401
    assert response.json()["error_code"] == "APIG.0303"
    assert "verify aksk signature fail" in response.json()["error_msg"]
    assert mock_marketplace.open_api.activations == []


def test_add_license_code_defaults_to_alive_for_a_year(mock_marketplace):
    entry = mock_marketplace.open_api.add_license_code(
        "LC-NEW", product_id=PRODUCT_ID, order_id=ORDER_ID
    )

    expires = datetime.strptime(entry["expire_time"], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    assert timedelta(days=364) < expires - datetime.now(UTC) <= timedelta(days=365)
    assert entry == {
        "product_id": PRODUCT_ID,
        "order_id": ORDER_ID,
        "amount": 1,
        "expire_time": entry["expire_time"],
        "status": "ALIVE",
        "received": True,
    }
    assert mock_marketplace.open_api.license_codes["LC-NEW"] == entry


@pytest.mark.parametrize("overrides", [{"expire_time": "2099-12-31"}, {"status": "FROZEN"}])
def test_add_license_code_refuses_values_outside_the_spec(mock_marketplace, overrides):
    with pytest.raises(ValueError):
        mock_marketplace.open_api.add_license_code(
            "LC-BAD", product_id=PRODUCT_ID, order_id=ORDER_ID, **overrides
        )


# --- Running it: the printed settings and the flask command ---------------------------------------


def test_env_settings_point_the_merchant_server_at_the_mock(mock_marketplace):
    settings = dotenv_values(stream=io.StringIO(env_settings(mock_marketplace)))
    base_url = mock_marketplace.base_url

    assert settings == {
        "KOOGALLERY_AK": MOCK_AK,
        "KOOGALLERY_SK": MOCK_SK,
        "KOOGALLERY_API_BASE": base_url,
        "KOOGALLERY_API_CA_BUNDLE": mock_marketplace.ca_bundle,
        "KOOGALLERY_IDP_CA_BUNDLE": mock_marketplace.ca_bundle,
        "KOOGALLERY_LOGIN_URL": f"{base_url}/unified-login/?ind=UNOP&appId={{appId}}",
        "KOOGALLERY_BASIC_KEY": MOCK_USAGE_KEY,
    }
    # The app fills in {appId} with str.format (app/oauth/routes.py).
    login_url = settings["KOOGALLERY_LOGIN_URL"].format(appId=APP_ID)
    assert login_url == mock_marketplace.login_url(APP_ID)


def test_env_settings_leave_out_a_basic_key_the_app_already_has(mock_marketplace):
    settings = dotenv_values(
        stream=io.StringIO(env_settings(mock_marketplace, include_basic_key=False, app_id=APP_ID))
    )

    assert "KOOGALLERY_BASIC_KEY" not in settings
    assert settings["KOOGALLERY_APP_ID"] == APP_ID


def test_env_settings_need_a_started_mock():
    with pytest.raises(RuntimeError):
        env_settings(MockMarketplace())


def test_printed_text_names_the_demo_login_and_code():
    with MockMarketplace() as mock:
        demo = register_demo(mock)
        text = describe(mock, demo=demo)

        assert f"CA bundle: {mock.ca_bundle}" in text
        assert f"KOOGALLERY_APP_ID={DEMO_APP_ID}" in text
        assert f"Login page: {mock.login_url(DEMO_APP_ID)}" in text
        assert DEMO_LICENSE_CODE in text
        assert "MOCKPERIODYEARNEW" in text
        assert LicensedSoftware(mock).heartbeat(DEMO_LICENSE_CODE).json()["data"] == {
            "status": "ALIVE"
        }


def test_default_usage_key_lets_the_apps_own_pushes_verify(app, monkeypatch):
    assert default_usage_key(app.config) == BASIC_KEY
    now = datetime.now(UTC).replace(microsecond=0)
    with MockMarketplace(usage_key=default_usage_key(app.config)) as mock:
        monkeypatch.setitem(app.config, "KOOGALLERY_AK", MOCK_AK)
        monkeypatch.setitem(app.config, "KOOGALLERY_SK", MOCK_SK)
        monkeypatch.setitem(app.config, "KOOGALLERY_API_BASE", mock.base_url)
        monkeypatch.setitem(app.config, "KOOGALLERY_API_CA_BUNDLE", mock.ca_bundle)
        client = MarketplaceClient.from_config(app.config)

        client.push_usage([usage_record(INSTANCE_ID, "2", now - timedelta(hours=1), now)])

        assert len(mock.open_api.usage_records) == 1


def test_default_usage_key_without_a_basic_key_is_the_mock_key():
    assert default_usage_key({"KOOGALLERY_BASIC_KEY": ()}) == MOCK_USAGE_KEY


def test_mock_command_takes_a_port_and_a_usage_key(runner):
    options = {option.name: option for option in mock_command.params}

    assert mock_command.name == "mock"
    assert options["port"].default == DEFAULT_PORT
    result = runner.invoke(mock_command, ["--help"])
    assert result.exit_code == 0
    assert "--usage-key" in result.output


def test_module_runs_in_the_foreground_with_a_demo():
    process = subprocess.Popen(
        [sys.executable, "-m", "app.marketplace.mock_marketplace", "--port", "0", "--demo"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("Demo 授权码:"):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        env_lines = "".join(line for line in lines if line.startswith("KOOGALLERY_"))
        settings = dotenv_values(stream=io.StringIO(env_lines))
        ca_bundle = settings["KOOGALLERY_API_CA_BUNDLE"]

        client = MarketplaceClient(
            settings["KOOGALLERY_AK"],
            settings["KOOGALLERY_SK"],
            settings["KOOGALLERY_API_BASE"],
            ca_bundle=ca_bundle,
        )
        assert client.query_order("MOCKONDEMAND")["orderLine"][0]["chargingMode"] == "ON_DEMAND"
        login_url = settings["KOOGALLERY_LOGIN_URL"].format(appId=DEMO_APP_ID)
        login_page = requests.get(login_url, verify=settings["KOOGALLERY_IDP_CA_BUNDLE"], timeout=5)
        assert login_page.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert not Path(ca_bundle).exists()
