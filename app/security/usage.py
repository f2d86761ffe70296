"""Body signature of the usage push, merchant → marketplace (security.md §8)."""

import base64
import hashlib
import hmac
import json


def canonical_usage_body(obj: object) -> str:
    """Serialise a usage body once: keys sorted recursively, compact, ASCII-only."""
    # The signed string must be the exact body sent. ensure_ascii=True (non-ASCII as \uXXXX, as
    # for Body-Sign in security.md §3) makes the text and its UTF-8 bytes on the wire identical.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def compute_usage_signature(key: str, ts: str, nonce: str, body: str) -> str:
    """Return b64(HMAC(key, "ts=" + ts + "&nonce=" + nonce + "&body=" + body))."""
    message = f"ts={ts}&nonce={nonce}&body={body}"
    digest = hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
