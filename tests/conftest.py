import logging
import os
import shutil
import threading

import pytest
from flask_migrate import upgrade
from sqlalchemy import delete, text
from werkzeug.serving import make_server

from app import create_app, provisioning
from app.extensions import db
from app.licensing import generate_signing_key_pem
from app.marketplace.mock_api import MockOpenApi
from app.marketplace.mock_idp import MockIdentityProvider
from app.security import generate_private_key, private_key_pem
from tests import probe, provisioners
from tests.marketplace import (
    BASIC_KEY,
    GENERAL_KEY,
    KIT_KEY,
    LICENSE_KEY,
    SECOND_BASIC_KEY,
    Marketplace,
)

TEST_SETTINGS = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    "KOOGALLERY_BASIC_KEY": (BASIC_KEY,),
    "KOOGALLERY_KIT_KEY": (KIT_KEY,),
    "KOOGALLERY_LICENSE_KEY": (LICENSE_KEY,),
    "KOOGALLERY_GENERAL_KEY": (GENERAL_KEY,),
    "KOOGALLERY_LICENSE_SIGNING_KEY": generate_signing_key_pem(),
    "KOOGALLERY_RSA_PRIVATE_KEY": private_key_pem(generate_private_key(3072)),
    # Jobs run inside the call; tests of the real queues choose their own.
    "KOOGALLERY_QUEUE": "inline",
    "KOOGALLERY_JOB_MAX_ATTEMPTS": 1,
}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def pytest_report_header(config):
    backend = os.environ.get("DATABASE_URL", "sqlite").split(":")[0]
    return f"database: {backend} (set DATABASE_URL to choose)"


# ------------------------------------------------------------------------------ secret scan
# Every log record of the whole run is kept and, at the end, searched for the configured keys,
# the passwords the provisioner generated and the test customers' contact data. One hit fails
# the run (pytest_sessionfinish), whichever test logged it.


class LogCollector(logging.Handler):
    """Keep the formatted text (with tracebacks) of every log record."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record):
        self.texts.append(logging.Formatter("%(name)s %(message)s").format(record))


LOGS = LogCollector()
GENERATED_PASSWORDS: list[str] = []
CONTACT_DATA = ["15905222222", "13800138000", "18688888888", "zhangsan@example.com"]
OTHER_SECRETS = ["correct horse battery staple", "client-secret-0001", "Probe-Pa55word!"]


def secrets_to_scan() -> list[str]:
    """Return every value that must never appear in a log line."""
    values = [
        TEST_SETTINGS["SECRET_KEY"],
        *(
            key
            for name in ("BASIC", "KIT", "LICENSE", "GENERAL")
            for key in TEST_SETTINGS[f"KOOGALLERY_{name}_KEY"]
        ),
        SECOND_BASIC_KEY,
        # A line from the middle of each private key's PEM.
        TEST_SETTINGS["KOOGALLERY_RSA_PRIVATE_KEY"].splitlines()[5],
        TEST_SETTINGS["KOOGALLERY_LICENSE_SIGNING_KEY"].splitlines()[1],
        *GENERATED_PASSWORDS,
        *CONTACT_DATA,
        *OTHER_SECRETS,
    ]
    return [value for value in values if value]


def leaked_secrets(texts: list[str], values: list[str]) -> list[str]:
    """Return the values that appear in any of the texts."""
    joined = "\n".join(texts)
    return [value for value in values if value in joined]


def pytest_configure(config):
    logging.getLogger().addHandler(LOGS)
    original = provisioning.generate_password

    def recorded(*args, **kwargs):
        password = original(*args, **kwargs)
        GENERATED_PASSWORDS.append(password)
        return password

    provisioning.generate_password = recorded


def pytest_sessionfinish(session, exitstatus):
    leaks = leaked_secrets(LOGS.texts, secrets_to_scan())
    if leaks:
        print(f"\nSECRETS IN LOG LINES: {len(leaks)} value(s), e.g. {leaks[0][:4]}…")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        print(
            f"\nlog scan: {len(LOGS.texts)} log records, {len(secrets_to_scan())} secret values,"
            " none found"
        )


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """Use DATABASE_URL when CI points the suite at PostgreSQL, else a fresh SQLite file."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db')}/test.db"


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(TEST_SETTINGS, environ={"DATABASE_URL": database_url})
    app.register_blueprint(probe.bp)
    with app.app_context():
        # Build the schema the way production does: through the migrations, from empty.
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
        upgrade()
    return app


@pytest.fixture(autouse=True)
def clean_database(app):
    yield
    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(delete(table))
        db.session.commit()
    probe.views_run.clear()
    provisioners.calls.clear()


@pytest.fixture(scope="session")
def mock_open_api():
    """The marketplace's open-API gateway, on loopback over HTTPS (one server per test run)."""
    with MockOpenApi(usage_key=BASIC_KEY) as mock:
        yield mock


@pytest.fixture
def open_api(app, mock_open_api, monkeypatch):
    """Point the app's open-API client at the mock gateway for one test."""
    for name, value in {
        "KOOGALLERY_AK": mock_open_api.ak,
        "KOOGALLERY_SK": mock_open_api.sk,
        "KOOGALLERY_API_BASE": mock_open_api.base_url,
        "KOOGALLERY_API_CA_BUNDLE": mock_open_api.ca_bundle,
    }.items():
        monkeypatch.setitem(app.config, name, value)
    mock_open_api.requests.clear()
    return mock_open_api


@pytest.fixture(scope="session")
def identity_provider():
    """A tenant's identity domain and the unified login page, on loopback over HTTPS."""
    with MockIdentityProvider() as mock:
        yield mock


@pytest.fixture
def live_server(app):
    """Serve the app on a free loopback port, for a browser or the marketplace simulator."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium with the flags this closed network needs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1000,700",
        # The mock identity domain serves a self-signed certificate.
        "--ignore-certificate-errors",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture
def use_provisioner(app, monkeypatch):
    """Switch the app to another provisioner class for one test."""

    def use(target: str):
        monkeypatch.setitem(app.config, "KOOGALLERY_PROVISIONER", target)
        monkeypatch.delitem(app.extensions, "koogallery_provisioner", raising=False)

    yield use
    app.extensions.pop("koogallery_provisioner", None)


@pytest.fixture
def use_issuer(app, monkeypatch):
    """Switch the app to another licence issuer class for one test."""

    def use(target: str):
        monkeypatch.setitem(app.config, "KOOGALLERY_LICENSE_ISSUER", target)
        monkeypatch.delitem(app.extensions, "koogallery_license_issuer", raising=False)

    yield use
    app.extensions.pop("koogallery_license_issuer", None)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def marketplace(client):
    return Marketplace(client)
