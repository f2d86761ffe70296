"""Configuration: development works with nothing set, production refuses to start without keys."""

import json
import stat

import pytest

import app as app_package
from app import create_app
from app.devkeys import DEVELOPMENT_KEYS_FILE, load_development_keys
from app.security import load_private_key
from config import Config, ConfigError, database_url, parse_key_ring


@pytest.fixture
def instance_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(app_package, "INSTANCE_DIR", tmp_path)
    return tmp_path


def test_production_refuses_to_start_without_secret_key_and_basic_key(instance_dir, database_url):
    with pytest.raises(ConfigError) as refused:
        create_app(environ={"KOOGALLERY_ENV": "production", "DATABASE_URL": database_url})
    assert "SECRET_KEY" in str(refused.value)
    assert "KOOGALLERY_BASIC_KEY" in str(refused.value)
    assert not (instance_dir / DEVELOPMENT_KEYS_FILE).exists()


def test_production_refuses_a_kit_key_without_the_rsa_key(instance_dir, database_url):
    environ = {
        "KOOGALLERY_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "a-production-secret-key-of-some-length",
        "KOOGALLERY_BASIC_KEY": "b",
        "KOOGALLERY_KIT_KEY": "k",
    }
    with pytest.raises(ConfigError, match="KOOGALLERY_RSA_PRIVATE_KEY"):
        create_app(environ=environ)


def test_production_starts_with_its_keys_and_generates_nothing(instance_dir, database_url):
    environ = {
        "KOOGALLERY_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "a-production-secret-key-of-some-length",
        "KOOGALLERY_BASIC_KEY": "b1,b2",
    }
    app = create_app(environ=environ)
    assert app.config["KOOGALLERY_BASIC_KEY"] == ("b1", "b2")
    assert app.config["KOOGALLERY_KIT_KEY"] == ()
    assert not (instance_dir / DEVELOPMENT_KEYS_FILE).exists()
    assert app.test_cli_runner().invoke(args=["market", "keys"]).exit_code != 0


def test_development_generates_keys_once_and_keeps_them(instance_dir, database_url):
    first = create_app(environ={"DATABASE_URL": database_url})
    second = create_app(environ={"DATABASE_URL": database_url})
    saved = instance_dir / DEVELOPMENT_KEYS_FILE
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    for name in ("SECRET_KEY", "KOOGALLERY_BASIC_KEY", "KOOGALLERY_KIT_KEY"):
        assert first.config[name]
        assert first.config[name] == second.config[name]
    assert len(first.config["KOOGALLERY_BASIC_KEY"][0]) == 36  # UUID-shaped, like real keys
    private_key = load_private_key(first.config["KOOGALLERY_RSA_PRIVATE_KEY"])
    assert private_key.key_size == 3072
    assert json.loads(saved.read_text())["SECRET_KEY"] == first.config["SECRET_KEY"]


def test_development_keeps_keys_given_in_the_environment(instance_dir, database_url):
    app = create_app(environ={"DATABASE_URL": database_url, "KOOGALLERY_BASIC_KEY": "mine"})
    assert app.config["KOOGALLERY_BASIC_KEY"] == ("mine",)
    output = app.test_cli_runner().invoke(args=["market", "keys"]).output
    assert "KOOGALLERY_BASIC_KEY=<set in the environment>" in output
    assert "mine" not in output
    generated_kit_key = app.config["KOOGALLERY_KIT_KEY"][0]
    assert f"KOOGALLERY_KIT_KEY={generated_kit_key}" in output
    assert "RSA public key" in output


def test_key_settings_are_comma_separated_rings():
    assert parse_key_ring(" a , b,,c ") == ("a", "b", "c")
    assert parse_key_ring("") == ()
    assert parse_key_ring(None) == ()
    assert Config({"KOOGALLERY_GENERAL_KEY": "g1,g2"}).KOOGALLERY_GENERAL_KEY == ("g1", "g2")


def test_defaults():
    config = Config({})
    assert config.KOOGALLERY_ENV == "development"
    assert config.KOOGALLERY_ENCRYPT_TYPE == "1"
    assert config.KOOGALLERY_INBOUND_ENCRYPT_TYPE == "1"
    assert config.KOOGALLERY_TIMESTAMP_TOLERANCE == 60
    assert config.KOOGALLERY_V1_MAX_AGE is None
    assert config.KOOGALLERY_API_BASE == "https://mkt.myhuaweicloud.com"
    assert config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    assert config.SQLALCHEMY_DATABASE_URI.endswith("/instance/koogallery.db")


@pytest.mark.parametrize(
    ("environ", "setting"),
    [
        ({"KOOGALLERY_ENV": "staging"}, "KOOGALLERY_ENV"),
        ({"KOOGALLERY_ENCRYPT_TYPE": "3"}, "KOOGALLERY_ENCRYPT_TYPE"),
        ({"KOOGALLERY_INBOUND_ENCRYPT_TYPE": "aes"}, "KOOGALLERY_INBOUND_ENCRYPT_TYPE"),
        ({"KOOGALLERY_TIMESTAMP_TOLERANCE": "sixty"}, "KOOGALLERY_TIMESTAMP_TOLERANCE"),
        ({"KOOGALLERY_V1_MAX_AGE": "-1"}, "KOOGALLERY_V1_MAX_AGE"),
    ],
)
def test_invalid_settings_are_refused_by_name(environ, setting):
    with pytest.raises(ConfigError, match=setting):
        Config(environ)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db/k", "postgresql+psycopg://u:p@db/k"),
        ("postgresql://u:p@db/k", "postgresql+psycopg://u:p@db/k"),
        ("postgresql+psycopg://u:p@db/k", "postgresql+psycopg://u:p@db/k"),
        ("sqlite:////var/lib/k.db", "sqlite:////var/lib/k.db"),
    ],
)
def test_database_urls_name_the_driver(given, expected):
    assert database_url(given) == expected


def test_a_keys_file_from_an_older_version_gains_the_new_keys(instance_dir):
    old = {"SECRET_KEY": "kept", "KOOGALLERY_BASIC_KEY": "kept-basic"}
    (instance_dir / DEVELOPMENT_KEYS_FILE).write_text(json.dumps(old))
    saved = load_development_keys(instance_dir)
    assert saved["SECRET_KEY"] == "kept" and saved["KOOGALLERY_BASIC_KEY"] == "kept-basic"
    assert "KOOGALLERY_LICENSE_SIGNING_KEY" in saved
    assert load_development_keys(instance_dir) == saved


PRODUCTION = {
    "KOOGALLERY_ENV": "production",
    "SECRET_KEY": "a-production-secret-key-of-some-length",
    "KOOGALLERY_BASIC_KEY": "a-real-key",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SECRET_KEY": "changeme"}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is too weak"),
        ({"KOOGALLERY_BASIC_KEY": "mine,ebf72724-bacc-414b-a86b-fda5bcc8153c"}, "example key"),
        ({"KOOGALLERY_KIT_KEY": "TEST_KIT_ACCESS_KEY_123"}, "example key"),
    ],
)
def test_production_refuses_weak_or_example_secrets(instance_dir, database_url, change, message):
    with pytest.raises(ConfigError, match=message):
        create_app(environ={**PRODUCTION, "DATABASE_URL": database_url, **change})


def test_production_refuses_debug_mode(instance_dir, database_url):
    with pytest.raises(ConfigError, match="debug"):
        create_app({"DEBUG": True}, environ={**PRODUCTION, "DATABASE_URL": database_url})


def test_production_cookies_are_secure_http_only_and_same_site(instance_dir, database_url):
    app = create_app(environ={**PRODUCTION, "DATABASE_URL": database_url})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    response = app.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
