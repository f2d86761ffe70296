"""Sign requests the way the marketplace does, for tests to send through the Flask test client."""

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from app.security import (
    canonical_payload,
    compute_kit_signature,
    compute_v1_token,
    compute_v2_signature,
    kit_v1_string_to_sign,
    v1_string_to_sign,
)

BASIC_KEY = "ebf72724-bacc-414b-a86b-fda5bcc8153c"
SECOND_BASIC_KEY = "6f1c2b7e-0d3a-4c5e-9b8a-123456789abc"
KIT_KEY = "TEST_KIT_ACCESS_KEY_123"
LICENSE_KEY = "TEST_LICENSE_ACCESS_KEY_789"
GENERAL_KEY = "TEST_GENERAL_ACCESS_KEY_000"
WRONG_KEY = "00000000-0000-0000-0000-000000000000"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def v1_timestamp(offset: timedelta = timedelta(0), zone: timedelta = timedelta(0)) -> str:
    """Return a V1 timeStamp (yyyyMMddHHmmssSSS) in the given zone."""
    moment = datetime.now(UTC) + zone + offset
    return moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"


class Marketplace:
    """The marketplace's side of the wire: builds, signs and sends calls like KooGallery."""

    def __init__(self, client):
        self.client = client

    def v1_get(self, path, params, key=BASIC_KEY, timestamp=None):
        """Send a V1 GET call with `authToken` over the percent-encoded query."""
        params = {**params, "timeStamp": timestamp or v1_timestamp()}
        token = compute_v1_token(key, params["timeStamp"], v1_string_to_sign(params))
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
        return self.client.get(f"{path}?{query}&authToken={quote(token, safe='')}")

    def kit_v1_post(self, path, body, key=BASIC_KEY, token=None):
        """Send a V1 kit call with the `authToken` header over the body fields."""
        body = {"timeStamp": v1_timestamp(zone=timedelta(hours=8)), **body}
        if token is None:
            token = compute_v1_token(key, body["timeStamp"], kit_v1_string_to_sign(body))
        headers = {"authToken": token} if token else {}
        return self.client.post(path, data=json.dumps(body), headers=headers)

    def saas_v1(self, activity, key=BASIC_KEY, **params):
        """Send a V1 SaaS call to /saas."""
        return self.v1_get("/saas", {"activity": activity, **params}, key=key)

    def saas_v2(self, activity, key=BASIC_KEY, **body):
        """Send a V2 SaaS call to /saas."""
        return self.v2_post("/saas", {"activity": activity, **body}, key=key)

    def v2_post(self, path, body, key=BASIC_KEY, timestamp=None, nonce=None, raw=None, send=None):
        """Send a V2 call signed in the query string.

        `send` replaces what is sent for "signature", "timestamp" or "nonce" (None leaves it out).
        """
        raw = raw if raw is not None else json.dumps(body, separators=(",", ":"))
        timestamp = str(timestamp if timestamp is not None else now_ms())
        nonce = nonce or secrets.token_hex(32).upper()
        signature = compute_v2_signature(key, nonce, timestamp, canonical_payload(body))
        query = {"signature": signature, "timestamp": timestamp, "nonce": nonce, **(send or {})}
        query = {name: value for name, value in query.items() if value is not None}
        return self.client.post(path, query_string=query, data=raw)

    def kit_post(self, path, body, key=KIT_KEY, timestamp=None, nonce=None, raw=None, send=None):
        """Send a V2 kit call signed in the x-sign headers; `send` as for v2_post."""
        raw = raw if raw is not None else json.dumps(body)
        timestamp = str(timestamp if timestamp is not None else now_ms())
        nonce = nonce or secrets.token_hex(32).upper()
        headers = {
            "x-sign": compute_kit_signature(key, nonce, timestamp, canonical_payload(body)),
            "x-timestamp": timestamp,
            "x-nonce": nonce,
        }
        headers.update(
            {f"x-{part}".replace("signature", "sign"): v for part, v in (send or {}).items()}
        )
        headers = {name: value for name, value in headers.items() if value is not None}
        return self.client.post(path, data=raw, headers=headers)
