"""RSA-OAEP decryption of `clientSecret` in applicationSync (security.md §7)."""

import base64
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.security.errors import Reason, SecurityError

MIN_KEY_BITS = 3072  # the marketplace refuses shorter merchant keys

# security.md §7: the OAEP hash is undocumented, so try the plausible variants in this order.
# The second is Java's "RSA/ECB/OAEPWithSHA-256AndMGF1Padding", whose MGF1 defaults to SHA-1.
# SHA-1 inside OAEP/MGF1 is still sound; it is here only because the sender may use it.
_OAEP_VARIANTS = (
    padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA256(), label=None),  # noqa: S303
    padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303
)


def load_private_key(pem_or_path: str) -> rsa.RSAPrivateKey:
    """Load an unencrypted RSA private key from PEM text, or from a file path when not PEM.

    A key that cannot be loaded is a configuration problem, so this raises ValueError (never
    SecurityError, which is reserved for rejecting untrusted input). Messages never echo the key.
    """
    if "-----BEGIN" in pem_or_path:
        # A PEM pasted into a one-line environment variable often carries literal "\n".
        if "\n" not in pem_or_path:
            pem_or_path = pem_or_path.replace("\\n", "\n")
        pem = pem_or_path.encode("ascii", errors="replace")
    else:
        try:
            pem = Path(pem_or_path).read_bytes()
        except OSError as exc:
            raise ValueError("RSA private key is neither PEM text nor a readable file") from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:  # TypeError: the PEM is password-protected
        raise ValueError("RSA private key could not be loaded (unencrypted PEM expected)") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("private key is not an RSA key")
    return key


def generate_private_key(bits: int = MIN_KEY_BITS) -> rsa.RSAPrivateKey:
    """Generate a new RSA key pair of at least 3072 bits."""
    if bits < MIN_KEY_BITS:
        raise ValueError(f"the marketplace requires RSA keys of at least {MIN_KEY_BITS} bits")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    """Serialise a private key as unencrypted PKCS#8 PEM text."""
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")


def public_key_base64(key: rsa.RSAPrivateKey) -> str:
    """Return the public key as one line of Base64 DER SubjectPublicKeyInfo (console format)."""
    der = key.public_key().public_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return base64.b64encode(der).decode("ascii")


def decrypt_oaep(private_key: rsa.RSAPrivateKey, ciphertext_b64: str) -> str:
    """Decrypt a Base64 RSA-OAEP ciphertext to text, or raise SecurityError(DECRYPT_FAILED)."""
    # A raw Base64 "+" may have become a space in transit; line breaks are never significant.
    cleaned = ciphertext_b64.replace(" ", "+").replace("\r", "").replace("\n", "")
    try:
        ciphertext = base64.b64decode(cleaned, validate=True)
    except ValueError as exc:
        raise SecurityError(Reason.DECRYPT_FAILED, "ciphertext is not valid Base64") from exc
    for oaep in _OAEP_VARIANTS:
        try:
            plaintext = private_key.decrypt(ciphertext, oaep)
        except ValueError:
            continue
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SecurityError(Reason.DECRYPT_FAILED, "plaintext is not UTF-8") from exc
    raise SecurityError(Reason.DECRYPT_FAILED, "no OAEP variant decrypts the ciphertext")
