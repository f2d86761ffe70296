"""Run the handler of a call's `activity`, answering refusals with their documented codes.

One production URL serves every scenario of a family and names the scenario in `activity`
(spec README, "Facts that shape the whole design").
"""

from marshmallow import ValidationError

from app.calllog import current_call
from app.lifecycle import CallRefused
from app.results import ResultCode, marketplace_answer


def dispatch(handlers: dict, params: dict):
    """Run the activity's handler, turning refusals into their documented result codes."""
    activity = params.get("activity")
    handler = handlers.get(activity) if isinstance(activity, str) else None
    if handler is None:
        return refuse(ResultCode.INVALID_PARAMETER, "unknown_activity")
    try:
        return handler(params)
    except ValidationError as error:
        return refuse_invalid(error)
    except CallRefused as refused:
        return refuse(refused.code, refused.reason)


def refuse(code: ResultCode, reason: str):
    """Answer a call the service refused, recording why."""
    reason = reason[:64]
    call = current_call()
    if call is not None:
        call.reason = reason
    return marketplace_answer(code, reason=reason)


def refuse_invalid(error: ValidationError):
    """Answer 000002 naming the fields a schema refused (the call log's `invalid:…` reason)."""
    fields = ",".join(sorted(flatten_field_names(error.messages)))
    return refuse(ResultCode.INVALID_PARAMETER, f"invalid:{fields}")


def flatten_field_names(messages) -> list[str]:
    """Return the names of the fields a marshmallow error complains about."""
    if isinstance(messages, dict):
        return [str(name) for name in messages]
    return ["_schema"]
