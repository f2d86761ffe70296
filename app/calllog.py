"""The call log: every marketplace call, accepted or rejected, with personal data redacted.

It is how a merchant finds out why the seller console says a call failed, so it records rejected
calls too: the reason says which check failed. It never stores a phone number, e-mail address,
password, token, signature or secret in clear.
"""

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Response, g, request

from app.extensions import db
from app.models import CallLog

log = logging.getLogger(__name__)

REDACTED = "***"

# Parameter names whose values are never stored (matched case-insensitively as substrings):
# customer contact data, credentials in answers, and anything that authenticates a request.
SENSITIVE_NAME_PARTS = (
    "phone",
    "mobile",
    "email",
    "password",
    "passwd",
    "secret",
    "token",
    "signature",
    "x-sign",
    "accesskey",
    "authorization",
)
# Merchant-defined listing parameters can carry anything (ID numbers, e-mail addresses), and the
# V1 form is Base64: keep only their length.
OPAQUE_NAMES = {"saasextendparams"}
EMAIL_PATTERN = re.compile(r"[^\s@\"',;:]+@[^\s@\"',;:]+\.[A-Za-z]{2,}")


def is_sensitive(name: str) -> bool:
    """Tell whether a parameter with this name must be redacted."""
    lowered = name.lower()
    return any(part in lowered for part in SENSITIVE_NAME_PARTS)


def redact(value: Any, name: str = "") -> Any:
    """Return a copy of a request or answer value that is safe to store and show."""
    if name and is_sensitive(name):
        return REDACTED if value not in (None, "") else value
    if name.lower() in OPAQUE_NAMES and isinstance(value, str):
        return f"{REDACTED} ({len(value)} chars)"
    if isinstance(value, Mapping):
        # {"name": "custEmail", "value": "..."}: extendParams name their values indirectly.
        pair_name = value.get("name")
        if isinstance(pair_name, str) and is_sensitive(pair_name) and "value" in value:
            return {**value, "value": REDACTED}
        return {key: redact(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return _redact_text(value)
    return value


def _redact_text(text: str) -> Any:
    # V1 kit bodies carry userList and orgInfo as JSON strings: redact what is inside them.
    if text[:1] in "[{":
        try:
            return redact(json.loads(text))
        except ValueError:
            pass
    return EMAIL_PATTERN.sub(REDACTED, text)


@dataclass
class CallContext:
    """What is known about the current marketplace call; written to the call log at the end."""

    family: str
    protocol: str
    started: float = field(default_factory=time.perf_counter)
    activity: str | None = None
    params: Any = None
    verified: bool = False
    reason: str | None = None
    result_code: str | None = None
    instance_id: str | None = None
    order_id: str | None = None
    test_flag: bool | None = None
    answer: dict | None = None


def begin_call(family: str, protocol: str) -> CallContext:
    """Start recording the current request as a marketplace call."""
    call = CallContext(family=family, protocol=protocol)
    g.call = call
    return call


def current_call() -> CallContext | None:
    """Return the call being recorded, if the current request is a marketplace call."""
    return g.get("call")


def note_params(call: CallContext, params: Any) -> None:
    """Attach the request's parameters and pick out the identifiers the log is searched by."""
    call.params = params
    if not isinstance(params, Mapping):
        return
    call.activity = _short(params.get("activity"), 64)
    call.instance_id = _short(params.get("instanceId"), 255)
    call.order_id = _short(params.get("orderId"), 64)
    flag = params.get("testFlag")
    if flag is not None:
        # Only "1" marks a debug call; pages disagree on Integer vs String, so compare as text.
        call.test_flag = str(flag) == "1"


def _short(value: Any, limit: int) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def record_call(response: Response) -> Response:
    """Write the current marketplace call to the call log (an after_request hook)."""
    call = current_call()
    if call is None:
        return response
    duration_ms = round((time.perf_counter() - call.started) * 1000)
    log.info(
        "%s %s %s -> %s%s (%d ms)",
        call.family,
        call.protocol,
        call.activity or "-",
        call.result_code or response.status_code,
        f" [{call.reason}]" if call.reason else "",
        duration_ms,
    )
    try:
        # The handler owns its transaction; whatever it left open is not ours to commit.
        db.session.rollback()
        # A plain INSERT of the table, with values as parameters: the statement is compiled
        # once and cached. An ORM object (or insert(CallLog)) would cost as much again.
        db.session.execute(
            CallLog.__table__.insert(),
            dict(
                method=request.method,
                path=request.path[:255],
                family=call.family,
                protocol=call.protocol,
                activity=call.activity,
                verified=call.verified,
                reason=call.reason,
                result_code=call.result_code,
                instance_id=call.instance_id,
                order_id=call.order_id,
                test_flag=call.test_flag,
                duration_ms=duration_ms,
                remote_addr=(request.remote_addr or "")[:64] or None,
                params=redact(call.params),
                answer=redact(call.answer),
            ),
        )
        db.session.commit()
    except Exception:
        # A call log that cannot be written must not turn the marketplace's answer into an error.
        db.session.rollback()
        log.exception("could not write the call log")
    return response
