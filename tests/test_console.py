"""The operator console through the test client: access, escaping, filters, forms."""

import logging
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ConsoleLoginFailure, Job, utcnow
from tests.marketplace import WRONG_KEY

PASSWORD = "correct horse battery staple"
PAGES = [
    "/console/",
    "/console/instances",
    "/console/instances/b-console",
    "/console/licences",
    "/console/tenants",
    "/console/calls",
    "/console/calls?failed=1&family=saas&hours=24",
    "/console/jobs",
    "/console/jobs?state=all",
]


@pytest.fixture
def console(app, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_CONSOLE_PASSWORD", PASSWORD)
    app.extensions.pop("koogallery_console", None)


def login_token(client) -> str:
    client.get("/console/login")
    with client.session_transaction() as session:
        return session["console_login_csrf"]


def log_in(client, password=PASSWORD):
    return client.post(
        "/console/login", data={"password": password, "csrf_token": login_token(client)}
    )


def form_token(client) -> str:
    with client.session_transaction() as session:
        return session["console"]["csrf"]


def some_data(marketplace):
    marketplace.saas_v2(
        "newInstance", orderId="CS-C", orderLineId="CS-C-1", businessId="b-console", testFlag="1"
    )
    marketplace.saas_v2("queryInstance", instanceId="b-console", key=WRONG_KEY)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_refuses_anonymous_visitors(client, console, marketplace, path):
    some_data(marketplace)
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login?next=")


@pytest.mark.parametrize("path", [*PAGES, "/console/login"])
def test_without_a_password_the_console_is_closed(app, client, path, monkeypatch):
    monkeypatch.setitem(app.config, "KOOGALLERY_CONSOLE_PASSWORD", None)
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_an_operator(client, console, marketplace, path):
    some_data(marketplace)
    assert log_in(client).status_code == 302
    response = client.get(path)
    assert response.status_code == 200
    assert b"Log out" in response.data


def test_wrong_password_is_refused_and_never_logged(client, console, caplog):
    with caplog.at_level(logging.DEBUG):
        response = log_in(client, "a wrong guess")
        log_in(client)
    assert response.status_code == 401 and b"Wrong password" in response.data
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "a wrong guess" not in logged and PASSWORD not in logged


def test_a_werkzeug_hash_is_accepted_as_the_password(app, client, monkeypatch):
    from werkzeug.security import generate_password_hash

    monkeypatch.setitem(
        app.config, "KOOGALLERY_CONSOLE_PASSWORD", generate_password_hash("hashed pw")
    )
    assert log_in(client, "hashed pw").status_code == 302


def test_ten_wrong_passwords_lock_the_address(app, client, console):
    for _ in range(10):
        assert log_in(client, "guess").status_code == 401
    assert log_in(client).status_code == 429  # even the right one, for a while
    with app.app_context():
        db.session.execute(ConsoleLoginFailure.__table__.delete())
        db.session.commit()
    assert log_in(client).status_code == 302


def test_login_without_the_form_token_is_refused(client, console):
    assert client.post("/console/login", data={"password": PASSWORD}).status_code == 400


def test_next_only_leads_to_console_pages(client, console):
    token = login_token(client)
    response = client.post(
        "/console/login?next=https://evil.example/",
        data={"password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/console/"


def test_a_session_expires_after_eight_hours(app, client, console):
    log_in(client)
    with client.session_transaction() as session:
        session["console"] = {
            **session["console"],
            "since": utcnow().replace(year=2000).isoformat(),
        }
    assert client.get("/console/").status_code == 302


def test_a_synced_user_named_script_renders_as_text(client, console, marketplace):
    body = {
        "instanceId": "",
        "tenantId": "tenant-x",
        "appId": "app-x",
        "userList": [
            {
                "userName": "<script>alert(1)</script>",
                "name": "<b>bold</b>",
                "role": "user",
                "enable": "true",
            }
        ],
        "flag": 1,
        "testFlag": 0,
    }
    assert marketplace.kit_post("/saas/produceAPI/v2/authSync", body).json["resultCode"] == "000000"
    log_in(client)
    page = client.get("/console/tenants/tenant-x").get_data(as_text=True)
    assert (
        "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    )
    assert "<b>bold</b>" not in page


def test_the_failed_call_shows_what_to_check(client, console, marketplace):
    some_data(marketplace)
    log_in(client)
    listing = client.get("/console/calls?failed=1").get_data(as_text=True)
    call_ids = re.findall(r"/console/calls/(\d+)", listing)
    assert len(call_ids) == 1
    detail = client.get(f"/console/calls/{call_ids[0]}").get_data(as_text=True)
    assert 'id="hint"' in detail and "key of the wrong type" in detail
    assert "bad_signature" in detail


def test_instance_page_shows_history_and_credentials_behind_a_click(client, console, marketplace):
    some_data(marketplace)
    log_in(client)
    page = client.get("/console/instances/b-console").get_data(as_text=True)
    assert "<details" in page and "initial credentials" in page
    assert page.count("<tr><td>") >= 2  # created, provisioned
    assert "provisioned" in page


def test_retry_of_a_dead_letter_needs_the_form_token(
    app, client, console, marketplace, use_provisioner
):
    use_provisioner("tests.provisioners:AlwaysFailingProvisioner")
    marketplace.saas_v2("newInstance", orderId="CS-D", orderLineId="CS-D-1", businessId="b-dead")
    use_provisioner("tests.provisioners:RecordingProvisioner")
    log_in(client)
    with app.app_context():
        job_id = db.session.scalars(select(Job.id).where(Job.state == "dead")).one()
    assert client.post(f"/console/jobs/{job_id}/retry").status_code == 400
    response = client.post(f"/console/jobs/{job_id}/retry", data={"csrf_token": form_token(client)})
    assert response.status_code == 302
    assert f"Job {job_id} re-enqueued." in client.get("/console/jobs").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Job, job_id).state == "done"


def test_logout_needs_the_form_token_and_ends_the_session(client, console):
    log_in(client)
    assert client.post("/console/logout").status_code == 400
    client.post("/console/logout", data={"csrf_token": form_token(client)})
    assert client.get("/console/").status_code == 302


def test_overview_chart_counts_successes_and_failures(client, console, marketplace):
    some_data(marketplace)
    log_in(client)
    page = client.get("/console/").get_data(as_text=True)
    assert 'id="chart"' in page and "1 failed</title>" in page and "1 ok</title>" in page
