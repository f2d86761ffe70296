"""Routing and framework errors on marketplace paths still get a signed JSON answer."""

from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import CallLog
from app.security import compute_body_signature
from tests import probe
from tests.conftest import TEST_SETTINGS
from tests.marketplace import BASIC_KEY, GENERAL_KEY, KIT_KEY, Marketplace


def signed_with(response, key):
    return response.headers["Body-Sign"].endswith(
        f'signature="{compute_body_signature(key, response.data)}"'
    )


def test_unknown_marketplace_path_answers_000002_signed(app, client):
    response = client.post("/saas/unknownInterface", data="{}")
    assert response.status_code == 200
    assert response.json["resultCode"] == "000002"
    assert signed_with(response, BASIC_KEY)
    with app.app_context():
        call = db.session.scalars(select(CallLog)).one()
        assert (call.family, call.reason, call.result_code) == ("saas", "not_found", "000002")


def test_unknown_kit_path_is_signed_with_the_kit_key(client):
    response = client.post("/saas/produceAPI/v2/unknownSync", data="{}")
    assert response.json["resultCode"] == "000002"
    assert signed_with(response, KIT_KEY)


def test_unknown_notify_path_is_signed_with_the_general_key(client):
    response = client.post("/notify/else", data="{}")
    assert signed_with(response, GENERAL_KEY)


def test_wrong_method_answers_000002(client):
    response = client.get("/saas/probe/v2")
    assert response.status_code == 200
    assert response.json["resultCode"] == "000002"
    assert "method_not_allowed" in response.json["resultMsg"]


def test_body_over_the_limit_answers_000002_without_running_the_view(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    response = client.post("/saas/probe/v2", data="x" * 2048)
    assert response.status_code == 200
    assert response.json["resultCode"] == "000002"
    assert "too_large" in response.json["resultMsg"]


def test_default_body_limit_is_one_mebibyte(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_paths_that_are_not_the_marketplace_get_plain_json_errors(app, client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.json == {"error": "Not Found", "status": 404}
    with app.app_context():
        assert db.session.scalars(select(CallLog)).all() == []


def test_database_down_answers_000005_signed_not_500(tmp_path):
    unreachable = f"sqlite:///{tmp_path}/missing-directory/db.sqlite"
    app = create_app(TEST_SETTINGS, environ={"DATABASE_URL": unreachable})
    app.register_blueprint(probe.bp)
    response = Marketplace(app.test_client()).v2_post("/saas/probe/v2", {"activity": "x"})
    assert response.status_code == 200
    assert response.json["resultCode"] == "000005"
    assert signed_with(response, BASIC_KEY)
    assert probe.views_run == []
