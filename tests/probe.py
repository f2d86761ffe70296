"""A test-only blueprint: one route behind each verification decorator.

The interface families arrive with their own routes; these let the decorators be proven on their
own, through real signed requests, with a record of whether the view ran.
"""

from flask import Blueprint, g

from app.auth import (
    require_kit_signature,
    require_v1_header_token,
    require_v1_query_token,
    require_v2_signature,
)
from app.results import ResultCode, marketplace_answer

# Mounted under /saas so that routing errors are answered as on a real marketplace path.
bp = Blueprint("probe", __name__, url_prefix="/saas/probe")

views_run: list[dict] = []


PROBE_PASSWORD = "Probe-Pa55word!"


def _answer():
    views_run.append(dict(g.params))
    app_info = {"frontEndUrl": "https://isv.example.com", "password": PROBE_PASSWORD}
    return marketplace_answer(ResultCode.SUCCESS, instanceId="probe-instance", appInfo=app_info)


@bp.get("/v1")
@require_v1_query_token("saas")
def v1_query():
    return _answer()


@bp.post("/kit-v1")
@require_v1_header_token()
def kit_v1():
    return _answer()


@bp.post("/v2")
@require_v2_signature("saas")
def v2():
    return _answer()


@bp.post("/kit-v2")
@require_kit_signature()
def kit_v2():
    return _answer()


@bp.post("/fails")
@require_v2_signature("saas")
def fails():
    raise RuntimeError("the provisioning backend is down")
