"""V1 `authToken`: GET query strings (security.md §1) and kit POST bodies (security.md §2)."""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from app.security.errors import Reason, SecurityError

TOKEN_PARAM = "authToken"  # noqa: S105 - a parameter name, not a secret
TIMESTAMP_PARAM = "timeStamp"
_UNSIGNED_PARAMS = frozenset({TOKEN_PARAM})

# security.md §1 "the + problem": the marketplace sometimes leaves a Base64 `+` raw in the query.
# `unquote` keeps it (right for those values), `unquote_plus` turns it into a space (right when a
# value was form-encoded). Verify with both, `unquote` first.
_DECODINGS: tuple[Callable[[str], str], ...] = (unquote, unquote_plus)


@dataclass(frozen=True)
class V1Query:
    """A verified V1 query: the key that matched and the parameters as decoded when verified."""

    key: str
    params: dict[str, str]


def parse_raw_query(query: str | bytes) -> list[tuple[str, str]]:
    """Split a raw query string into undecoded (name, value) pairs, keeping blank values."""
    if isinstance(query, bytes):
        # Genuine values arrive percent-encoded; stray raw bytes only need to not crash here.
        query = query.decode("utf-8", errors="replace")
    # Accept a pasted "?a=b" as well as Flask's `request.query_string`, which has no "?".
    query = query.removeprefix("?")
    pairs = []
    for segment in query.split("&"):
        if not segment:
            continue
        name, _, value = segment.partition("=")
        pairs.append((name, value))
    return pairs


def decode_v1_query(query: str | bytes) -> dict[str, str]:
    """Decode a raw query string as verification first tries it (%XX only; first value wins)."""
    return _decode_first_wins(parse_raw_query(query), _DECODINGS[0])


def v1_string_to_sign(params: Mapping[str, str]) -> str:
    """Build `name=value&…` over all parameters but `authToken`, sorted by name (§1)."""
    signed = sorted(name for name in params if name not in _UNSIGNED_PARAMS)
    return "&".join(f"{name}={params[name]}" for name in signed)


def compute_v1_token(key: str, timestamp: str, string_to_sign: str) -> str:
    """Return b64(HMAC-SHA256(key + timestamp, string_to_sign))."""
    # security.md §1 step 5: the HMAC key is the Key string with the request's timeStamp appended.
    digest = hmac.new(
        (key + timestamp).encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_v1_query(keys: Sequence[str], query: str | bytes) -> V1Query:
    """Verify the `authToken` of a raw V1 query string; return the matching key and parameters."""
    if not keys:
        raise SecurityError(Reason.NO_KEY)
    raw_pairs = parse_raw_query(query)
    attempts: list[dict[str, str]] = []
    for decode in _DECODINGS:
        params = _decode_first_wins(raw_pairs, decode)
        if params not in attempts:  # without a raw "+" both decodings agree; verify once
            attempts.append(params)
    first = attempts[0]
    if not first.get(TOKEN_PARAM, "").strip():
        raise SecurityError(Reason.MISSING_SIGNATURE, "no authToken parameter")
    if not first.get(TIMESTAMP_PARAM, "").strip():
        raise SecurityError(Reason.MISSING_TIMESTAMP, "no timeStamp parameter")
    for params in attempts:
        received = _restore_plus(params.get(TOKEN_PARAM, ""))
        string_to_sign = v1_string_to_sign(params)
        timestamp = params.get(TIMESTAMP_PARAM, "")
        for key in keys:
            if _tokens_match(compute_v1_token(key, timestamp, string_to_sign), received):
                return V1Query(key=key, params=params)
    raise SecurityError(Reason.BAD_SIGNATURE, "authToken matches no key")


def kit_v1_string_to_sign(body: Mapping[str, object]) -> str:
    """Build `name=value&…` over the non-blank top-level body fields, sorted by name (§2)."""
    fields = {}
    for name, value in body.items():
        text = _field_text(value)
        # security.md §2: unlike GET, null, empty and whitespace-only values are left out.
        if text is None or not text.strip():
            continue
        fields[name] = text
    return "&".join(f"{name}={fields[name]}" for name in sorted(fields))


def verify_v1_body(keys: Sequence[str], token: str | None, body: Mapping[str, object]) -> str:
    """Verify the `authToken` header of a V1 kit POST against its JSON body; return the key."""
    if not keys:
        raise SecurityError(Reason.NO_KEY)
    if token is None or not token.strip():
        raise SecurityError(Reason.MISSING_SIGNATURE, "no authToken header")
    timestamp = _field_text(body.get(TIMESTAMP_PARAM))
    if timestamp is None or not timestamp.strip():
        raise SecurityError(Reason.MISSING_TIMESTAMP, "no timeStamp field in the body")
    received = _restore_plus(token.strip())
    string_to_sign = kit_v1_string_to_sign(body)
    for key in keys:
        if _tokens_match(compute_v1_token(key, timestamp, string_to_sign), received):
            return key
    raise SecurityError(Reason.BAD_SIGNATURE, "authToken matches no key")


def _decode_first_wins(
    pairs: list[tuple[str, str]], decode: Callable[[str], str]
) -> dict[str, str]:
    """Decode names and values; for a repeated name only the first value counts (§1 step 4)."""
    params: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        params.setdefault(decode(raw_name), decode(raw_value))
    return params


def _field_text(value: object) -> str | None:
    """Render a JSON body value the way the Java side stringifies it (security.md §2)."""
    if value is None:
        return None
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _restore_plus(token: str) -> str:
    """Turn spaces back into `+`; Base64 never contains a space, form decoding made it one."""
    return token.replace(" ", "+")


def _tokens_match(expected: str, received: str) -> bool:
    """Compare in constant time; bytes, because a received value may hold non-ASCII text."""
    return hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8"))
