"""Encryption at rest for secrets we must be able to read back (initial passwords, client secrets).

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a key derived from SECRET_KEY
with HKDF, so a copy of the database alone reveals nothing. Changing SECRET_KEY makes stored
secrets unreadable: rotate it only together with a re-encryption.
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

# Binds the derived key to this use, so SECRET_KEY's other uses (Flask sessions) never share it.
HKDF_INFO = b"koogallery-isv: secrets at rest"


class UnsealError(Exception):
    """Raised when a sealed value cannot be opened (wrong SECRET_KEY or damaged data)."""


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        secret_key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(plaintext: str) -> str:
    """Encrypt a secret for storage."""
    return _fernet(current_app.config["SECRET_KEY"]).encrypt(plaintext.encode("utf-8")).decode()


def unseal(token: str) -> str:
    """Decrypt a secret sealed with seal()."""
    try:
        return _fernet(current_app.config["SECRET_KEY"]).decrypt(token.encode()).decode("utf-8")
    except InvalidToken:
        raise UnsealError("sealed value cannot be opened with this SECRET_KEY") from None
