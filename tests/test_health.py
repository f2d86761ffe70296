"""GET /healthz tells a load balancer whether the database answers."""

from app import create_app
from tests.conftest import TEST_SETTINGS


def test_healthz_reports_a_reachable_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_healthz_reports_an_unreachable_database(tmp_path):
    unreachable = f"sqlite:///{tmp_path}/missing-directory/db.sqlite"
    app = create_app(TEST_SETTINGS, environ={"DATABASE_URL": unreachable})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "unreachable"}


def test_healthz_is_not_a_marketplace_call(app, client, runner):
    client.get("/healthz")
    assert runner.invoke(args=["market", "calls"]).output == "No calls recorded.\n"


def test_livez_answers_without_the_database(tmp_path):
    unreachable = f"sqlite:///{tmp_path}/missing-directory/db.sqlite"
    app = create_app(TEST_SETTINGS, environ={"DATABASE_URL": unreachable})
    response = app.test_client().get("/livez")
    assert (response.status_code, response.json) == (200, {"status": "ok"})
