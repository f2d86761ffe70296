"""The mock identity domain and unified login page: real HTTPS on loopback, spec answers exact."""

import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app.marketplace.mock_idp import MockIdentityProvider

ROOT = Path(__file__).resolve().parent.parent

APP_ID = "app-1"
CLIENT_ID = "client-1"
CLIENT_SECRET = "secret-1"
CALLBACK_URL = "https://isv.example.com/oauth/callback?next=%2Fhome"
OTHER_APP_ID = "app-2"
OTHER_CLIENT_ID = "client-2"
OTHER_CLIENT_SECRET = "secret-2"
TENANT_ID = "68cbc86abc2018ab880d92f36422fa0e"

# kit-oauth.md §2, token endpoint: the documented error answers, exact.
INVALID_CODE = {"error": "invalid_grant", "error_description": "Invalid authorization code"}
BAD_CLIENT_CREDENTIALS = {"error": "invalid_client", "error_description": "Bad client credentials"}
CLIENT_ID_MISMATCH = {"error": "invalid_client", "error_description": "Client ID mismatch"}


class IdentityDomain:
    """Drive the mock as a browser and an OAuth client would, so tests read like the flow."""

    def __init__(self, mock: MockIdentityProvider):
        self.mock = mock

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(
            self.mock.base_url + path,
            verify=self.mock.ca_bundle,
            allow_redirects=False,
            timeout=5,
            **kwargs,
        )

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(
            self.mock.base_url + path,
            verify=self.mock.ca_bundle,
            allow_redirects=False,
            timeout=5,
            **kwargs,
        )

    def log_in(self, user: str = f"{TENANT_ID}/alice", app_id: str = APP_ID) -> requests.Response:
        """Pick `user` on the unified login page of `app_id`."""
        return self.post("/unified-login/", data={"appId": app_id, "user": user})

    def code(self, app_id: str = APP_ID) -> str:
        """Log in and return the code the callback receives."""
        return parse_qs(urlsplit(self.log_in(app_id=app_id).headers["Location"]).query)["code"][0]

    def exchange(
        self, code: str, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET, **extra
    ) -> requests.Response:
        """Exchange a code at the token endpoint, credentials in the form."""
        form = {
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": client_secret,
            "code": code,
            **extra,
        }
        return self.post("/api/v1/oauth2/token", data=form)

    def refresh(self, refresh_token: str) -> requests.Response:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        return self.post("/api/v1/oauth2/token", data=form)

    def userinfo(self, access_token: str) -> requests.Response:
        return self.get(
            "/api/v1/oauth2/userinfo",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )

    def tokens(self) -> dict:
        """Log in and exchange the code; return the token answer."""
        response = self.exchange(self.code())
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def mock():
    with MockIdentityProvider() as mock:
        mock.register_app(APP_ID, CLIENT_ID, CLIENT_SECRET, CALLBACK_URL)
        mock.register_app(OTHER_APP_ID, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, CALLBACK_URL)
        mock.add_user(
            TENANT_ID,
            "alice",
            name="Alice Zhang",
            role="admin",
            email="alice@example.com",
            organization_code="00000001",
            organization_name="产品部",
        )
        mock.add_user(TENANT_ID, "bob", name="Bob <Li>")
        yield mock


@pytest.fixture
def idp(mock):
    return IdentityDomain(mock)


def test_login_page_lists_registered_users(idp):
    response = idp.get("/unified-login/", params={"ind": "UNOP", "appId": APP_ID})

    assert response.status_code == 200
    assert '<select name="user"' in response.text
    assert f'<option value="{TENANT_ID}/alice">Alice Zhang</option>' in response.text
    assert f'<option value="{TENANT_ID}/bob">Bob &lt;Li&gt;</option>' in response.text
    assert 'id="login"' in response.text


def test_login_page_of_unknown_app_is_not_found(idp):
    assert idp.get("/unified-login/", params={"appId": "nobody"}).status_code == 404
    assert idp.log_in(app_id="nobody").status_code == 404


def test_login_page_without_app_id_reads_the_fragment(idp):
    # A browser drops the real page's fragment (#/portal-login?…&appId=…) from the request.
    response = idp.get("/unified-login/")

    assert response.status_code == 200
    assert "location.hash" in response.text
    assert "<select" not in response.text


def test_login_url_serves_the_form(mock, idp):
    response = requests.get(mock.login_url(APP_ID), verify=mock.ca_bundle, timeout=5)

    assert response.status_code == 200
    assert 'id="login"' in response.text


def test_login_redirects_to_callback_with_code_and_tenant(idp):
    response = idp.log_in()

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https",
        "isv.example.com",
        "/oauth/callback",
    )
    query = parse_qs(location.query)
    assert query["tenant"] == [TENANT_ID]
    assert len(query["code"][0]) >= 16
    assert query["next"] == ["/home"]


def test_login_with_unknown_user_fails(idp):
    assert idp.log_in(user=f"{TENANT_ID}/mallory").status_code == 400


def test_code_exchange_answers_the_documented_fields(idp):
    response = idp.exchange(idp.code())

    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 7200
    assert answer["scope"] == "get_user_info"
    assert response.headers["Cache-Control"] == "no-store"


def test_code_works_once(idp):
    code = idp.code()

    assert idp.exchange(code).status_code == 200
    second = idp.exchange(code)
    assert second.status_code == 400
    assert second.json() == INVALID_CODE


def test_unknown_code_is_invalid_grant(idp):
    response = idp.exchange("not-a-code")

    assert response.status_code == 400
    assert response.json() == INVALID_CODE


def test_expired_code_is_invalid_grant(mock, idp):
    mock.authorization_code_lifetime = 0
    response = idp.exchange(idp.code())

    assert response.status_code == 400
    assert response.json() == INVALID_CODE


def test_wrong_secret_is_bad_client_credentials(idp):
    response = idp.exchange(idp.code(), client_secret="wrong")

    assert response.status_code == 401
    assert response.json() == BAD_CLIENT_CREDENTIALS


def test_unknown_client_is_bad_client_credentials(idp):
    response = idp.exchange(idp.code(), client_id="nobody")

    assert response.status_code == 401
    assert response.json() == BAD_CLIENT_CREDENTIALS


def test_code_presented_with_wrong_secret_is_consumed(idp):
    code = idp.code()
    idp.exchange(code, client_secret="wrong")

    assert idp.exchange(code).json() == INVALID_CODE


def test_code_of_another_client_is_client_id_mismatch(idp):
    code = idp.code(app_id=OTHER_APP_ID)
    response = idp.exchange(code, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)

    assert response.status_code == 401
    assert response.json() == CLIENT_ID_MISMATCH


def test_registered_redirect_uri_is_accepted_and_another_refused(idp):
    assert idp.exchange(idp.code(), redirect_uri=CALLBACK_URL).status_code == 200

    response = idp.exchange(idp.code(), redirect_uri="https://evil.example.com/cb")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_basic_auth_client_credentials_are_accepted(mock, idp):
    response = idp.post(
        "/api/v1/oauth2/token",
        data={"grant_type": "authorization_code", "code": idp.code()},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )

    assert response.status_code == 200, response.text
    assert mock.token_requests[-1].client_auth == "client_secret_basic"


def test_basic_auth_with_wrong_secret_is_bad_client_credentials(idp):
    response = idp.post(
        "/api/v1/oauth2/token",
        data={"grant_type": "authorization_code", "code": idp.code()},
        auth=(CLIENT_ID, "wrong"),
    )

    assert response.status_code == 401
    assert response.json() == BAD_CLIENT_CREDENTIALS
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_unsupported_grant_type(idp):
    response = idp.post(
        "/api/v1/oauth2/token",
        data={"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )

    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}


def test_userinfo_answers_the_user_behind_the_token(idp):
    response = idp.userinfo(idp.tokens()["access_token"])

    assert response.status_code == 200
    info = response.json()
    assert info.pop("id") == info.pop("userId")
    assert info == {
        "userName": "alice",
        "name": "Alice Zhang",
        "email": "alice@example.com",
        "mobile": None,
        "role": "admin",
        "organizationName": "产品部",
        "organizationCode": "00000001",
        "projectName": None,
        "tenant": TENANT_ID,
    }


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", "Basic Y2xpZW50LTE6c2VjcmV0LTE="]
)
def test_userinfo_refuses_a_missing_or_unknown_token(idp, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = idp.get("/api/v1/oauth2/userinfo", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.json()["error_description"]


def test_expired_access_token_is_refused_and_refresh_rotates(mock, idp):
    mock.access_token_lifetime = 1
    tokens = idp.tokens()
    assert tokens["expires_in"] == 1
    assert idp.userinfo(tokens["access_token"]).status_code == 200

    time.sleep(1.2)
    expired = idp.userinfo(tokens["access_token"])
    assert expired.status_code == 401
    assert expired.json()["error"] == "unauthorized"

    refreshed = idp.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200
    new_tokens = refreshed.json()
    assert new_tokens["refresh_token"] != tokens["refresh_token"]
    assert idp.userinfo(new_tokens["access_token"]).json()["userName"] == "alice"

    reused = idp.refresh(tokens["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert idp.refresh(new_tokens["refresh_token"]).status_code == 200


def test_refresh_revokes_the_previous_access_token(idp):
    tokens = idp.tokens()
    assert idp.refresh(tokens["refresh_token"]).status_code == 200

    assert idp.userinfo(tokens["access_token"]).status_code == 401


def test_expired_refresh_token_is_invalid_grant():
    with MockIdentityProvider(refresh_token_lifetime=0) as short_lived:
        short_lived.register_app(APP_ID, CLIENT_ID, CLIENT_SECRET, CALLBACK_URL)
        short_lived.add_user(TENANT_ID, "alice", name="Alice Zhang")
        idp = IdentityDomain(short_lived)

        response = idp.refresh(idp.tokens()["refresh_token"])

    assert response.status_code == 400
    assert response.json() == INVALID_CODE


def test_refresh_by_another_client_is_client_id_mismatch(idp):
    form = {
        "grant_type": "refresh_token",
        "refresh_token": idp.tokens()["refresh_token"],
        "client_id": OTHER_CLIENT_ID,
        "client_secret": OTHER_CLIENT_SECRET,
    }
    response = idp.post("/api/v1/oauth2/token", data=form)

    assert response.status_code == 401
    assert response.json() == CLIENT_ID_MISMATCH


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/oauth2/token"),
        ("GET", "/api/v1/oauth2/userinfo"),
        ("GET", "/api/v1/logout?redirect_url=https://isv.example.com/"),
    ],
)
def test_down_identity_domain_answers_503(mock, idp, method, path):
    access_token = idp.tokens()["access_token"]
    mock.down = True

    response = requests.request(
        method,
        mock.base_url + path,
        headers={"Authorization": f"Bearer {access_token}"},
        verify=mock.ca_bundle,
        allow_redirects=False,
        timeout=5,
    )

    assert response.status_code == 503
    mock.down = False
    assert idp.userinfo(access_token).status_code == 200


def test_logout_redirects_and_is_recorded(mock, idp):
    target = "https://isv.example.com/logged-out?from=idp"
    response = idp.get("/api/v1/logout", params={"redirect_url": target})

    assert response.status_code == 302
    assert response.headers["Location"] == target
    assert mock.logouts == [target]


@pytest.mark.parametrize("target", ["javascript:alert(1)", "/relative", ""])
def test_logout_refuses_a_non_http_redirect(mock, idp, target):
    response = idp.get("/api/v1/logout", params={"redirect_url": target})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert mock.logouts == []


def test_token_requests_are_recorded_without_secrets_in_their_repr(mock, idp):
    idp.exchange(idp.code())
    idp.exchange("not-a-code", client_secret="wrong")

    first, second = mock.token_requests
    assert (first.grant_type, first.client_id, first.client_auth, first.status) == (
        "authorization_code",
        CLIENT_ID,
        "client_secret_post",
        200,
    )
    assert (second.status, second.error) == (401, "invalid_client")
    assert second.form["client_secret"] == "wrong"
    assert CLIENT_SECRET not in repr(first)
    assert "wrong" not in repr(second)


def test_module_runs_in_the_foreground_with_a_demo_app():
    process = subprocess.Popen(
        [sys.executable, "-m", "app.marketplace.mock_idp"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("Demo user:"):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        settings = dict(
            line.strip().split("=", 1) for line in lines if line.startswith("  KOOGALLERY_")
        )
        ca_bundle = next(line.split("=", 1)[1].strip() for line in lines if "CA_BUNDLE" in line)
        login_url = next(line.split(": ", 1)[1].strip() for line in lines if "Login page" in line)

        response = requests.get(login_url, verify=ca_bundle, timeout=5)
        assert response.status_code == 200
        assert 'id="login"' in response.text
        assert settings["KOOGALLERY_LOGIN_URL"].endswith("/unified-login/")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert not Path(ca_bundle).exists()
