"""The call log records every call and never stores personal data or secrets in clear."""

import json
import logging

import pytest
from sqlalchemy import select

from app.calllog import REDACTED, redact
from app.extensions import db
from app.models import CallLog
from app.security import encrypt_field
from tests.marketplace import BASIC_KEY, KIT_KEY, WRONG_KEY
from tests.probe import PROBE_PASSWORD

PHONE = "15905222222"
EMAIL = "zhangsan@example.com"
SECOND_PHONE = "13800138000"
SECOND_EMAIL = "lisi@example.org"
ENCRYPTED_PHONE = encrypt_field(BASIC_KEY, PHONE, 256, iv="Uh2977H2620i0K25")
ENCRYPTED_EMAIL = encrypt_field(BASIC_KEY, EMAIL, 256, iv="a1B2c3D4e5F6g7H8")
CLIENT_SECRET = "client-secret-in-clear"


def send_calls_with_personal_data(marketplace):
    """Send one call of each protocol carrying phone numbers, e-mail addresses and secrets."""
    responses = [
        marketplace.v1_get(
            "/saas/probe/v1",
            {
                "activity": "newInstance",
                "orderId": "CS-V1",
                "customerId": "c1",
                "mobilePhone": ENCRYPTED_PHONE,
                "email": ENCRYPTED_EMAIL,
            },
        ),
        marketplace.v2_post(
            "/saas/probe/v2",
            {
                "activity": "newInstance",
                "orderId": "CS-V2",
                "buyerInfo": {"mobilePhone": PHONE, "email": EMAIL, "customerId": "c2"},
                "orderInfo": [{"extendParams": [{"name": "custEmail", "value": SECOND_EMAIL}]}],
            },
        ),
        marketplace.kit_v1_post(
            "/saas/probe/kit-v1",
            {
                "instanceId": "i3",
                "userList": json.dumps(
                    [{"userName": "u1", "mobile": SECOND_PHONE, "email": SECOND_EMAIL}]
                ),
                "testFlag": 0,
            },
        ),
        marketplace.kit_post(
            "/saas/probe/kit-v2",
            {"instanceId": "i4", "clientSecret": CLIENT_SECRET, "flag": 1, "testFlag": 0},
        ),
        # Rejected calls are recorded too, and must be as clean.
        marketplace.v2_post(
            "/saas/probe/v2",
            {"activity": "newInstance", "buyerInfo": {"mobilePhone": PHONE}},
            key=WRONG_KEY,
        ),
    ]
    return responses


SECRETS = [
    PHONE,
    EMAIL,
    SECOND_PHONE,
    SECOND_EMAIL,
    ENCRYPTED_PHONE,
    ENCRYPTED_EMAIL,
    CLIENT_SECRET,
    PROBE_PASSWORD,
    BASIC_KEY,
    KIT_KEY,
]


def test_every_call_is_logged_with_its_identifiers(app, marketplace):
    send_calls_with_personal_data(marketplace)
    with app.app_context():
        rows = db.session.scalars(select(CallLog).order_by(CallLog.id)).all()
    assert [(row.protocol, row.result_code) for row in rows] == [
        ("v1", "000000"),
        ("v2", "000000"),
        ("kit-v1", "000000"),
        ("kit-v2", "000000"),
        ("v2", "000001"),
    ]
    assert [row.order_id for row in rows[:2]] == ["CS-V1", "CS-V2"]
    assert rows[0].activity == "newInstance"
    assert rows[0].family == "saas" and rows[2].family == "kit"
    assert all(row.duration_ms >= 0 and row.path.startswith("/saas/probe/") for row in rows)


def test_call_log_rows_hold_no_personal_data_or_secrets(app, marketplace):
    responses = send_calls_with_personal_data(marketplace)
    tokens = [response.request.args.get("authToken") for response in responses[:1]]
    signatures = [responses[1].request.args.get("signature")]
    with app.app_context():
        rows = db.session.scalars(select(CallLog)).all()
        stored = json.dumps([[row.params, row.answer, row.reason] for row in rows])
    assert len(rows) == 5
    for secret in [*SECRETS, *tokens, *signatures]:
        assert secret not in stored
    assert stored.count(REDACTED) >= 10
    # What is not sensitive stays readable for debugging.
    assert "CS-V1" in stored and "newInstance" in stored and "custEmail" in stored


def test_log_lines_hold_no_personal_data_or_secrets(app, marketplace, caplog):
    with caplog.at_level(logging.DEBUG):
        send_calls_with_personal_data(marketplace)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "saas v1 newInstance -> 000000" in text
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"password": "p"}, {"password": REDACTED}),
        (
            {"appInfo": {"userName": "admin", "password": "p"}},
            {"appInfo": {"userName": "admin", "password": REDACTED}},
        ),
        (
            {"clientSecret": "s", "accessToken": "t"},
            {"clientSecret": REDACTED, "accessToken": REDACTED},
        ),
        ({"mobilePhone": ""}, {"mobilePhone": ""}),
        ({"note": "write to a@b.cn please"}, {"note": f"write to {REDACTED} please"}),
        ({"saasExtendParams": "W3sibmFtZSI6"}, {"saasExtendParams": f"{REDACTED} (12 chars)"}),
        ({"orgInfo": '[{"email": "x@y.com"}]'}, {"orgInfo": [{"email": REDACTED}]}),
        (
            {"extendParams": [{"name": "mobile", "value": "1"}]},
            {"extendParams": [{"name": "mobile", "value": REDACTED}]},
        ),
    ],
)
def test_redaction_rules(value, expected):
    assert redact(value) == expected


def test_market_calls_prints_the_latest_calls(app, marketplace, runner):
    send_calls_with_personal_data(marketplace)
    output = runner.invoke(args=["market", "calls"]).output
    lines = output.splitlines()
    assert lines[0].split()[:3] == ["time", "(UTC)", "family"]
    assert len(lines) == 2 + 5
    assert "bad_signature" in lines[2]  # newest first
    assert "CS-V1" in lines[-1]


def test_market_calls_failed_only_and_limit(app, marketplace, runner):
    send_calls_with_personal_data(marketplace)
    failed = runner.invoke(args=["market", "calls", "--failed"]).output.splitlines()
    assert len(failed) == 3
    assert "000001" in failed[2]
    limited = runner.invoke(args=["market", "calls", "--limit", "2"]).output.splitlines()
    assert len(limited) == 4


def test_market_calls_with_no_calls(runner):
    assert runner.invoke(args=["market", "calls"]).output == "No calls recorded.\n"


def test_market_prune_deletes_old_call_log_rows_and_expired_nonces(app, marketplace, runner):
    from datetime import timedelta

    from sqlalchemy import func

    from app.models import SeenNonce, utcnow

    send_calls_with_personal_data(marketplace)
    with app.app_context():
        old = db.session.scalars(select(CallLog).order_by(CallLog.id)).first()
        old.created_at = utcnow() - timedelta(days=100)
        db.session.add(SeenNonce(scope="v2", nonce="old", expires_at=utcnow() - timedelta(days=1)))
        db.session.commit()
    output = runner.invoke(args=["market", "prune", "--days", "90"]).output
    assert output.startswith("deleted 1 call-log rows older than 90 days and 1 expired nonces")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CallLog)) == 4


def test_v1_parameter_names_are_decoded_before_redaction(app, client):
    # "%50" is "P": the log sees the name verification sees, so the rule for mobilePhone applies.
    client.get(f"/saas/probe/v1?activity=newInstance&mobile%50hone={ENCRYPTED_PHONE}")
    with app.app_context():
        row = db.session.scalars(select(CallLog)).one()
    assert row.params["mobilePhone"] == REDACTED
    assert ENCRYPTED_PHONE not in json.dumps(row.params)
