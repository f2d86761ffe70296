"""Development keys: generated once, saved under instance/, never used in production.

`make run` on a fresh clone must work without any configuration, so in development every key that
is not set in the environment is generated on first start and kept in
instance/development-keys.json (mode 0600). Production refuses to start without real keys.
"""

import fcntl
import json
import logging
import os
import secrets
import uuid
from pathlib import Path

from app.licensing import generate_signing_key_pem
from app.security import generate_private_key, private_key_pem
from config import KEY_SETTINGS, ConfigError, parse_key_ring

log = logging.getLogger(__name__)

DEVELOPMENT_KEYS_FILE = "development-keys.json"
# How each setting is generated; keys seen in the wild are UUID-shaped ASCII strings.
GENERATORS = {
    "SECRET_KEY": lambda: secrets.token_hex(32),
    **{setting: lambda: str(uuid.uuid4()) for setting in KEY_SETTINGS},
    "KOOGALLERY_RSA_PRIVATE_KEY": lambda: private_key_pem(generate_private_key(3072)),
    "KOOGALLERY_LICENSE_SIGNING_KEY": generate_signing_key_pem,
    "KOOGALLERY_CONSOLE_PASSWORD": lambda: secrets.token_urlsafe(12),
}
GENERATED_SETTINGS = tuple(GENERATORS)
# Without these, production has nothing to verify the marketplace's calls with.
REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "KOOGALLERY_BASIC_KEY")
# Needed by some products only: said once at start, so that the first failing call is no surprise.
OPTIONAL_IN_PRODUCTION = {
    "KOOGALLERY_LICENSE_SIGNING_KEY": "License calls that issue licences answer 000005",
    "KOOGALLERY_AK": "query order, usage push and licence upload are unavailable",
    "KOOGALLERY_CONSOLE_PASSWORD": "the operator console (/console) is closed",
}


def load_development_keys(instance_path: str | Path) -> dict[str, str]:
    """Return the saved development keys, creating the file (or adding new keys) as needed."""
    path = Path(instance_path) / DEVELOPMENT_KEYS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # gunicorn workers start together: the lock makes one of them create the keys and the
    # others read them, so that every worker signs with the same keys.
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = json.loads(path.read_text()) if path.exists() else {}
        missing = [name for name in GENERATED_SETTINGS if name not in saved]
        if missing:
            # A first start, or a keys file from a version that had fewer settings.
            saved.update({name: GENERATORS[name]() for name in missing})
            _write_private(path, saved)
    return saved


def _write_private(path: Path, keys: dict) -> None:
    """Write the keys file readable by its owner only, replacing it in one step."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(keys, file, indent=2)
    os.replace(temporary, path)


def apply_development_keys(config: dict, instance_path: str | Path) -> list[str]:
    """Fill every unset key from the development keys file; return the names filled."""
    missing = [name for name in GENERATED_SETTINGS if not config.get(name)]
    if not missing:
        return []
    saved = load_development_keys(instance_path)
    for name in missing:
        value = saved[name]
        config[name] = parse_key_ring(value) if name in KEY_SETTINGS else value
    return missing


# Values from the documentation and examples: anybody could sign with them.
WELL_KNOWN_KEYS = {
    "xxxxxxx",
    "ebf72724-bacc-414b-a86b-fda5bcc8153c",
    "6f1c2b7e-0d3a-4c5e-9b8a-123456789abc",
    "TEST_BASIC_ACCESS_KEY_456",
    "TEST_KIT_ACCESS_KEY_123",
}
WEAK_SECRETS = {"secret", "dev", "development", "changeme", "change-me", "secret-key"}
MIN_SECRET_KEY_LENGTH = 16


def check_production_config(config: dict) -> None:
    """Refuse to start in production without the secrets a real deployment needs."""
    if config.get("DEBUG"):
        raise ConfigError("KOOGALLERY_ENV=production refuses Flask debug mode (unset FLASK_DEBUG)")
    secret = config.get("SECRET_KEY") or ""
    if secret and (secret.lower() in WEAK_SECRETS or len(secret) < MIN_SECRET_KEY_LENGTH):
        raise ConfigError(
            f"SECRET_KEY is too weak for production: use {MIN_SECRET_KEY_LENGTH}+ random characters"
        )
    for name in KEY_SETTINGS:
        if WELL_KNOWN_KEYS & set(parse_key_ring(config.get(name))):
            raise ConfigError(f"{name} holds an example key from the documentation")
    missing = [name for name in REQUIRED_IN_PRODUCTION if not config.get(name)]
    if config.get("KOOGALLERY_KIT_KEY") and not config.get("KOOGALLERY_RSA_PRIVATE_KEY"):
        # applicationSync sends the OAuth client secret encrypted with our RSA public key.
        missing.append("KOOGALLERY_RSA_PRIVATE_KEY (needed with KOOGALLERY_KIT_KEY)")
    if missing:
        raise ConfigError(
            "KOOGALLERY_ENV=production but these settings are missing: " + ", ".join(missing)
        )
    for name, consequence in OPTIONAL_IN_PRODUCTION.items():
        if not config.get(name):
            log.warning("%s is not set: %s", name, consequence)
