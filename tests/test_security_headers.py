"""Browser-facing protections: headers, cookie flags."""


def test_pages_send_the_security_headers(client):
    response = client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy  # no scripts at all
    assert "Strict-Transport-Security" not in response.headers  # development serves plain HTTP


def test_marketplace_answers_carry_no_page_policy_but_the_basic_headers(marketplace):
    response = marketplace.saas_v2("queryInstance", instanceId="nothing")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers


def test_session_cookie_is_http_only_and_same_site(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_CONSOLE_PASSWORD", "pw")
    response = client.get("/console/login")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
