"""V2 basic-interface `signature` (security.md §4) and joint-operation kit `x-sign` (§5)."""

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence

from app.security.errors import Reason, SecurityError

DEFAULT_TOLERANCE_MS = 60_000

# Milliseconds since the epoch; 18 digits is far beyond any real clock and keeps int() cheap.
_DECIMAL_TIMESTAMP = re.compile(r"[0-9]{1,18}")


def canonical_payload(body: Mapping[str, object]) -> str:
    """Serialise a body the way Huawei's V2 sample does before signing (security.md §4)."""
    # Top level sorted, nulls dropped, compact, raw UTF-8; nested values stay in received order.
    return json.dumps(
        {name: value for name, value in sorted(body.items()) if value is not None},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def parse_json_object(raw: bytes | str) -> dict:
    """Parse a request body that must be a JSON object; duplicate keys: the last one wins."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        # Java's parsers reject NaN/Infinity, so a body holding them cannot be a genuine call.
        parsed = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise SecurityError(Reason.MALFORMED_BODY, "body is not valid UTF-8 JSON") from exc
    if not isinstance(parsed, dict):
        raise SecurityError(Reason.MALFORMED_BODY, "body is not a JSON object")
    return parsed


def compute_v2_inner_digest(key: str, payload: str) -> str:
    """Return hex(HMAC(key, payload)), the digest the V2 signature wraps."""
    return _hmac_hex(key, payload)


def compute_v2_signature(key: str, nonce: str, timestamp: str, payload: str) -> str:
    """Return hex(HMAC(key, key + nonce + timestamp + hex(HMAC(key, payload))))."""
    # security.md §4: the payload is HMAC'd twice; the kit variant (§5) skips the inner digest.
    return _hmac_hex(key, key + nonce + timestamp + compute_v2_inner_digest(key, payload))


def compute_kit_signature(key: str, nonce: str, timestamp: str, payload: str) -> str:
    """Return hex(HMAC(key, key + nonce + timestamp + payload)); kit signing has no inner digest."""
    return _hmac_hex(key, key + nonce + timestamp + payload)


def check_timestamp(timestamp: str | None, now_ms: int, tolerance_ms: int) -> int:
    """Parse a millisecond timestamp and reject it outside now ± tolerance."""
    if timestamp is None or not timestamp.strip():
        raise SecurityError(Reason.MISSING_TIMESTAMP)
    if not _DECIMAL_TIMESTAMP.fullmatch(timestamp):
        raise SecurityError(Reason.BAD_TIMESTAMP, "timestamp is not a decimal number")
    timestamp_ms = int(timestamp)
    # security.md §4: the docs say ±60 s, Huawei's sample only rejects the past; check both sides.
    if timestamp_ms < now_ms - tolerance_ms:
        raise SecurityError(Reason.STALE_TIMESTAMP, f"{now_ms - timestamp_ms} ms old")
    if timestamp_ms > now_ms + tolerance_ms:
        raise SecurityError(Reason.FUTURE_TIMESTAMP, f"{timestamp_ms - now_ms} ms ahead")
    return timestamp_ms


def verify_v2_signature(
    keys: Sequence[str],
    *,
    signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    body: bytes,
    now_ms: int,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
    parsed: dict | None = None,
) -> str:
    """Verify a V2 basic-interface `signature` query parameter; return the matching key."""
    return _verify(
        keys,
        compute_v2_signature,
        signature=signature,
        timestamp=timestamp,
        nonce=nonce,
        body=body,
        parsed=parsed,
        now_ms=now_ms,
        tolerance_ms=tolerance_ms,
        # security.md §4 robustness: also accept a signature over the raw body text.
        accept_raw_body=True,
    )


def verify_kit_signature(
    keys: Sequence[str],
    *,
    signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    body: bytes,
    now_ms: int,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
    parsed: dict | None = None,
) -> str:
    """Verify a joint-operation kit `x-sign` header; return the matching key."""
    return _verify(
        keys,
        compute_kit_signature,
        signature=signature,
        timestamp=timestamp,
        nonce=nonce,
        body=body,
        parsed=parsed,
        now_ms=now_ms,
        tolerance_ms=tolerance_ms,
        # security.md §5: documented kit bodies are unsorted, spaced and even repeat keys, so
        # only the canonical payload is meaningful; never sign the raw text.
        accept_raw_body=False,
    )


def _verify(
    keys: Sequence[str],
    compute: Callable[[str, str, str, str], str],
    *,
    signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    body: bytes,
    parsed: dict | None,
    now_ms: int,
    tolerance_ms: int,
    accept_raw_body: bool,
) -> str:
    """Run the checks in the order of Huawei's sample (security.md §4), then try every key.

    `parsed` is `body` already parsed by the caller, so that a large body is parsed only once.
    """
    if not keys:
        raise SecurityError(Reason.NO_KEY)
    check_timestamp(timestamp, now_ms, tolerance_ms)
    if nonce is None or not nonce.strip():
        raise SecurityError(Reason.MISSING_NONCE)
    if signature is None or not signature.strip():
        raise SecurityError(Reason.MISSING_SIGNATURE)
    payloads = [canonical_payload(parsed if parsed is not None else parse_json_object(body))]
    if accept_raw_body:
        raw_text = body.decode("utf-8")  # parse_json_object has proven it is valid UTF-8
        if raw_text not in payloads:
            payloads.append(raw_text)
    received = signature.strip().lower().encode("utf-8")
    for key in keys:
        for payload in payloads:
            expected = compute(key, nonce, timestamp, payload).encode("ascii")
            if hmac.compare_digest(expected, received):
                return key
    raise SecurityError(Reason.BAD_SIGNATURE, "signature matches no key")


def _hmac_hex(key: str, message: str) -> str:
    """Return lower-case hex HMAC-SHA256 over UTF-8 text."""
    return hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def _reject_constant(name: str) -> object:
    """Refuse the non-standard JSON constants NaN, Infinity and -Infinity."""
    raise ValueError(f"non-standard JSON constant {name}")
