"""Decorators that verify a marketplace call before the view runs.

Each decorator reads the request, calls the pure functions in app.security, and either rejects the
call with the documented result code (the view never runs, nothing changes, the call is logged with
the reason) or puts the verified key on `g.verified_key` and the parameters on `g.params`.
Apply them directly under `@bp.route`, like Flask's `login_required`.
"""

import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import current_app, g, request
from sqlalchemy import delete

from app.calllog import begin_call, current_call, note_params
from app.extensions import db, insert_if_new
from app.models import SeenNonce, utcnow
from app.results import ResultCode, marketplace_answer
from app.security import (
    Reason,
    SecurityError,
    decode_v1_query,
    parse_json_object,
    verify_kit_signature,
    verify_v1_body,
    verify_v1_query,
    verify_v2_signature,
)
from config import parse_key_ring

log = logging.getLogger(__name__)

# Reasons found here rather than in app.security, because they need the database or a setting.
REPLAYED_NONCE = "replayed_nonce"
NONCE_TOO_LONG = "nonce_too_long"

# security.md §4: timestamp and nonce problems are parameter errors, signature problems are
# authentication failures.
RESULT_CODE_FOR_REASON = {
    Reason.MISSING_TIMESTAMP: ResultCode.INVALID_PARAMETER,
    Reason.BAD_TIMESTAMP: ResultCode.INVALID_PARAMETER,
    Reason.STALE_TIMESTAMP: ResultCode.INVALID_PARAMETER,
    Reason.FUTURE_TIMESTAMP: ResultCode.INVALID_PARAMETER,
    Reason.MISSING_NONCE: ResultCode.INVALID_PARAMETER,
    Reason.MALFORMED_BODY: ResultCode.INVALID_PARAMETER,
    NONCE_TOO_LONG: ResultCode.INVALID_PARAMETER,
    Reason.MISSING_SIGNATURE: ResultCode.AUTH_FAILED,
    Reason.BAD_SIGNATURE: ResultCode.AUTH_FAILED,
    Reason.NO_KEY: ResultCode.AUTH_FAILED,
    REPLAYED_NONCE: ResultCode.AUTH_FAILED,
}

# Must match the length of SeenNonce.nonce; the marketplace sends 32–64 characters.
MAX_NONCE_LENGTH = 128
NONCE_PURGE_INTERVAL = 60.0
_last_nonce_purge = 0.0

# V1 timeStamp: yyyyMMddHHmmssSSS; one documentation example has 15 digits, so the milliseconds
# are optional. GET calls send UTC, kit V1 bodies send Beijing time (UTC+8).
BEIJING = timedelta(hours=8)

KeySetting = str | tuple[str, ...] | Callable[[dict], str]


def reject(reason: str) -> object:
    """Answer a call that failed verification with the code for its reason."""
    call = current_call()
    if call is not None:
        call.reason = str(reason)
    return marketplace_answer(RESULT_CODE_FOR_REASON[reason], reason=str(reason))


def key_ring(settings: str | tuple[str, ...]) -> tuple[str, ...]:
    """Return the configured keys for one interface type (or several, tried in order)."""
    names = (settings,) if isinstance(settings, str) else settings
    keys = tuple(key for name in names for key in parse_key_ring(current_app.config.get(name)))
    if not keys:
        log.warning("%s is not configured: calls that need it are refused", " or ".join(names))
    return keys


def accept(call, key: str, params: dict) -> None:
    """Mark the call verified and hand the key and parameters to the view."""
    call.verified = True
    g.answer_key = key
    g.verified_key = key
    g.params = params
    note_params(call, params)


def require_v1_query_token(
    family: str, key_setting: str | tuple[str, ...] = "KOOGALLERY_BASIC_KEY"
):
    """Verify a V1 GET call's `authToken` over its query string (security.md §1)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            call = begin_call(family, "v1")
            note_params(call, decode_v1_query(request.query_string))
            keys = key_ring(key_setting)
            g.answer_key = keys[0] if keys else None
            try:
                verified = verify_v1_query(keys, request.query_string)
                check_v1_age(verified.params.get("timeStamp"), utc_offset=timedelta(0))
            except SecurityError as error:
                return reject(error.reason)
            accept(call, verified.key, verified.params)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def require_v1_header_token(family: str = "kit", key_setting: str = "KOOGALLERY_BASIC_KEY"):
    """Verify a V1 kit call's `authToken` header over its JSON body (security.md §2)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            call = begin_call(family, "kit-v1")
            keys = key_ring(key_setting)
            g.answer_key = keys[0] if keys else None
            try:
                body = parse_json_object(request.get_data())
                note_params(call, body)
                key = verify_v1_body(keys, request.headers.get("authToken"), body)
                check_v1_age(body.get("timeStamp"), utc_offset=BEIJING)
            except SecurityError as error:
                return reject(error.reason)
            accept(call, key, body)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def require_v2_signature(family: str, key_setting: KeySetting = "KOOGALLERY_BASIC_KEY"):
    """Verify a V2 call's `signature`/`timestamp`/`nonce` query parameters (security.md §4).

    `key_setting` may be a function of the body, for a URL whose activities use different keys
    (the License URL serves 授权码 2.0 with one key and online activation with another).
    """
    return _require_signed_body(
        family,
        "v2",
        key_setting,
        verify_v2_signature,
        lambda: (request.args.get(name) for name in ("signature", "timestamp", "nonce")),
    )


def require_kit_signature(family: str = "kit", key_setting: str = "KOOGALLERY_KIT_KEY"):
    """Verify a V2 kit call's `x-sign`/`x-timestamp`/`x-nonce` headers (security.md §5)."""
    return _require_signed_body(
        family,
        "kit-v2",
        key_setting,
        verify_kit_signature,
        lambda: (request.headers.get(name) for name in ("x-sign", "x-timestamp", "x-nonce")),
    )


def _require_signed_body(family, protocol, key_setting: KeySetting, verify, read_signature):
    """Build a decorator for the V2 and kit schemes, which differ only in where the parts are."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            call = begin_call(family, protocol)
            raw = request.get_data()
            body = _body_for_log(call, raw)
            setting = key_setting(body or {}) if callable(key_setting) else key_setting
            keys = key_ring(setting)
            g.answer_key = keys[0] if keys else None
            signature, timestamp, nonce = read_signature()
            try:
                key = verify(
                    keys,
                    signature=signature,
                    timestamp=timestamp,
                    nonce=nonce,
                    body=raw,
                    parsed=body,
                    now_ms=now_ms(),
                    tolerance_ms=tolerance_ms(),
                )
            except SecurityError as error:
                return reject(error.reason)
            g.answer_key = key
            if len(nonce) > MAX_NONCE_LENGTH:
                return reject(NONCE_TOO_LONG)
            # Checked after the signature, so that nobody can use up nonces without the key.
            if not remember_nonce(protocol, nonce):
                return reject(REPLAYED_NONCE)
            accept(call, key, body)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def now_ms() -> int:
    """Return the current UNIX time in milliseconds, the unit of V2 timestamps."""
    return time.time_ns() // 1_000_000


def tolerance_ms() -> int:
    """Return the accepted clock difference for V2 and kit timestamps."""
    return current_app.config["KOOGALLERY_TIMESTAMP_TOLERANCE"] * 1000


def check_v1_age(timestamp: str | None, utc_offset: timedelta) -> None:
    """Refuse a V1 timeStamp older or newer than KOOGALLERY_V1_MAX_AGE, when that is set."""
    max_age = current_app.config.get("KOOGALLERY_V1_MAX_AGE")
    if max_age is None:
        return
    try:
        sent = datetime.strptime((timestamp or "")[:14], "%Y%m%d%H%M%S")
    except ValueError:
        raise SecurityError(Reason.BAD_TIMESTAMP) from None
    sent = sent.replace(tzinfo=UTC) - utc_offset
    age = (datetime.now(UTC) - sent).total_seconds()
    if age > max_age:
        raise SecurityError(Reason.STALE_TIMESTAMP)
    if -age > max_age:
        raise SecurityError(Reason.FUTURE_TIMESTAMP)


def remember_nonce(scope: str, nonce: str) -> bool:
    """Record an accepted nonce; return False if it was seen before (a replay)."""
    purge_expired_nonces()
    # Kept for twice the window: a timestamp up to one window in the future stays acceptable
    # until one window after that.
    expires_at = utcnow() + timedelta(milliseconds=2 * tolerance_ms())
    return insert_if_new(SeenNonce, {"scope": scope, "nonce": nonce, "expires_at": expires_at})


def purge_expired_nonces(force: bool = False) -> int:
    """Delete expired nonces, at most once a minute per process unless forced."""
    global _last_nonce_purge
    if not force and time.monotonic() - _last_nonce_purge < NONCE_PURGE_INTERVAL:
        return 0
    _last_nonce_purge = time.monotonic()
    result = db.session.execute(delete(SeenNonce).where(SeenNonce.expires_at < utcnow()))
    db.session.commit()
    return result.rowcount


def _body_for_log(call, raw: bytes) -> dict | None:
    """Parse the body for the call log, the key choice and verification; None if malformed."""
    try:
        body = parse_json_object(raw)
    except SecurityError:
        # Verification parses it again to refuse it, after the checks that come first.
        call.params = {"malformed_body": f"{len(raw)} bytes"}
        return None
    note_params(call, body)
    return body
