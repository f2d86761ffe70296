"""OAuth login against the mock identity domain, through the Flask test client."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import LoginSession
from tests.joint_operation import APP_ID, TENANT_ID, sync_tenant, use_identity_provider, user

CALLBACK = "http://localhost/oauth/callback"


@pytest.fixture
def joint(app, marketplace, identity_provider, monkeypatch):
    use_identity_provider(app, identity_provider, monkeypatch)
    users = [
        user("alice", "Alice 张", role="admin"),
        user("bob", "Bob"),
        user("carol", "Carol", enable="false"),
    ]
    return sync_tenant(app, marketplace, identity_provider, CALLBACK, users)


def authorization_code(joint, user_name: str) -> str:
    """Pick a user on the mock unified login page and return the code it redirects with."""
    idp = joint.idp
    answer = requests.post(
        f"{idp.base_url}/unified-login/",
        data={"appId": APP_ID, "user": joint.login_value(user_name)},
        verify=idp.ca_bundle,
        allow_redirects=False,
        timeout=5,
    )
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["tenant"] == [TENANT_ID]
    return query["code"][0]


def log_in(client, joint, user_name: str):
    code = authorization_code(joint, user_name)
    return client.get(f"/oauth/callback?code={code}&tenant={TENANT_ID}")


def test_login_redirects_to_the_unified_login_page_with_the_app_id(client, joint):
    response = client.get("/oauth/login")
    assert response.status_code == 302
    assert response.headers["Location"] == (
        f"{joint.idp.base_url}/unified-login/?ind=UNOP&appId={APP_ID}"
    )


def test_default_login_url_is_the_documented_one(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_APP_ID", "my-app")
    assert client.get("/oauth/login").headers["Location"] == (
        "https://macroverse.huaweicloud.com/unified-login/#/portal-login?ind=UNOP&appId=my-app"
    )


def test_callback_logs_in_and_the_app_sees_the_user_and_role(app, client, joint):
    response = log_in(client, joint, "alice")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    me = client.get("/oauth/me").json
    assert me == {
        "userName": "alice",
        "name": "Alice 张",
        "role": "admin",
        "orgCode": "001",
        "tenantId": TENANT_ID,
        "tenantName": "ACME 公司",
    }
    page = client.get("/").get_data(as_text=True)
    assert "Alice 张" in page and 'class="role-admin"' in page
    # The cookie carries a random id; the tokens stay in the database, sealed.
    with app.app_context():
        stored = db.session.scalars(select(LoginSession)).one()
        assert "access_token" not in stored.access_token_sealed


def test_tenant_id_parameter_spelling_is_accepted(client, joint):
    code = authorization_code(joint, "bob")
    assert client.get(f"/oauth/callback?code={code}&tenant_id={TENANT_ID}").status_code == 302
    assert client.get("/oauth/me").json["userName"] == "bob"


def test_each_login_rotates_the_session(app, client, joint):
    log_in(client, joint, "alice")
    log_in(client, joint, "bob")
    with app.app_context():
        assert len(db.session.scalars(select(LoginSession)).all()) == 1
    assert client.get("/oauth/me").json["userName"] == "bob"


def test_reused_code_is_rejected_and_reported_clearly(client, joint):
    code = authorization_code(joint, "alice")
    assert client.get(f"/oauth/callback?code={code}&tenant={TENANT_ID}").status_code == 302
    log_out(client)
    again = client.get(f"/oauth/callback?code={code}&tenant={TENANT_ID}")
    assert again.status_code == 403
    assert "expired or was already used" in again.get_data(as_text=True)
    assert client.get("/oauth/me").status_code == 401
    assert joint.idp.token_requests[-1].error == "invalid_grant"


def test_unknown_tenant_is_refused_without_calling_the_identity_domain(client, joint):
    before = len(joint.idp.token_requests)
    response = client.get("/oauth/callback?code=whatever&tenant=someone-else")
    assert response.status_code == 403 and "Unknown enterprise" in response.get_data(as_text=True)
    assert len(joint.idp.token_requests) == before


def test_disabled_user_is_refused(client, joint):
    response = log_in(client, joint, "carol")
    assert response.status_code == 403
    assert "Account disabled" in response.get_data(as_text=True)
    assert client.get("/oauth/me").status_code == 401


def test_revoked_user_is_refused_and_an_open_session_ends(client, marketplace, joint):
    log_in(client, joint, "bob")
    revoke = {
        "instanceId": "instance-0001",
        "tenantId": TENANT_ID,
        "appId": APP_ID,
        "userList": [user("bob", "Bob")],
        "flag": 3,
        "testFlag": 0,
    }
    assert marketplace.kit_post("/saas/produceAPI/v2/authSync", revoke).json["resultCode"] == (
        "000000"
    )
    assert client.get("/oauth/me").status_code == 401
    response = log_in(client, joint, "bob")
    assert response.status_code == 403 and "Not authorised" in response.get_data(as_text=True)


def test_wrong_client_secret_is_reported(client, joint):
    joint.idp.register_app(APP_ID, "client-0001", "another-secret", CALLBACK)
    response = log_in(client, joint, "alice")
    assert response.status_code == 403
    assert "credential was refused" in response.get_data(as_text=True)


def test_identity_domain_down_shows_a_page_not_a_trace(client, joint):
    code = authorization_code(joint, "alice")
    joint.idp.down = True
    response = client.get(f"/oauth/callback?code={code}&tenant={TENANT_ID}")
    assert response.status_code == 502
    text = response.get_data(as_text=True)
    assert "<h1" in text and "Traceback" not in text


def test_callback_without_code_is_refused(client, joint):
    assert client.get(f"/oauth/callback?tenant={TENANT_ID}").status_code == 400


def test_a_state_that_was_never_issued_is_refused(client, joint):
    code = authorization_code(joint, "alice")
    response = client.get(f"/oauth/callback?code={code}&tenant={TENANT_ID}&state=forged")
    assert response.status_code == 400


def test_session_survives_access_token_expiry_with_the_refresh_token(
    app, client, joint, monkeypatch
):
    monkeypatch.setitem(app.config, "KOOGALLERY_TOKEN_REFRESH_MARGIN", 0)
    joint.idp.access_token_lifetime = 1
    log_in(client, joint, "alice")
    time.sleep(1.5)
    assert client.get("/oauth/me").json["userName"] == "alice"
    grants = [request.grant_type for request in joint.idp.token_requests[-2:]]
    assert grants == ["authorization_code", "refresh_token"]
    time.sleep(1.5)
    assert client.get("/oauth/me").status_code == 200  # refreshed again, with the rotated token


def test_refresh_refused_ends_the_session(app, client, joint, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_TOKEN_REFRESH_MARGIN", 0)
    joint.idp.access_token_lifetime = 1
    log_in(client, joint, "alice")
    joint.idp.register_app(APP_ID, "client-0001", "rotated-secret", CALLBACK)
    time.sleep(1.5)
    assert client.get("/oauth/me").status_code == 401


def log_out(client):
    with client.session_transaction() as session:
        token = session.setdefault("oauth_csrf", "token-for-the-test")
    return client.post("/oauth/logout", data={"csrf_token": token})


def test_logout_needs_the_form_token_and_get_only_asks(client, joint):
    log_in(client, joint, "alice")
    assert b"Log out?" in client.get("/oauth/logout").data
    assert client.post("/oauth/logout").status_code == 400
    assert client.get("/oauth/me").status_code == 200


def test_logout_clears_the_session_and_goes_to_the_identity_domain(client, joint):
    log_in(client, joint, "alice")
    response = log_out(client)
    assert response.status_code == 302
    assert response.headers["Location"] == (
        f"{joint.idp.base_url}/api/v1/logout?redirect_url=http%3A%2F%2Flocalhost%2F"
    )
    assert client.get("/oauth/me").status_code == 401
    assert "Log in" in client.get("/").get_data(as_text=True)
