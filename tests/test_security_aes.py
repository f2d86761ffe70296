"""AES field encryption and the SHA1PRNG key derivation, pinned to security.md §6 vectors."""

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from app.security import (
    Reason,
    SecurityError,
    decrypt_field,
    derive_aes_key,
    encrypt_field,
    encryption_bits,
    sha1prng_bytes,
)

KEY = "xxxxxxx"
PHONE_FIELD = "Uh2977H2620i0K25jfBd+k8XeknCQrs8jcXzWw=="  # 15905222222, AES-256, key xxxxxxx

DERIVED_KEYS = [
    pytest.param("xxxxxxx", 128, "c962ef8500ad13239b5ec0eb6a5c570b", id="xxxxxxx-128"),
    pytest.param(
        "xxxxxxx",
        256,
        "c962ef8500ad13239b5ec0eb6a5c570b3cae0fd0e5c28e793eb6aaa22d251123",
        id="xxxxxxx-256",
    ),
    pytest.param(
        "6f1c2b7e-0d3a-4c5e-9b8a-123456789abc",
        128,
        "ed2d91a3a71ff770bb2410b0a2112fa5",
        id="6f1c2b7e-128",
    ),
    pytest.param(
        "6f1c2b7e-0d3a-4c5e-9b8a-123456789abc",
        256,
        "ed2d91a3a71ff770bb2410b0a2112fa50a3ec0f2e845b2713d39eb7ab52a2faa",
        id="6f1c2b7e-256",
    ),
    pytest.param(
        "ebf72724-bacc-414b-a86b-fda5bcc8153c",
        128,
        "9dae850c6750255efbf285046f83df9f",
        id="ebf72724-128",
    ),
    pytest.param(
        "ebf72724-bacc-414b-a86b-fda5bcc8153c",
        256,
        "9dae850c6750255efbf285046f83df9fbb0733d6cada35a5c9a8918e5213371d",
        id="ebf72724-256",
    ),
]

ENCRYPTION_TABLE = [
    pytest.param(
        "xxxxxxx",
        256,
        "admin",
        "0123456789abcdef",
        "0123456789abcdef3skyNB7o5RcplcTHhYGNyA==",
        id="admin-256",
    ),
    pytest.param(
        "xxxxxxx",
        128,
        "admin",
        "0123456789abcdef",
        "0123456789abcdefbOZcwfvYX/ihuTM8WIqU8A==",
        id="admin-128",
    ),
    pytest.param("xxxxxxx", 256, "15905222222", "Uh2977H2620i0K25", PHONE_FIELD, id="phone-256"),
    pytest.param(
        "6f1c2b7e-0d3a-4c5e-9b8a-123456789abc",
        256,
        "张三@例子.com",
        "a1B2c3D4e5F6g7H8",
        "a1B2c3D4e5F6g7H81tdaTXg24xeFYxbBaRSk8Dp3rrADCfjwdUqgzHaLtpo=",
        id="email-256",
    ),
    pytest.param(
        "6f1c2b7e-0d3a-4c5e-9b8a-123456789abc",
        128,
        "张三@例子.com",
        "a1B2c3D4e5F6g7H8",
        "a1B2c3D4e5F6g7H8axY6XYUjI8sGkDXC1rXIRQKwbDm/p/MxUT85+oBi1yM=",
        id="email-128",
    ),
    pytest.param(
        "ebf72724-bacc-414b-a86b-fda5bcc8153c",
        256,
        "Huawei@12345!中文",
        "AbCdEf0123456789",
        "AbCdEf0123456789Lfa4kgNa/4MRi/WYnXrlgKTH6gz6oKr7S/9fF7g9fhI=",
        id="password-256",
    ),
]


def _raw_field(key: str, bits: int, iv: str, padded_plaintext: bytes) -> str:
    """Encrypt pre-padded bytes without adding PKCS#7, to build deliberately broken fields."""
    encryptor = Cipher(
        algorithms.AES(derive_aes_key(key, bits)), modes.CBC(iv.encode("ascii"))
    ).encryptor()
    ciphertext = encryptor.update(padded_plaintext) + encryptor.finalize()
    return iv + base64.b64encode(ciphertext).decode("ascii")


def _decrypt_reason(key: str, value: str, bits: int = 256) -> Reason:
    with pytest.raises(SecurityError) as excinfo:
        decrypt_field(key, value, bits)
    return excinfo.value.reason


# --- key derivation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "bits", "expected_hex"), DERIVED_KEYS)
def test_vector_derived_key_table(key, bits, expected_hex):
    assert derive_aes_key(key, bits).hex() == expected_hex


def test_vector_sha1prng_seed_a():
    expected = "667f407de7c6ad07358fa38daed7828a72014b4e621d7140210c8cf1565a8f02"
    assert sha1prng_bytes("a", 32).hex() == expected


def test_vector_sha1prng_seed_key():
    expected = "989f1b3366408a98bfc96af4555d762f342f66d9cbf4855a975fa6c4a6a42e6e"
    assert sha1prng_bytes("key", 32).hex() == expected


def test_aes128_key_is_sha1_of_sha1_of_key():
    first = hashlib.sha1(KEY.encode("utf-8")).digest()  # noqa: S324 - the protocol's hash
    double_sha1 = hashlib.sha1(first).digest()  # noqa: S324
    assert derive_aes_key(KEY, 128) == double_sha1[:16]


def test_unsigned_carry_gives_a_different_aes256_key():
    # The state update with an unsigned 160-bit add agrees on the first SHA-1 block and differs
    # on the second, so the AES-256 vector above is what catches the mistake.
    state = hashlib.sha1(KEY.encode("utf-8")).digest()  # noqa: S324 - the protocol's hash
    first_block = hashlib.sha1(state).digest()  # noqa: S324
    unsigned_sum = (int.from_bytes(state, "little") + int.from_bytes(first_block, "little") + 1) % (
        1 << 160
    )
    second_block = hashlib.sha1(unsigned_sum.to_bytes(20, "little")).digest()  # noqa: S324
    unsigned_key = (first_block + second_block)[:32]
    derived = derive_aes_key(KEY, 256)
    assert derived[:20] == unsigned_key[:20]
    assert derived != unsigned_key


def test_sha1prng_longer_output_extends_shorter_output():
    assert sha1prng_bytes(KEY, 64)[:32] == sha1prng_bytes(KEY, 32)


@pytest.mark.parametrize("bits", [0, 192, 512])
def test_unsupported_key_size_is_a_configuration_error(bits):
    with pytest.raises(ValueError, match="128 or 256"):
        derive_aes_key(KEY, bits)


@pytest.mark.parametrize(
    ("encrypt_type", "bits"),
    [(None, 256), ("", 256), ("1", 256), (1, 256), ("2", 128), (2, 128)],
)
def test_encryption_bits_from_encrypt_type(encrypt_type, bits):
    assert encryption_bits(encrypt_type) == bits


@pytest.mark.parametrize("encrypt_type", ["3", "AES", 0])
def test_unknown_encrypt_type_is_a_configuration_error(encrypt_type):
    with pytest.raises(ValueError, match="encryptType"):
        encryption_bits(encrypt_type)


# --- encryption table ---------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "bits", "plaintext", "iv", "field"), ENCRYPTION_TABLE)
def test_vector_encryption_table_encrypts(key, bits, plaintext, iv, field):
    assert encrypt_field(key, plaintext, bits, iv=iv) == field


@pytest.mark.parametrize(("key", "bits", "plaintext", "iv", "field"), ENCRYPTION_TABLE)
def test_vector_encryption_table_decrypts(key, bits, plaintext, iv, field):
    assert decrypt_field(key, field, bits) == plaintext


def test_random_iv_is_sixteen_alphanumerics_and_round_trips():
    first = encrypt_field(KEY, "s3cret-password")
    second = encrypt_field(KEY, "s3cret-password")
    assert re.fullmatch(r"[A-Za-z0-9]{16}", first[:16])
    assert first != second
    assert decrypt_field(KEY, first) == "s3cret-password"


@pytest.mark.parametrize("iv", ["short", "0123456789abcde!", "0123456789abcdef0"])
def test_invalid_fixed_iv_is_a_configuration_error(iv):
    with pytest.raises(ValueError, match="IV"):
        encrypt_field(KEY, "admin", iv=iv)


# --- decryption failures ------------------------------------------------------------------------


def test_plus_turned_into_space_is_restored():
    assert decrypt_field(KEY, PHONE_FIELD.replace("+", " ")) == "15905222222"


def test_lost_plus_in_ciphertext_fails_to_decrypt():
    assert _decrypt_reason(KEY, PHONE_FIELD.replace("+", "")) is Reason.DECRYPT_FAILED


def test_malformed_base64_fails():
    assert _decrypt_reason(KEY, "0123456789abcdef!!!!not-base64") is Reason.DECRYPT_FAILED


def test_base64_with_embedded_garbage_is_not_skipped():
    broken = PHONE_FIELD[:24] + "*" + PHONE_FIELD[24:]
    assert _decrypt_reason(KEY, broken) is Reason.DECRYPT_FAILED


def test_bad_padding_fails():
    # The final byte 0x41 is no valid PKCS#7 pad length.
    field = _raw_field(KEY, 256, "0123456789abcdef", b"A" * 16)
    assert _decrypt_reason(KEY, field) is Reason.DECRYPT_FAILED


def test_non_utf8_plaintext_fails():
    field = _raw_field(KEY, 256, "0123456789abcdef", b"\xff" * 15 + b"\x01")
    assert _decrypt_reason(KEY, field) is Reason.DECRYPT_FAILED


def test_wrong_key_fails():
    assert _decrypt_reason("yyyyyyy", PHONE_FIELD) is Reason.DECRYPT_FAILED


def test_wrong_key_size_fails():
    assert _decrypt_reason(KEY, PHONE_FIELD, bits=128) is Reason.DECRYPT_FAILED


def test_ciphertext_not_whole_blocks_fails():
    field = "0123456789abcdef" + base64.b64encode(b"x" * 15).decode("ascii")
    assert _decrypt_reason(KEY, field) is Reason.DECRYPT_FAILED


@pytest.mark.parametrize(
    "value",
    ["", "0123456789abcdef", "short", "é123456789abcdef3skyNB7o5RcplcTHhYGNyA=="],
    ids=["empty", "iv-only", "short", "non-ascii-iv"],
)
def test_value_without_iv_and_ciphertext_fails(value):
    assert _decrypt_reason(KEY, value) is Reason.DECRYPT_FAILED
