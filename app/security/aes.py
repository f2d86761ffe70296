"""AES-CBC field encryption: credentials out, customer phone/email in (security.md §6)."""

import base64
import functools
import hashlib
import secrets
import string

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from app.security.errors import Reason, SecurityError

IV_LENGTH = 16
_BLOCK_BYTES = algorithms.AES.block_size // 8
IV_ALPHABET = string.ascii_letters + string.digits
_KEY_BYTES = {128: 16, 256: 32}
_SHA1_BYTES = 20


def sha1prng_bytes(seed: str, n: int) -> bytes:
    """Return the first n bytes of Java's SecureRandom("SHA1PRNG") seeded with UTF-8(seed)."""
    # SHA-1 is Huawei's choice, not ours: interoperability needs the exact Java PRNG output.
    state = bytearray(hashlib.sha1(seed.encode("utf-8")).digest())  # noqa: S324
    out = bytearray()
    while len(out) < n:
        block = hashlib.sha1(state).digest()  # noqa: S324
        out += block
        _update_state(state, block)
    return bytes(out[:n])


# The configured keys are few and each call would derive the same AES key again.
@functools.lru_cache(maxsize=32)
def derive_aes_key(key: str, bits: int) -> bytes:
    """Derive the AES key Huawei's Java code draws from a PRNG seeded with the key string."""
    # security.md §6: KeyGenerator.init(bits, SHA1PRNG(key)) — the key's own bytes are NOT used.
    if bits not in _KEY_BYTES:
        raise ValueError(f"AES key size must be 128 or 256 bits, not {bits}")
    return sha1prng_bytes(key, _KEY_BYTES[bits])


def encryption_bits(encrypt_type: str | int | None) -> int:
    """Map the `encryptType` field to an AES key size: "1" or absent → 256, "2" → 128."""
    text = "" if encrypt_type is None else str(encrypt_type).strip()
    if text in ("", "1"):
        return 256
    if text == "2":
        return 128
    raise ValueError(f"unknown encryptType {text!r}")


def encrypt_field(key: str, plaintext: str, bits: int = 256, iv: str | None = None) -> str:
    """Encrypt a field as IV16 + b64(AES-CBC-PKCS7(plaintext)); a random IV unless one is given."""
    if iv is None:
        iv = "".join(secrets.choice(IV_ALPHABET) for _ in range(IV_LENGTH))
    elif len(iv) != IV_LENGTH or any(char not in IV_ALPHABET for char in iv):
        raise ValueError("IV must be 16 characters from [A-Za-z0-9]")
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    # The 16 ASCII characters of the IV are the IV bytes themselves.
    encryptor = _cipher(derive_aes_key(key, bits), iv.encode("ascii")).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return iv + base64.b64encode(ciphertext).decode("ascii")


def decrypt_field(key: str, value: str, bits: int = 256) -> str:
    """Decrypt an IV16 + Base64 field; any defect raises SecurityError(DECRYPT_FAILED)."""
    aes_key = derive_aes_key(key, bits)  # a wrong bit size is a configuration error: ValueError
    # Form decoding turns a raw Base64 "+" into a space; the IV alphabet has neither.
    value = value.replace(" ", "+")
    iv_text, encoded = value[:IV_LENGTH], value[IV_LENGTH:]
    try:
        iv = iv_text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise SecurityError(Reason.DECRYPT_FAILED, "IV is not ASCII") from exc
    if len(iv) != IV_LENGTH or not encoded:
        raise SecurityError(Reason.DECRYPT_FAILED, "value is shorter than IV + ciphertext")
    try:
        # Strict Base64: a lost "+" must fail here, not decrypt to garbage (security.md §6).
        ciphertext = base64.b64decode(encoded, validate=True)
        if not ciphertext or len(ciphertext) % _BLOCK_BYTES:
            raise ValueError("ciphertext is not a whole number of AES blocks")
        decryptor = _cipher(aes_key, iv).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
        plaintext = unpadder.update(padded) + unpadder.finalize()
        return plaintext.decode("utf-8")
    except ValueError as exc:  # binascii.Error, bad padding and UnicodeDecodeError included
        raise SecurityError(Reason.DECRYPT_FAILED, "field does not decrypt with this key") from exc


def _update_state(state: bytearray, block: bytes) -> None:
    """Advance the SHA1PRNG state to state + block + 1, as sun.security.provider.SecureRandom."""
    # security.md §6: a 160-bit sum, byte 0 first, but with Java's SIGNED bytes, so the carry
    # can be -1. An unsigned big-integer add yields a different second block (wrong AES-256 key).
    carry = 1
    changed = False
    for index in range(_SHA1_BYTES):
        total = _signed(state[index]) + _signed(block[index]) + carry
        new_byte = total & 0xFF
        changed = changed or new_byte != state[index]
        state[index] = new_byte
        carry = total >> 8  # arithmetic shift, like Java's >> on int
    if not changed:
        state[0] = (state[0] + 1) & 0xFF


def _signed(byte: int) -> int:
    """Read an unsigned byte as Java's signed byte."""
    return byte - 256 if byte > 127 else byte


def _cipher(aes_key: bytes, iv: bytes) -> Cipher:
    """Build the AES-CBC cipher for a derived key and a 16-byte IV."""
    return Cipher(algorithms.AES(aes_key), modes.CBC(iv))
