"""The production server, started for real: gunicorn serves /healthz and refuses bad config."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.marketplace.simulator import build_call
from app.models import Department, Instance
from app.security import (
    canonical_payload,
    compute_v2_signature,
    generate_private_key,
    private_key_pem,
)

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environ(database_url: str, **settings) -> dict:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KOOGALLERY_", "SECRET_KEY", "DATABASE_URL"))
    }
    # Four workers, so that concurrent calls really race each other in the database; jobs run
    # inside the calls unless a test starts a worker (tests/test_worker.py).
    return {
        **environ,
        "DATABASE_URL": database_url,
        "WEB_CONCURRENCY": "4",
        "KOOGALLERY_QUEUE": "inline",
        **settings,
    }


@pytest.fixture
def production_server(app, database_url):
    """Start gunicorn in production mode on a free loopback port; stop it afterwards."""
    yield from serve(database_url)


@pytest.fixture
def kit_server(app, database_url):
    """The production server with a kit key (and the RSA key production requires with it)."""
    rsa_key = private_key_pem(generate_private_key(3072))
    yield from serve(
        database_url, KOOGALLERY_KIT_KEY="live-test-kit-key", KOOGALLERY_RSA_PRIVATE_KEY=rsa_key
    )


def serve(database_url: str, **settings):
    port = free_port()
    environ = server_environ(
        database_url,
        KOOGALLERY_ENV="production",
        SECRET_KEY="live-test-secret",
        KOOGALLERY_BASIC_KEY="live-test-basic-key",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        **settings,
    )
    process = subprocess.Popen(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=15)


def get_until_up(url: str, process, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited: {process.stdout.read().decode()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                return response.status, json.loads(response.read())
        except OSError:
            time.sleep(0.2)
    pytest.fail("gunicorn did not answer in time")


def test_gunicorn_serves_healthz(production_server):
    base, process = production_server
    assert get_until_up(f"{base}/healthz", process) == (200, {"status": "ok", "database": "ok"})


def test_concurrent_identical_new_instance_calls_make_one_instance(app, production_server):
    base, process = production_server
    get_until_up(f"{base}/healthz", process)
    body = {
        "activity": "newInstance",
        "orderId": "CS-LIVE-CONCURRENT",
        "orderLineId": "CS-LIVE-CONCURRENT-000001",
        "businessId": "live-business-id",
        "testFlag": "1",
    }

    def send(_):
        # Each copy freshly signed, as the marketplace signs each retry.
        return post_v2(f"{base}/saas", body, "live-test-basic-key")

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, range(20)))
    assert {answer["resultCode"] for answer in answers} == {"000000"}
    assert {answer["instanceId"] for answer in answers} == {"live-business-id"}
    with app.app_context():
        rows = db.session.scalars(
            select(Instance).where(Instance.order_id == "CS-LIVE-CONCURRENT")
        ).all()
        assert [row.state for row in rows] == ["active"]


def test_concurrent_whole_tree_syncs_leave_one_whole_tree(app, kit_server):
    base, process = kit_server
    get_until_up(f"{base}/healthz", process)
    tree = [
        {"orgCode": str(i), "orgName": f"部门{i}", "parentCode": str(i // 10) if i else ""}
        for i in range(300)
    ]
    body = {"tenantId": "tenant-live-tree", "orgInfoList": tree, "testFlag": 0}

    def send(_):
        call = build_call("kit-v2", "allOrgSync", f"{base}/saas", body, "live-test-kit-key")
        request = urllib.request.Request(  # noqa: S310 (loopback)
            call.url, data=call.body, headers=call.headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 (loopback)
            return json.loads(response.read())["resultCode"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(send, range(8)))
    # A copy that lost the race to a concurrent one may be told to retry; none fails otherwise.
    assert set(codes) <= {"000000", "000005"} and "000000" in codes
    with app.app_context():
        stored = db.session.execute(select(Department.org_code, Department.parent_code)).all()
    assert sorted(stored) == sorted((org["orgCode"], org["parentCode"] or None) for org in tree)


def post_v2(url: str, body: dict, key: str) -> dict:
    """POST a freshly signed V2 call and return its JSON answer."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    timestamp, nonce = str(time.time_ns() // 1_000_000), secrets.token_hex(32)
    signature = compute_v2_signature(key, nonce, timestamp, canonical_payload(body))
    query = urllib.parse.urlencode({"signature": signature, "timestamp": timestamp, "nonce": nonce})
    request = urllib.request.Request(f"{url}?{query}", data=raw, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def test_gunicorn_in_production_refuses_to_start_without_keys(database_url):
    environ = server_environ(
        database_url, KOOGALLERY_ENV="production", GUNICORN_BIND=f"127.0.0.1:{free_port()}"
    )
    finished = subprocess.run(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "SECRET_KEY" in finished.stderr and "KOOGALLERY_BASIC_KEY" in finished.stderr
