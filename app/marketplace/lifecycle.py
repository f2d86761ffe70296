"""Whole lifecycles against a production interface, the way the daily probes replay saved cases,
plus the negative cases the seller console cannot send.

Each protocol generation has one sequence. A step that later steps depend on (the new purchase)
stops the sequence when it fails; the rest are reported as skipped.
"""

from __future__ import annotations

import base64
import html
import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from app.marketplace.simulator import (
    BEIJING,
    BUDGET_SECONDS,
    Call,
    Keys,
    Verdict,
    build_call,
    fresh_id,
    judge,
    new_order,
    now_ms,
    send,
)

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class StepResult:
    """One line of the report."""

    protocol: str
    name: str
    activity: str
    status: str
    code: str = ""
    milliseconds: int = 0
    messages: list[str] = field(default_factory=list)

    def line(self) -> str:
        detail = " — " + "; ".join(self.messages) if self.messages else ""
        timing = f"{self.milliseconds:>5} ms" if self.status != SKIP else "        "
        return (
            f"{self.status}  {self.protocol:<10} {self.name:<34} {self.activity:<24} "
            f"{self.code:<6} {timing}{detail}"
        )


class Runner:
    """Send steps in order, judge each, and remember the outcome."""

    def __init__(self, protocol, url, keys: Keys, *, budget=BUDGET_SECONDS, verify=True, test=True):
        self.protocol, self.url, self.keys = protocol, url.rstrip("/"), keys
        self.budget, self.verify, self.test = budget, verify, test
        self.results: list[StepResult] = []
        self.stopped: str | None = None

    @property
    def test_flag(self):
        # Kit bodies carry testFlag as an Integer, the others as a String.
        value = 1 if self.test else 0
        return value if self.protocol.startswith("kit") else str(value)

    def step(self, name, activity, fields, *, expect="000000", key=None, tamper=None, **build):
        """Build, send and judge one call; return the answer's JSON when it passed."""
        if self.stopped:
            self.results.append(
                StepResult(self.protocol, name, activity, SKIP, messages=[self.stopped])
            )
            return None
        right_key = self.keys.for_call(self.protocol, activity)
        call = build_call(self.protocol, activity, self.url, fields, key or right_key, **build)
        if tamper:
            call = tamper(call)
        return self.judge_and_record(name, call, expect, right_key)

    def judge_and_record(self, name, call: Call, expect: str, right_key: str, extra=()):
        answer = send(call, verify=self.verify)
        verdict = judge(call, answer, expect=expect, budget=self.budget, answer_key=right_key)
        verdict.checks.extend(extra)
        body = answer.json() or {}
        self.record(name, call.activity, verdict, str(body.get("resultCode", "")), answer.seconds)
        return body if verdict.passed else None

    def replay(self, name, activity, fields):
        """Send one signed call twice: the second must be refused as a replay."""
        if self.stopped:
            return self.step(name, activity, fields)
        right_key = self.keys.for_call(self.protocol, activity)
        call = build_call(self.protocol, activity, self.url, fields, right_key)
        send(call, verify=self.verify)
        return self.judge_and_record(name, call, "000001", right_key)

    def expect_same(self, body, first, key: str) -> None:
        """Add a check to the last step: the answer repeats `first[key]` (idempotency)."""
        if body is None or first is None:
            return
        same = body.get(key) == first.get(key)
        last = self.results[-1]
        if not same:
            last.status = FAIL
            last.messages.append(f"{key} differs from the first answer: not idempotent")

    def record(self, name, activity, verdict: Verdict, code, seconds) -> None:
        messages = [check.message or check.name for check in verdict.failures()]
        status = PASS if verdict.passed else FAIL
        self.results.append(
            StepResult(self.protocol, name, activity, status, code, round(seconds * 1000), messages)
        )

    def require(self, body, what: str) -> None:
        """Stop the sequence when a step the rest depends on did not pass."""
        if body is None and not self.stopped:
            self.stopped = f"skipped: {what} failed"


def change_first_value(call: Call) -> Call:
    """Change one signed value after signing (body or query string)."""
    if call.method == "GET":
        return replace(call, url=call.url.replace("activity=", "activity=x", 1))
    text = call.body.decode()
    return replace(call, body=text.replace(':"', ':"tampered-', 1).encode())


def wrong_key(keys: Keys, protocol: str, activity: str) -> str:
    return "wrong-" + keys.for_call(protocol, activity)


def expire_in(days: int, zone: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + zone + timedelta(days=days)).strftime("%Y%m%d%H%M%S")


# ------------------------------------------------------------------------------ sequences


def saas_v2(r: Runner, **_) -> None:
    order = new_order()
    first = r.step(
        "new purchase",
        "newInstance",
        {**order, "businessId": fresh_id("B"), "testFlag": r.test_flag},
    )
    r.require(first, "the new purchase")
    instance_id = (first or {}).get("instanceId", "")
    again = r.step(
        "resend with a new businessId",
        "newInstance",
        {**order, "businessId": fresh_id("B"), "testFlag": r.test_flag},
    )
    r.expect_same(again, first, "instanceId")
    poll_until_ready(r, {"instanceId": instance_id, "testFlag": r.test_flag})
    common = {"instanceId": instance_id, "testFlag": r.test_flag}
    for name, scene in (("renewal", "RENEWAL"), ("trial to formal", "TRIAL_TO_FORMAL")):
        r.step(
            name,
            "refreshInstance",
            {**common, **new_order(), "scene": scene, "expireTime": expire_in(730)},
        )
    r.step("freeze", "updateInstanceStatus", {**common, "status": "FREEZE"})
    r.step("unfreeze", "updateInstanceStatus", {**common, "status": "UNFREEZE"})
    r.step("upgrade", "upgradeInstance", {**common, **new_order()})
    r.step("release", "releaseInstance", common)
    r.step("release again", "releaseInstance", common)
    r.step(
        "renewal after release",
        "refreshInstance",
        {**common, **new_order(), "scene": "RENEWAL", "expireTime": expire_in(1095)},
        expect="000003",
    )
    signed_post_negatives(r, "queryInstance", {"instanceId": instance_id, "testFlag": r.test_flag})
    r.step(
        "missing orderId",
        "newInstance",
        {"orderLineId": order["orderLineId"], "businessId": fresh_id("B")},
        expect="000002",
    )


def poll_until_ready(r: Runner, fields: dict, attempts: int = 60) -> None:
    """Query until the instance is ready, as the marketplace polls after an async purchase."""
    started = time.monotonic()
    for waited in range(attempts):
        if r.stopped:
            break
        body = r.step("query until ready", "queryInstance", fields, expect="000000")
        if body is not None or r.results[-1].code != "000004":
            note_waiting(r, waited, started)
            return
        r.results.pop()
        time.sleep(0.5)
    r.step("query until ready", "queryInstance", fields)


def note_waiting(r: Runner, waited: int, started: float) -> None:
    """Say on the step's line how long the instance was in progress (000004)."""
    if waited:
        seconds = time.monotonic() - started
        r.results[-1].messages.append(f"ready after {waited} × 000004 in {seconds:.1f} s")


def resend_until_ready(r: Runner, name: str, activity: str, fields: dict, attempts: int = 60):
    """Send a V1 purchase until it is no longer 000004, as the marketplace retries it."""
    started = time.monotonic()
    for waited in range(attempts):
        body = r.step(name, activity, {**fields, "businessId": fresh_id("B")})
        if body is not None or r.results[-1].code != "000004":
            note_waiting(r, waited, started)
            return body
        r.results.pop()
        time.sleep(0.5)
    return r.step(name, activity, {**fields, "businessId": fresh_id("B")})


def signed_post_negatives(r: Runner, activity: str, fields: dict) -> None:
    """The checks the console cannot send: key, clock, replay, tampering, bad JSON, activity."""
    r.step(
        "wrong key", activity, fields, key=wrong_key(r.keys, r.protocol, activity), expect="000001"
    )
    r.step(
        "stale timestamp (-120 s)",
        activity,
        fields,
        timestamp_ms=now_ms() - 120_000,
        expect="000002",
    )
    r.step(
        "future timestamp (+120 s)",
        activity,
        fields,
        timestamp_ms=now_ms() + 120_000,
        expect="000002",
    )
    r.replay("replayed nonce", activity, fields)
    r.step("tampered body", activity, fields, tamper=change_first_value, expect="000001")
    r.step(
        "malformed JSON",
        activity,
        fields,
        raw_body=b'{"activity": "' + activity.encode() + b'",',
        expect="000002",
    )
    if not r.protocol.startswith("kit"):
        r.step("unknown activity", "noSuchActivity", fields, expect="000002")


def saas_v1(r: Runner, **_) -> None:
    order, product = fresh_id("CS"), "00301-666666-0--0"
    purchase = {
        "customerId": "68cbc86abc2018ab880d92f36422fa0e",
        "orderId": order,
        "productId": product,
        "skuCode": "basic",
        "expireTime": expire_in(365, BEIJING),
        "trialFlag": "1",
        "chargingMode": "1",
        "periodType": "year",
        "periodNumber": "1",
        "testFlag": r.test_flag,
    }
    # V1 is synchronous: while the instance is provisioning the server answers 000004 and the
    # marketplace sends the purchase again, with a new businessId each time.
    first = resend_until_ready(r, "new purchase", "newInstance", purchase)
    r.require(first, "the new purchase")
    instance_id = (first or {}).get("instanceId", "")
    again = r.step(
        "resend with a new businessId", "newInstance", {**purchase, "businessId": fresh_id("B")}
    )
    r.expect_same(again, first, "instanceId")
    common = {"instanceId": instance_id, "testFlag": r.test_flag}
    r.step("query", "queryInstance", common)
    r.step(
        "renewal, trial to formal",
        "refreshInstance",
        {
            **common,
            "orderId": fresh_id("CS"),
            "expireTime": expire_in(730, BEIJING),
            "trialToFormal": "1",
        },
    )
    r.step("expiry (freeze)", "expireInstance", {**common, "orderId": order})
    r.step("unfreeze (NORMAL)", "instanceStatus", {**common, "instanceStatus": "NORMAL"})
    r.step(
        "upgrade",
        "upgrade",
        {**common, "orderId": fresh_id("CS"), "skuCode": "pro", "productId": product},
    )
    r.step("release", "releaseInstance", {**common, "orderId": order})
    r.step("release again", "releaseInstance", {**common, "orderId": order})
    r.step(
        "renewal after release",
        "refreshInstance",
        {**common, "orderId": fresh_id("CS"), "expireTime": expire_in(1095, BEIJING)},
        expect="000003",
    )
    r.step(
        "wrong key",
        "queryInstance",
        common,
        key=wrong_key(r.keys, "v1", "queryInstance"),
        expect="000001",
    )
    r.step(
        "tampered parameter", "queryInstance", common, tamper=change_first_value, expect="000001"
    )
    r.step(
        "missing customerId",
        "newInstance",
        {k: v for k, v in purchase.items() if k != "customerId"} | {"businessId": fresh_id("B")},
        expect="000002",
    )
    r.step("unknown activity", "noSuchActivity", common, expect="000002")


def license_v1(r: Runner, **_) -> None:
    order = fresh_id("CS")
    purchase = {
        "customerId": "68cbc86abc2018ab880d92f36422fa0e",
        "orderId": order,
        "productId": "00301-777777-0--0",
        "expireTime": expire_in(365, BEIJING),
        "testFlag": r.test_flag,
    }
    first = r.step("getLicense", "getLicense", {**purchase, "businessId": fresh_id("B")})
    r.require(first, "getLicense")
    again = r.step("getLicense resent", "getLicense", {**purchase, "businessId": fresh_id("B")})
    r.expect_same(again, first, "license")
    common = {"instanceId": (first or {}).get("instanceId", ""), "testFlag": r.test_flag}
    r.step(
        "renewal",
        "refreshLicense",
        {**common, "orderId": fresh_id("CS"), "expireTime": expire_in(730, BEIJING)},
    )
    r.step("expiry (freeze)", "expireLicense", {**common, "orderId": order})
    r.step("release", "releaseLicense", {**common, "orderId": order})
    r.step("release again", "releaseLicense", {**common, "orderId": order})
    r.step(
        "renewal after release",
        "refreshLicense",
        {**common, "orderId": fresh_id("CS"), "expireTime": expire_in(1095, BEIJING)},
        expect="000003",
    )
    r.step(
        "wrong key",
        "expireLicense",
        {**common, "orderId": order},
        key=wrong_key(r.keys, "license-v1", "expireLicense"),
        expect="000001",
    )
    r.step("unknown activity", "noSuchActivity", common, expect="000002")


def license_post(r: Runner, **_) -> None:
    # 授权码 2.0: the marketplace generated the code; the merchant first hears of it here.
    code = fresh_id("LIC")
    code_fields = {"license": code, "testFlag": r.test_flag}
    r.step(
        "授权码 renewal (unseen code)",
        "refreshLicenseCode",
        {**code_fields, **new_order(), "scene": "RENEWAL", "expireTime": expire_in(365)},
    )
    r.step("授权码 freeze", "updateLicenseCodeStatus", {**code_fields, "status": "FREEZE"})
    r.step("授权码 unfreeze", "updateLicenseCodeStatus", {**code_fields, "status": "UNFREEZE"})
    r.step("授权码 release", "releaseLicenseCode", code_fields)
    r.step("授权码 release again", "releaseLicenseCode", code_fields)
    r.step(
        "授权码 status after release",
        "updateLicenseCodeStatus",
        {**code_fields, "status": "FREEZE"},
        expect="000003",
    )
    r.step(
        "授权码 signed with the basic key",
        "releaseLicenseCode",
        code_fields,
        key=r.keys.first("KOOGALLERY_BASIC_KEY"),
        expect="000001",
    )
    # Online activation.
    purchase = {**new_order(), "testFlag": r.test_flag}
    first = r.step("online new purchase", "newInstance", {**purchase, "businessId": fresh_id("B")})
    r.require(first, "the online new purchase")
    again = r.step("online resend", "newInstance", {**purchase, "businessId": fresh_id("B")})
    r.expect_same(again, first, "instanceId")
    common = {"instanceId": (first or {}).get("instanceId", ""), "testFlag": r.test_flag}
    device = {
        **common,
        "effectiveTime": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S z"),
        "expireTime": (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%d %H:%M:%S z"),
        "eventId": fresh_id("EV"),
        "deviceFingerprint": "demo-device-" + fresh_id(""),
    }
    issued = r.step("device licence", "getLicenseAsync", device)
    resent = r.step("device licence resent", "getLicenseAsync", device)
    r.expect_same(resent, issued, "license")
    r.step(
        "online renewal",
        "refreshInstance",
        {**common, **new_order(), "scene": "RENEWAL", "expireTime": expire_in(730)},
    )
    r.step("online freeze", "updateInstanceStatus", {**common, "status": "FREEZE"})
    r.step("online unfreeze", "updateInstanceStatus", {**common, "status": "UNFREEZE"})
    r.step("online release", "releaseInstance", common)
    r.step("online release again", "releaseInstance", common)
    r.step(
        "device licence after release",
        "getLicenseAsync",
        {**device, "eventId": fresh_id("EV")},
        expect="000003",
    )
    signed_post_negatives(r, "releaseInstance", common)


def kit(r: Runner, rsa_public_key=None, **_) -> None:
    tenant, app_id = fresh_id("T"), "demo-app"
    common = {"instanceId": "", "tenantId": tenant, "testFlag": r.test_flag}
    tenant_fields = {
        **common,
        "orderId": "",
        "tenantCode": "demo",
        "name": "演示企业",
        "domainName": "https://demo.tenantaccount.example",
    }
    first = r.step("tenant add", "tenantSync", {**tenant_fields, "flag": 1})
    r.require(first, "the tenant add")
    r.step("tenant modify", "tenantSync", {**tenant_fields, "name": "演示企业 2", "flag": 2})
    if rsa_public_key is not None:
        secret = base64.b64encode(
            rsa_public_key.encrypt(
                b"demo-client-secret",
                padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
            )
        ).decode()
        app_fields = {**common, "appId": app_id, "clientId": "demo-client", "clientSecret": secret}
        r.step("app credential add", "applicationSync", {**app_fields, "flag": 1})
    users = [
        {
            "userName": "demo.admin",
            "name": "管理员",
            "orgCode": "1",
            "role": "admin",
            "enable": "true",
        },
        {"userName": "demo.user", "name": "用户", "orgCode": "2", "role": "user", "enable": "true"},
    ]
    user_fields = {
        **common,
        "appId": app_id,
        "currentSyncTime": datetime.now(UTC).strftime("%Y%m%d%H%M%S000"),
    }
    # V1 sent userList as a JSON string (spec kit-oauth.md §1).
    user_fields["userList"] = (
        users if r.protocol == "kit-v2" else json.dumps(users, ensure_ascii=False)
    )
    r.step("users add", "authSync", {**user_fields, "flag": 1})
    r.step("users modify", "authSync", {**user_fields, "userList": users[1:], "flag": 2})
    r.step("user revoke", "authSync", {**user_fields, "userList": users[1:], "flag": 3})
    org = {**common, "orgCode": "2", "orgName": "产品部", "parentCode": "1"}
    r.step("department add", "singleOrgSync", {**org, "flag": 1})
    r.step("department move", "singleOrgSync", {**org, "parentCode": "", "flag": 2})
    orgs = [
        {"orgCode": "1", "orgName": "总部", "parentCode": ""},
        {"orgCode": "2", "orgName": "产品部", "parentCode": "1"},
    ]
    if r.protocol == "kit-v2":
        r.step("department tree", "allOrgSync", {**common, "orgInfoList": orgs})
    else:
        # V1 named the list orgInfo, sent it as a JSON string, and called orgName "name".
        v1_orgs = [
            {"orgCode": o["orgCode"], "name": o["orgName"], "parentCode": o["parentCode"]}
            for o in orgs
        ]
        r.step(
            "department tree",
            "allOrgSync",
            {**common, "orgInfo": json.dumps(v1_orgs, ensure_ascii=False)},
        )
    r.step("users delete", "authSync", {**user_fields, "flag": 0})
    r.step("department delete", "singleOrgSync", {**org, "flag": 0})
    if rsa_public_key is not None:
        r.step("app credential delete", "applicationSync", {**common, "appId": app_id, "flag": 0})
    r.step("tenant delete", "tenantSync", {**tenant_fields, "flag": 0})
    r.step("tenant delete again", "tenantSync", {**tenant_fields, "flag": 0})
    if r.protocol == "kit-v2":
        signed_post_negatives(r, "tenantSync", {**tenant_fields, "flag": 0})
    else:
        r.step(
            "wrong key",
            "tenantSync",
            {**tenant_fields, "flag": 0},
            key=wrong_key(r.keys, "kit-v1", "tenantSync"),
            expect="000001",
        )
        r.step(
            "tampered body",
            "tenantSync",
            {**tenant_fields, "flag": 0},
            tamper=change_first_value,
            expect="000001",
        )


def notify(r: Runner, **_) -> None:
    order = new_order()
    fields = {**order, "testFlag": r.test_flag}
    first = r.step("order notification", "orderNotify", fields)
    r.require(first, "the order notification")
    r.step("order notification resent", "orderNotify", fields)
    r.step(
        "signed with the basic key",
        "orderNotify",
        fields,
        key=r.keys.first("KOOGALLERY_BASIC_KEY"),
        expect="000001",
    )
    r.step(
        "stale timestamp (-120 s)",
        "orderNotify",
        fields,
        timestamp_ms=now_ms() - 120_000,
        expect="000002",
    )
    r.replay("replayed nonce", "orderNotify", fields)
    r.step(
        "missing orderLineId",
        "orderNotify",
        {"orderId": order["orderId"], "testFlag": r.test_flag},
        expect="000002",
    )


SEQUENCES = {
    "v1": saas_v1,
    "v2": saas_v2,
    "kit-v1": kit,
    "kit-v2": kit,
    "license-v1": license_v1,
    "license": license_post,
    "notify": notify,
}


def run_lifecycle(protocol: str, url: str, keys: Keys, **options) -> list[StepResult]:
    """Run the protocol's whole sequence against the URL and return one result per step."""
    rsa_public_key = options.pop("rsa_public_key", None)
    runner = Runner(protocol, url, keys, **options)
    SEQUENCES[protocol](runner, rsa_public_key=rsa_public_key)
    return runner.results


def summary(results: list[StepResult]) -> str:
    """Return "N steps: P passed, F failed, S skipped"."""
    counts = {status: sum(r.status == status for r in results) for status in (PASS, FAIL, SKIP)}
    return (
        f"{len(results)} steps: {counts[PASS]} passed, {counts[FAIL]} failed, "
        f"{counts[SKIP]} skipped"
    )


def html_report(results: list[StepResult], title: str) -> str:
    """Return the results as one self-contained HTML page."""
    rows = "\n".join(
        f'<tr class="{r.status.lower()}"><td>{r.status}</td><td>{html.escape(r.protocol)}</td>'
        f"<td>{html.escape(r.name)}</td><td>{html.escape(r.activity)}</td>"
        f"<td>{html.escape(r.code)}</td><td>{r.milliseconds}</td>"
        f"<td>{html.escape('; '.join(r.messages))}</td></tr>"
        for r in results
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1f2329; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #dee0e3; padding: .35rem .6rem; text-align: left; }}
tr.pass td:first-child {{ color: #1a7f37; font-weight: 600; }}
tr.fail td {{ background: #fff1f0; }} tr.fail td:first-child {{ color: #c7000b; font-weight: 600; }}
tr.skip td {{ color: #8f959e; }}
</style></head><body>
<h1>{html.escape(title)}</h1><p>{html.escape(summary(results))}</p>
<table><tr><th>verdict</th><th>protocol</th><th>step</th><th>activity</th><th>resultCode</th>
<th>ms</th><th>message</th></tr>
{rows}
</table></body></html>
"""
