"""The licence issuer hook: what a License product's licence is, and who can check it.

Replace the default by naming your own class in KOOGALLERY_LICENSE_ISSUER=package.module:Class;
it is created once per process with the app's config.

The default issues a compact signed document that the customer's software verifies offline with
the merchant's Ed25519 public key (README, "Verifying a licence offline"):

    KGL1.<base64url(JSON document)>.<base64url(Ed25519 signature of "KGL1.<payload>")>

Machine codes and device fingerprints come from the buyer. They are copied into the document as
text and never decoded, evaluated or executed: the signature is what makes them trustworthy.
"""

import base64
import importlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import current_app

LICENSE_PREFIX = "KGL1"
DOCUMENT_FORMAT = "koogallery-license/1"


class InvalidLicense(Exception):
    """Raised when a licence text is malformed or its signature does not verify."""


@dataclass(frozen=True)
class LicenseRequest:
    """Everything known about the licence to issue."""

    kind: str  # "v1" (getLicense) or "device" (getLicenseAsync)
    instance_id: str
    order_id: str | None = None
    customer_id: str | None = None
    product_id: str | None = None
    sku_code: str | None = None
    quantity: int | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    # The machine code (V1 saasExtendParams) or device fingerprint, as the buyer sent it.
    bound_to: str | None = None
    event_id: str | None = None
    test: bool = False


class Later:
    """Returned by issue() when the licence will be ready later.

    getLicenseAsync then answers `000004`; deliver the licence with
    `app.license.service.deliver_license(event_id, text)` or
    `flask --app wsgi market deliver-license EVENT_ID --file LICENSE`, which stores it and
    uploads it to the marketplace (字符串/文件流上传).
    """


LATER = Later()


class LicenseIssuer:
    """The interface; subclass it to issue your own licence format."""

    def __init__(self, config: Mapping):
        self.config = config

    def issue(self, request: LicenseRequest) -> str | Later:
        """Return the licence text for a request, or LATER."""
        raise NotImplementedError

    def requires_fingerprint(self) -> bool:
        """Tell whether getLicenseAsync must carry a device fingerprint (else `000903`)."""
        return bool(self.config.get("KOOGALLERY_LICENSE_REQUIRE_FINGERPRINT"))


class Ed25519LicenseIssuer(LicenseIssuer):
    """The default: a signed JSON document, verifiable offline with the public key."""

    def issue(self, request: LicenseRequest) -> str:
        """Sign a new licence document for the request."""
        document = {
            "format": DOCUMENT_FORMAT,
            "licenseId": str(uuid.uuid4()),
            "issuedAt": _iso(datetime.now(UTC)),
            **{
                _camel(name): _iso(value) if isinstance(value, datetime) else value
                for name, value in asdict(request).items()
                if value is not None
            },
        }
        return encode_license(document, signing_key(self.config))


def encode_license(document: dict, private_key: Ed25519PrivateKey) -> str:
    """Serialise and sign a licence document."""
    payload = _b64url(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    signing_input = f"{LICENSE_PREFIX}.{payload}".encode("ascii")
    return f"{LICENSE_PREFIX}.{payload}.{_b64url(private_key.sign(signing_input))}"


def verify_license(text: str, public_key: Ed25519PublicKey) -> dict:
    """Check a licence's signature and return its document."""
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] != LICENSE_PREFIX:
        raise InvalidLicense(f"not a {LICENSE_PREFIX} licence")
    try:
        public_key.verify(_unb64url(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii"))
        document = json.loads(_unb64url(parts[1]))
    except (InvalidSignature, ValueError, UnicodeEncodeError):
        raise InvalidLicense("the signature does not verify") from None
    if not isinstance(document, dict) or document.get("format") != DOCUMENT_FORMAT:
        raise InvalidLicense("unknown document format")
    return document


def generate_signing_key_pem() -> str:
    """Return a new Ed25519 private key as PKCS#8 PEM."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


def load_signing_key(pem_or_path: str) -> Ed25519PrivateKey:
    """Load the Ed25519 private key from PEM text or a file path."""
    text = pem_or_path if "-----BEGIN" in pem_or_path else Path(pem_or_path).read_text()
    key = serialization.load_pem_private_key(text.replace("\\n", "\n").encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("KOOGALLERY_LICENSE_SIGNING_KEY is not an Ed25519 private key")
    return key


def signing_key(config: Mapping) -> Ed25519PrivateKey:
    """Return the configured licence signing key."""
    value = config.get("KOOGALLERY_LICENSE_SIGNING_KEY")
    if not value:
        raise LookupError("KOOGALLERY_LICENSE_SIGNING_KEY is not set")
    return load_signing_key(value)


def public_key_pem(private_key: Ed25519PrivateKey) -> str:
    """Return the public key to build into the merchant's software."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def load_issuer(config: Mapping) -> LicenseIssuer:
    """Create the issuer named by KOOGALLERY_LICENSE_ISSUER (module:Class)."""
    target = config.get("KOOGALLERY_LICENSE_ISSUER") or "app.licensing:Ed25519LicenseIssuer"
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)(config)


def get_issuer() -> LicenseIssuer:
    """Return the app's licence issuer, created on first use."""
    extensions = current_app.extensions
    if "koogallery_license_issuer" not in extensions:
        extensions["koogallery_license_issuer"] = load_issuer(current_app.config)
    return extensions["koogallery_license_issuer"]


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
