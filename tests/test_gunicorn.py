"""The production server, started for real: gunicorn serves /healthz and refuses bad config."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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
    return {**environ, "DATABASE_URL": database_url, "WEB_CONCURRENCY": "2", **settings}


@pytest.fixture
def production_server(app, database_url):
    """Start gunicorn in production mode on a free loopback port; stop it afterwards."""
    port = free_port()
    environ = server_environ(
        database_url,
        KOOGALLERY_ENV="production",
        SECRET_KEY="live-test-secret",
        KOOGALLERY_BASIC_KEY="live-test-basic-key",
        GUNICORN_BIND=f"127.0.0.1:{port}",
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
