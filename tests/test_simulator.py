"""The marketplace simulator: whole lifecycles against our server, and verdicts on broken ones."""

import json
import time

import pytest
from flask import Flask, Response

from app.marketplace.lifecycle import FAIL, PASS, SKIP, html_report, run_lifecycle
from app.marketplace.simulator import Keys
from app.security import body_sign_header, load_private_key
from tests.marketplace import BASIC_KEY

URL_OF = {
    "v1": "/saas",
    "v2": "/saas",
    "kit-v1": "/saas",
    "kit-v2": "/saas",
    "license-v1": "/license",
    "license": "/license",
    "notify": "/notify",
}


@pytest.mark.parametrize("protocol", list(URL_OF))
def test_every_lifecycle_passes_against_our_own_server(app, live_server, protocol):
    public_key = load_private_key(app.config["KOOGALLERY_RSA_PRIVATE_KEY"]).public_key()
    results = run_lifecycle(
        protocol, live_server + URL_OF[protocol], Keys(app.config), rsa_public_key=public_key
    )
    failed = [result.line() for result in results if result.status != PASS]
    assert failed == []
    assert len(results) >= 6
    names = [result.name for result in results]
    if protocol == "v2":
        # The negative cases the seller console cannot send are part of the run.
        for name in ("wrong key", "stale timestamp (-120 s)", "replayed nonce", "tampered body"):
            assert name in names


def test_a_server_with_another_key_fails_at_the_first_step_with_an_authentication_verdict(
    app, live_server
):
    other = Keys({**app.config, "KOOGALLERY_BASIC_KEY": ("a-key-the-server-does-not-have",)})
    results = run_lifecycle("v2", live_server + "/saas", other)
    first, *rest = results
    assert first.status == FAIL and first.code == "000001"
    assert "authentication failed" in " ".join(first.messages)
    assert rest and all(result.status == SKIP for result in rest[:5])


def test_market_lifecycle_command_prints_a_line_per_step_and_writes_html(
    app, live_server, runner, tmp_path
):
    report = tmp_path / "report.html"
    result = runner.invoke(
        args=[
            "market",
            "lifecycle",
            "--url",
            f"{live_server}/notify",
            "--protocol",
            "notify",
            "--report",
            str(report),
        ]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("PASS  notify") and lines[-1] == (
        "notify: 6 steps: 6 passed, 0 failed, 0 skipped"
    )
    page = report.read_text()
    assert page.startswith("<!doctype html>") and "order notification resent" in page


def test_html_report_escapes_what_the_server_said():
    from app.marketplace.lifecycle import StepResult

    page = html_report([StepResult("v2", "x", "newInstance", FAIL, messages=["<script>"])], "t")
    assert "<script>" not in page and "&lt;script&gt;" in page


# ------------------------------------------------------------------------------ broken servers

GOOD_ANSWER = {
    "resultCode": "000000",
    "resultMsg": "success.",
    "instanceId": "i-1",
    "appInfo": {"frontEndUrl": "https://isv.example.com/"},
}


def broken_app() -> Flask:
    """A production interface that gets one thing wrong per path."""
    broken = Flask("broken")

    def answer(fields, header="Body-Sign", signed_body=None, key=BASIC_KEY):
        body = json.dumps(fields, separators=(",", ":")).encode()
        response = Response(body, content_type="application/json")
        if header:
            response.headers[header] = body_sign_header(key, signed_body or body)
        return response

    routes = {
        "/fine": lambda: answer(GOOD_ANSWER),
        "/no-body-sign": lambda: answer(GOOD_ANSWER, header=None),
        "/lowercase-header": lambda: answer(GOOD_ANSWER, header="Body-sign"),
        "/other-body-signed": lambda: answer(GOOD_ANSWER, signed_body=b"{}"),
        "/auth-failed": lambda: answer(
            {"resultCode": "000001", "resultMsg": "authentication failed."}
        ),
        "/slow": lambda: (time.sleep(1.2), answer(GOOD_ANSWER))[1],
        "/long-front-end-url": lambda: answer(
            {**GOOD_ANSWER, "appInfo": {"frontEndUrl": "https://x/" + "a" * 600}}
        ),
        "/not-json": lambda: Response("<html>500</html>", content_type="text/html"),
        "/unquoted-sign-type": lambda: Response(
            b"{}", headers={"Body-Sign": "sign_type=HMAC-SHA256, signature=abc"}
        ),
        "/no-instance-id": lambda: answer({"resultCode": "000000", "resultMsg": "success."}),
    }
    for path, view in routes.items():
        broken.add_url_rule(path, path, view, methods=["POST", "GET"])
    return broken


@pytest.fixture
def broken_server():
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, broken_app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/no-body-sign", "http header->bodySign is empty"),
        ("/lowercase-header", "http header->bodySign is empty"),
        (
            "/unquoted-sign-type",
            "http header->sign_type is not equals HMAC-SHA256 or signature is empty",
        ),
        ("/other-body-signed", "响应Http Body签名校验失败,预期的签名值:"),
        (
            "/auth-failed",
            "Call interface failed. The production interface returns an error result code",
        ),
        ("/slow", "timeout"),
        ("/long-front-end-url", "frontEndUrl长度不合法"),
        ("/not-json", "Parse response body failed"),
        ("/no-instance-id", "接口响应中不包含instanceId"),
    ],
)
@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_send_reports_each_broken_answer_with_the_console_message(
    runner, broken_server, path, message, protocol
):
    result = runner.invoke(
        args=[
            "market",
            "send",
            "newInstance",
            "--url",
            broken_server + path,
            "--protocol",
            protocol,
            "--budget",
            "1",
        ]
    )
    assert result.exit_code == 1
    assert message in result.output


def test_send_passes_a_correct_answer_and_shows_every_check(runner, broken_server):
    result = runner.invoke(
        args=["market", "send", "newInstance", "--url", broken_server + "/fine", "--protocol", "v2"]
    )
    assert result.exit_code == 0, result.output
    for check in (
        "PASS  answered in time",
        "PASS  JSON body",
        "PASS  resultCode 000000",
        "PASS  Body-Sign value",
    ):
        assert check in result.output


def test_send_against_our_server_shows_decrypted_credentials(app, runner, live_server):
    result = runner.invoke(
        args=["market", "send", "newInstance", "--url", f"{live_server}/saas", "--protocol", "v1"]
    )
    assert result.exit_code == 0, result.output
    assert "appInfo.userName (decrypted): admin-" in result.output


def test_send_curl_prints_a_signed_request_without_sending(runner):
    result = runner.invoke(
        args=[
            "market",
            "send",
            "queryInstance",
            "--url",
            "https://isv.example.com/saas",
            "-f",
            "instanceId=i-1",
            "--curl",
        ]
    )
    assert result.exit_code == 0
    line = result.output.strip()
    assert line.startswith("curl -sS -i -X POST 'https://isv.example.com/saas?signature=")
    assert '"instanceId":"i-1"' in line and "&nonce=" in line
