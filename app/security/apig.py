"""APIG `SDK-HMAC-SHA256` AK/SK signing of merchant → marketplace calls (security.md §9)."""

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"


def sign_apig_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    ak: str,
    sk: str,
    sdk_date: str | None = None,
) -> dict[str, str]:
    """Return a copy of the headers with `X-Sdk-Date`, `Host` and `Authorization` added."""
    signed = dict(headers)
    lower_names = {name.lower() for name in signed}
    if "x-sdk-date" not in lower_names:
        # The gateway rejects a date more than 15 minutes away from its own clock.
        signed[DATE_HEADER] = sdk_date or datetime.now(UTC).strftime(DATE_FORMAT)
    if "host" not in lower_names:
        signed["Host"] = urlsplit(url).netloc
    date = _header(signed, "x-sdk-date")
    signed_headers = _signed_header_names(signed)
    request = canonical_request(method, url, signed, body)
    signature = hmac.new(
        sk.encode("utf-8"), string_to_sign(request, date).encode("utf-8"), hashlib.sha256
    ).hexdigest()
    signed["Authorization"] = (
        f"{ALGORITHM} Access={ak}, SignedHeaders={signed_headers}, Signature={signature}"
    )
    return signed


def canonical_request(method: str, url: str, headers: Mapping[str, str], body: bytes) -> str:
    """Build the canonical request over every given header (which must include host and date)."""
    parts = urlsplit(url)
    canonical_headers = "".join(
        f"{name}:{value}\n" for name, value in sorted(_lower_headers(headers).items())
    )
    return "\n".join(
        [
            method.upper(),
            _canonical_uri(parts.path),
            _canonical_query(parts.query),
            canonical_headers,
            _signed_header_names(headers),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    """Build the string the secret key signs: algorithm, date and the canonical request's hash."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def _canonical_uri(path: str) -> str:
    """Re-encode each path segment with only "~" safe and end the path in "/"."""
    # As Huawei's signer does: decode first so an already-encoded path is not encoded twice.
    uri = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def _canonical_query(query: str) -> str:
    """Sort the parameters by name (values of a repeated name too) and percent-encode them."""
    values_by_name: dict[str, list[str]] = {}
    for segment in query.split("&"):
        name, _, value = segment.partition("=")
        if name:
            values_by_name.setdefault(unquote(name), []).append(unquote(value))
    return "&".join(
        f"{_encode(name)}={_encode(value)}"
        for name in sorted(values_by_name)
        for value in sorted(values_by_name[name])
    )


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case header names and strip their values."""
    return {name.lower(): value.strip() for name, value in headers.items()}


def _signed_header_names(headers: Mapping[str, str]) -> str:
    """Join the sorted lower-case header names with ";"."""
    return ";".join(sorted(_lower_headers(headers)))


def _header(headers: Mapping[str, str], lower_name: str) -> str:
    """Find a header value by case-insensitive name."""
    return _lower_headers(headers)[lower_name]


def _encode(text: str) -> str:
    """Percent-encode everything but unreserved characters ("/" included)."""
    return quote(text, safe="~")
