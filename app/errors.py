"""App-level error handlers: a marketplace caller always gets a signed JSON answer.

The seller console reads every answer as JSON and shows "Parse response body failed" for an HTML
error page, so a 404, 405, 413, malformed request or unexpected exception on a marketplace path is
answered with HTTP 200 and a signed `000002` or `000005`, never with Flask's default pages.
"""

import logging

from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from app.calllog import begin_call, current_call
from app.extensions import db
from app.results import ResultCode, marketplace_answer
from config import parse_key_ring

log = logging.getLogger(__name__)

# Which family (and key) a path belongs to when no route matched it, longest prefix first.
FAMILY_BY_PATH_PREFIX = (
    ("/saas/produceAPI", "kit", "KOOGALLERY_KIT_KEY"),
    ("/saas", "saas", "KOOGALLERY_BASIC_KEY"),
    ("/license", "license", "KOOGALLERY_LICENSE_KEY"),
    ("/notify", "notify", "KOOGALLERY_GENERAL_KEY"),
)


def family_for_path(path: str) -> tuple[str, str] | None:
    """Return the family and key setting a marketplace path belongs to, or None for our own."""
    for prefix, family, setting in FAMILY_BY_PATH_PREFIX:
        if path == prefix or path.startswith(prefix + "/"):
            return family, setting
    return None


def is_marketplace_call() -> bool:
    """Tell whether the failing request must be answered in the marketplace's format."""
    return current_call() is not None or family_for_path(request.path) is not None


def _ensure_call_context() -> None:
    """Record a request that failed before or inside a decorator (no route, body too large)."""
    family, setting = family_for_path(request.path) or ("unknown", "KOOGALLERY_BASIC_KEY")
    if current_call() is None:
        begin_call(family, "v1" if request.method == "GET" else "v2")
    if g.get("answer_key") is None:
        keys = parse_key_ring(current_app.config.get(setting))
        g.answer_key = keys[0] if keys else None


def handle_http_error(error: HTTPException):
    """Answer 404/405/413/400 on marketplace paths with a signed `000002`."""
    if not is_marketplace_call():
        return jsonify(error=error.name, status=error.code), error.code
    _ensure_call_context()
    reason = error.name.lower().replace(" ", "_")
    return marketplace_answer(ResultCode.INVALID_PARAMETER, reason=reason)


def handle_unexpected_error(error: Exception):
    """Answer an unexpected exception with a signed `000005`, never a 500 page."""
    db.session.rollback()
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    log.exception("unexpected error on %s %s", request.method, request.path)
    if not is_marketplace_call():
        return jsonify(error="Internal Server Error", status=500), 500
    _ensure_call_context()
    return marketplace_answer(ResultCode.INTERNAL_ERROR, reason="internal_error")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on the app."""
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected_error)
