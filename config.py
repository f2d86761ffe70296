"""Settings read from the environment when the app is created.

Every variable is documented in README.md and .env.example. Keys may hold several comma-separated
values so that a key can be rotated without downtime: a request verifies if any of them matches.
"""

import os
from collections.abc import Mapping
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"

DEVELOPMENT = "development"
PRODUCTION = "production"
ENVIRONMENTS = (DEVELOPMENT, PRODUCTION)

# One key per interface type, exactly as the seller console binds them (spec README, "Keys").
KEY_SETTINGS = (
    "KOOGALLERY_BASIC_KEY",
    "KOOGALLERY_KIT_KEY",
    "KOOGALLERY_LICENSE_KEY",
    "KOOGALLERY_GENERAL_KEY",
)

DEFAULT_API_BASE = "https://mkt.myhuaweicloud.com"
DEFAULT_MAX_BODY = 1024 * 1024
# The route is in the URL fragment; there is no state and no redirect_uri (spec kit-oauth.md §2).
DEFAULT_LOGIN_URL = (
    "https://macroverse.huaweicloud.com/unified-login/#/portal-login?ind=UNOP&appId={appId}"
)


class ConfigError(RuntimeError):
    """Raised when the configuration is unusable; the app refuses to start."""


def parse_key_ring(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """Return the keys of a comma-separated setting, in the order given."""
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(part.strip() for part in parts if part and part.strip())


def database_url(value: str | None) -> str:
    """Return the SQLAlchemy URL, defaulting to SQLite under instance/."""
    if not value:
        return f"sqlite:///{INSTANCE_DIR / 'koogallery.db'}"
    # Hosting platforms hand out postgres:// URLs; SQLAlchemy needs the driver named.
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    return value


def engine_options(url: str) -> dict:
    """Return connection settings that keep a request inside the marketplace's 5 s budget."""
    # hide_parameters keeps bound values (phone numbers, e-mail addresses) out of error messages.
    options: dict = {"hide_parameters": True}
    if url.startswith("sqlite"):
        # Wait for a competing writer instead of failing at once with "database is locked".
        options["connect_args"] = {"timeout": 3}
    elif url.startswith("postgresql"):
        options.update(pool_pre_ping=True, pool_timeout=3)
        options["connect_args"] = {"connect_timeout": 3, "options": "-c statement_timeout=4000"}
    return options


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = environ.get(name, "").strip() or default
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _integer(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds, not {value!r}") from None
    if number < 0:
        raise ConfigError(f"{name} must not be negative")
    return number


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive")
    return number


def _boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


class Config:
    """Read every setting from an environment mapping (os.environ by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ

        self.KOOGALLERY_ENV = _choice(environ, "KOOGALLERY_ENV", ENVIRONMENTS, DEVELOPMENT)
        self.SECRET_KEY = environ.get("SECRET_KEY") or None

        self.SQLALCHEMY_DATABASE_URI = database_url(environ.get("DATABASE_URL"))
        self.SQLALCHEMY_ENGINE_OPTIONS = engine_options(self.SQLALCHEMY_DATABASE_URI)
        self.MAX_CONTENT_LENGTH = _integer(environ, "MAX_CONTENT_LENGTH", DEFAULT_MAX_BODY)
        # Kit sync bodies: 50 000 departments or 500 users with every field run to megabytes.
        self.KOOGALLERY_KIT_MAX_BODY = _integer(
            environ, "KOOGALLERY_KIT_MAX_BODY", 16 * DEFAULT_MAX_BODY
        )

        for name in KEY_SETTINGS:
            setattr(self, name, parse_key_ring(environ.get(name)))
        self.KOOGALLERY_AK = environ.get("KOOGALLERY_AK") or None
        self.KOOGALLERY_SK = environ.get("KOOGALLERY_SK") or None
        self.KOOGALLERY_API_BASE = environ.get("KOOGALLERY_API_BASE") or DEFAULT_API_BASE
        # A CA bundle for the open API (a private mock, a TLS-inspecting proxy); never "no check".
        self.KOOGALLERY_API_CA_BUNDLE = environ.get("KOOGALLERY_API_CA_BUNDLE") or None
        self.KOOGALLERY_RSA_PRIVATE_KEY = environ.get("KOOGALLERY_RSA_PRIVATE_KEY") or None

        # "1" = AES-256-CBC, "2" = AES-128-CBC (security.md §6). Credentials we send use our
        # choice; inbound phone/e-mail use the bit length chosen when the product was published.
        self.KOOGALLERY_ENCRYPT_TYPE = _choice(environ, "KOOGALLERY_ENCRYPT_TYPE", ("1", "2"), "1")
        self.KOOGALLERY_INBOUND_ENCRYPT_TYPE = _choice(
            environ, "KOOGALLERY_INBOUND_ENCRYPT_TYPE", ("1", "2"), "1"
        )

        # The provisioning hook (app/provisioning.py) and what the default one answers with.
        self.KOOGALLERY_PROVISIONER = environ.get("KOOGALLERY_PROVISIONER") or None
        self.KOOGALLERY_FRONTEND_URL = (
            environ.get("KOOGALLERY_FRONTEND_URL") or "http://127.0.0.1:5000/"
        )
        self.KOOGALLERY_ADMIN_URL = environ.get("KOOGALLERY_ADMIN_URL") or None
        # V1 answers always encrypt userName/password; V2 pages show encryption but Huawei's V2
        # sample sends them in clear, so V2 can be switched off.
        self.KOOGALLERY_ENCRYPT_CREDENTIALS = _boolean(
            environ, "KOOGALLERY_ENCRYPT_CREDENTIALS", True
        )
        # A provisioning attempt older than this is presumed lost (a crash) and retried on resend.
        self.KOOGALLERY_PROVISIONING_RETRY_AFTER = _integer(
            environ, "KOOGALLERY_PROVISIONING_RETRY_AFTER", 600
        )

        # The licence issuer hook (app/licensing.py) and its Ed25519 signing key (PEM or path).
        self.KOOGALLERY_LICENSE_ISSUER = environ.get("KOOGALLERY_LICENSE_ISSUER") or None
        self.KOOGALLERY_LICENSE_SIGNING_KEY = environ.get("KOOGALLERY_LICENSE_SIGNING_KEY") or None
        # The saasExtendParams name that carries a V1 buyer's machine code.
        self.KOOGALLERY_LICENSE_MACHINE_CODE_PARAM = (
            environ.get("KOOGALLERY_LICENSE_MACHINE_CODE_PARAM") or "machineCode"
        )
        self.KOOGALLERY_LICENSE_REQUIRE_FINGERPRINT = _boolean(
            environ, "KOOGALLERY_LICENSE_REQUIRE_FINGERPRINT", False
        )

        # Joint-operation login (spec kit-oauth.md §2): the app credential's appId, the unified
        # login page ({appId} is filled in), the callback address sent as redirect_uri (optional:
        # the documented flow sends none), and a CA bundle for a private identity domain.
        self.KOOGALLERY_APP_ID = environ.get("KOOGALLERY_APP_ID") or None
        self.KOOGALLERY_LOGIN_URL = environ.get("KOOGALLERY_LOGIN_URL") or DEFAULT_LOGIN_URL
        self.KOOGALLERY_OAUTH_REDIRECT_URI = environ.get("KOOGALLERY_OAUTH_REDIRECT_URI") or None
        self.KOOGALLERY_IDP_CA_BUNDLE = environ.get("KOOGALLERY_IDP_CA_BUNDLE") or None
        # Refresh the access token this many seconds before it expires.
        self.KOOGALLERY_TOKEN_REFRESH_MARGIN = _integer(
            environ, "KOOGALLERY_TOKEN_REFRESH_MARGIN", 60
        )
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = self.KOOGALLERY_ENV == PRODUCTION

        # The task queue (app/jobs.py): sqlite (default, a file under instance/), sqlite:////path,
        # redis://host:6379/0 for several machines, or inline (jobs run inside the call).
        self.KOOGALLERY_QUEUE = environ.get("KOOGALLERY_QUEUE") or "sqlite"
        self.KOOGALLERY_JOB_MAX_ATTEMPTS = _integer(environ, "KOOGALLERY_JOB_MAX_ATTEMPTS", 5)
        # Seconds before the second attempt; each further one waits twice as long.
        self.KOOGALLERY_JOB_BACKOFF = _number(environ, "KOOGALLERY_JOB_BACKOFF", 2.0)
        self.KOOGALLERY_TICK_SECONDS = _number(environ, "KOOGALLERY_TICK_SECONDS", 30.0)
        # A running job not finished in this long is presumed lost with its worker and re-run;
        # an outbox row not enqueued in OUTBOX_GRACE seconds is presumed lost with its web process.
        self.KOOGALLERY_JOB_LEASE = _number(environ, "KOOGALLERY_JOB_LEASE", 600.0)
        self.KOOGALLERY_OUTBOX_GRACE = _number(environ, "KOOGALLERY_OUTBOX_GRACE", 30.0)
        self.KOOGALLERY_PURGE_INTERVAL = _number(environ, "KOOGALLERY_PURGE_INTERVAL", 3600.0)
        self.KOOGALLERY_USAGE_PUSH_INTERVAL = _number(
            environ, "KOOGALLERY_USAGE_PUSH_INTERVAL", 3600.0
        )
        self.KOOGALLERY_CALL_LOG_RETENTION_DAYS = _integer(
            environ, "KOOGALLERY_CALL_LOG_RETENTION_DAYS", 90
        )

        # The operator console (/console): a password, in clear or as a werkzeug hash
        # (scrypt:… / pbkdf2:…). Without one the console is closed.
        self.KOOGALLERY_CONSOLE_PASSWORD = environ.get("KOOGALLERY_CONSOLE_PASSWORD") or None

        self.KOOGALLERY_TIMESTAMP_TOLERANCE = _integer(
            environ, "KOOGALLERY_TIMESTAMP_TOLERANCE", 60
        )
        # V1 documents no freshness window and retries may reuse old timestamps: off unless set.
        self.KOOGALLERY_V1_MAX_AGE = _integer(environ, "KOOGALLERY_V1_MAX_AGE", None)
