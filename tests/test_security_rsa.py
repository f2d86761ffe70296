"""RSA-OAEP decryption of `clientSecret` and merchant key handling (security.md §7)."""

import base64
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from app.security import (
    Reason,
    SecurityError,
    decrypt_oaep,
    generate_private_key,
    load_private_key,
    private_key_pem,
    public_key_base64,
)

CLIENT_SECRET = "c1ient-Secret_0123456789abcdefXYZ"

# The marketplace may use SHA-1 in OAEP; the tests must produce such ciphertexts.
OAEP_VARIANTS = [
    pytest.param(hashes.SHA256(), hashes.SHA256(), id="oaep-sha256-mgf1-sha256"),
    pytest.param(hashes.SHA256(), hashes.SHA1(), id="oaep-sha256-mgf1-sha1-java"),  # noqa: S303
    pytest.param(hashes.SHA1(), hashes.SHA1(), id="oaep-sha1-mgf1-sha1"),  # noqa: S303
]


@pytest.fixture(scope="module")
def private_key():
    return generate_private_key(3072)


def _encrypt(private_key, plaintext: bytes, oaep_hash=None, mgf_hash=None) -> str:
    """Encrypt like the marketplace does: OAEP with the given hashes, Base64 output."""
    oaep = padding.OAEP(
        mgf=padding.MGF1(mgf_hash or hashes.SHA256()),
        algorithm=oaep_hash or hashes.SHA256(),
        label=None,
    )
    ciphertext = private_key.public_key().encrypt(plaintext, oaep)
    return base64.b64encode(ciphertext).decode("ascii")


def _decrypt_reason(private_key, ciphertext_b64: str) -> Reason:
    with pytest.raises(SecurityError) as excinfo:
        decrypt_oaep(private_key, ciphertext_b64)
    return excinfo.value.reason


@pytest.mark.parametrize(("oaep_hash", "mgf_hash"), OAEP_VARIANTS)
def test_every_oaep_variant_decrypts(private_key, oaep_hash, mgf_hash):
    ciphertext = _encrypt(private_key, CLIENT_SECRET.encode("utf-8"), oaep_hash, mgf_hash)
    assert len(base64.b64decode(ciphertext)) == 384  # 3072-bit modulus
    assert decrypt_oaep(private_key, ciphertext) == CLIENT_SECRET


def test_plus_turned_into_space_is_restored(private_key):
    # OAEP is randomised; draw until the Base64 holds a "+" (almost always the first time).
    ciphertext = next(
        text
        for text in (_encrypt(private_key, CLIENT_SECRET.encode("utf-8")) for _ in range(50))
        if "+" in text
    )
    assert decrypt_oaep(private_key, ciphertext.replace("+", " ")) == CLIENT_SECRET


def test_pkcs1v15_ciphertext_fails(private_key):
    ciphertext = private_key.public_key().encrypt(CLIENT_SECRET.encode("utf-8"), padding.PKCS1v15())
    encoded = base64.b64encode(ciphertext).decode("ascii")
    assert _decrypt_reason(private_key, encoded) is Reason.DECRYPT_FAILED


def test_garbage_ciphertext_fails(private_key):
    garbage = base64.b64encode(os.urandom(384)).decode("ascii")
    assert _decrypt_reason(private_key, garbage) is Reason.DECRYPT_FAILED


def test_wrong_length_ciphertext_fails(private_key):
    ciphertext = _encrypt(private_key, CLIENT_SECRET.encode("utf-8"))
    truncated = base64.b64encode(base64.b64decode(ciphertext)[:256]).decode("ascii")
    assert _decrypt_reason(private_key, truncated) is Reason.DECRYPT_FAILED


def test_malformed_base64_fails(private_key):
    assert _decrypt_reason(private_key, "not*base64") is Reason.DECRYPT_FAILED


def test_non_utf8_plaintext_fails(private_key):
    ciphertext = _encrypt(private_key, b"\xff\xfe secret")
    assert _decrypt_reason(private_key, ciphertext) is Reason.DECRYPT_FAILED


def test_wrong_key_fails(private_key):
    other_key = generate_private_key(3072)
    ciphertext = _encrypt(other_key, CLIENT_SECRET.encode("utf-8"))
    assert _decrypt_reason(private_key, ciphertext) is Reason.DECRYPT_FAILED


# --- key handling -------------------------------------------------------------------------------


def test_keys_shorter_than_3072_bits_are_refused():
    with pytest.raises(ValueError, match="3072"):
        generate_private_key(2048)


def test_public_key_base64_is_one_line_der_spki(private_key):
    encoded = public_key_base64(private_key)
    assert "\n" not in encoded
    assert "-----" not in encoded
    public_key = serialization.load_der_public_key(base64.b64decode(encoded, validate=True))
    assert public_key.public_numbers() == private_key.public_key().public_numbers()


def test_pem_text_loads_back(private_key):
    pem = private_key_pem(private_key)
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(pem)
    assert loaded.private_numbers() == private_key.private_numbers()


def test_pem_with_escaped_newlines_loads(private_key):
    one_line = private_key_pem(private_key).replace("\n", "\\n")
    assert load_private_key(one_line).private_numbers() == private_key.private_numbers()


def test_pem_file_path_loads(private_key, tmp_path):
    path = tmp_path / "merchant.pem"
    path.write_text(private_key_pem(private_key))
    assert load_private_key(str(path)).private_numbers() == private_key.private_numbers()


def test_missing_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ValueError, match="neither PEM text nor a readable file"):
        load_private_key(str(tmp_path / "absent.pem"))


def test_broken_pem_is_a_configuration_error():
    with pytest.raises(ValueError, match="could not be loaded"):
        load_private_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_password_protected_pem_is_a_configuration_error(private_key):
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.BestAvailableEncryption(b"passphrase"),
    ).decode("ascii")
    with pytest.raises(ValueError, match="could not be loaded"):
        load_private_key(pem)


def test_non_rsa_key_is_a_configuration_error():
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )
        .decode("ascii")
    )
    with pytest.raises(ValueError, match="not an RSA key"):
        load_private_key(ec_pem)
