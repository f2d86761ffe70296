"""`Body-Sign`: the HMAC the marketplace expects on every answer (security.md §3)."""

import base64
import hashlib
import hmac
import re

from app.security.errors import Reason, SecurityError

BODY_SIGN_HEADER = "Body-Sign"  # exact case: the marketplace's checker is case-sensitive
SIGN_TYPE = "HMAC-SHA256"

# Both values must be double-quoted; the checker rejects `sign_type=HMAC-SHA256` unquoted.
_HEADER_ITEM = re.compile(r'\s*([A-Za-z_]+)="([^"]*)"\s*')


def compute_body_signature(key: str, body: bytes) -> str:
    """Return b64(HMAC-SHA256(key, body)) over the exact response bytes."""
    # security.md §3: the key alone, no timeStamp (unlike the V1 request token).
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def body_sign_header(key: str, body: bytes) -> str:
    """Return the `Body-Sign` header value for a response body."""
    return f'sign_type="{SIGN_TYPE}", signature="{compute_body_signature(key, body)}"'


def parse_body_sign_header(value: str | None) -> tuple[str, str]:
    """Split a `Body-Sign` value into (sign_type, signature), insisting on the quoted form."""
    items: dict[str, str] = {}
    for part in (value or "").split(","):
        match = _HEADER_ITEM.fullmatch(part)
        if match is None:
            raise SecurityError(Reason.MISSING_SIGNATURE, "Body-Sign is not in the quoted form")
        items[match.group(1)] = match.group(2)
    sign_type = items.get("sign_type", "")
    signature = items.get("signature", "")
    if not sign_type or not signature:
        raise SecurityError(Reason.MISSING_SIGNATURE, "Body-Sign lacks sign_type or signature")
    return sign_type, signature


def verify_body_sign_header(key: str, body: bytes, value: str | None) -> None:
    """Check a `Body-Sign` header against the exact body bytes it came with."""
    sign_type, signature = parse_body_sign_header(value)
    if sign_type != SIGN_TYPE:  # the public algorithm name, not a secret: no timing concern
        raise SecurityError(Reason.BAD_SIGNATURE, "Body-Sign sign_type is not HMAC-SHA256")
    expected = compute_body_signature(key, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8")):
        raise SecurityError(Reason.BAD_SIGNATURE, "Body-Sign signature does not match the body")
