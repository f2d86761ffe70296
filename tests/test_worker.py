"""The real thing: gunicorn and `market worker` as separate processes, on SQLite and Redis.

An 8-second provisioner must not slow the marketplace's call; a worker killed mid-job must
not lose or duplicate the provisioning.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Instance, Job, TenantAccount
from tests.saas_helpers import events
from tests.test_gunicorn import GUNICORN, ROOT, free_port, get_until_up, post_v2, server_environ

FLASK = os.path.join(os.path.dirname(sys.executable), "flask")
KEY = "live-test-basic-key"
REDIS = shutil.which("redis-server")


@pytest.fixture
def redis_url():
    """A throw-away Redis server on a loopback port (.ci/run installs redis-server)."""
    if REDIS is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed: .ci/run should have installed it")
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


class Deployment:
    """A web server and a worker started with the same settings; stopped by the fixture."""

    def __init__(self, database_url: str, queue: str, seconds: float, **settings):
        self.port = free_port()
        self.environ = server_environ(
            database_url,
            KOOGALLERY_ENV="production",
            SECRET_KEY="live-worker-secret",
            KOOGALLERY_BASIC_KEY=KEY,
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            KOOGALLERY_QUEUE=queue,
            KOOGALLERY_PROVISIONER="tests.provisioners:SleepyProvisioner",
            KOOGALLERY_TEST_PROVISION_SECONDS=str(seconds),
            **settings,
        )
        self.web = subprocess.Popen(
            [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=self.environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.worker = self.start_worker()

    def start_worker(self) -> subprocess.Popen:
        return subprocess.Popen(
            [FLASK, "--app", "wsgi", "market", "worker", "--workers", "1"],
            cwd=ROOT,
            env=self.environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        for process in (self.web, self.worker):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=15)


@pytest.fixture
def deploy(app, database_url):
    started = []

    def start(queue, seconds, **settings):
        deployment = Deployment(database_url, queue, seconds, **settings)
        started.append(deployment)
        get_until_up(f"{deployment.url}/healthz", deployment.web)
        return deployment

    yield start
    for deployment in started:
        deployment.stop()


def buy(deployment, order: str) -> tuple[dict, float]:
    body = {
        "activity": "newInstance",
        "orderId": order,
        "orderLineId": f"{order}-1",
        "businessId": f"b-{order}",
    }
    started = time.perf_counter()
    answer = post_v2(f"{deployment.url}/saas", body, KEY)
    return answer, time.perf_counter() - started


def poll(deployment, instance_id: str, seconds: float) -> list[str]:
    """Query every 0.5 s until ready; return the result codes seen."""
    codes = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = post_v2(
            f"{deployment.url}/saas", {"activity": "queryInstance", "instanceId": instance_id}, KEY
        )
        codes.append(answer["resultCode"])
        if answer["resultCode"] == "000000":
            assert answer["info"][0]["appInfo"]["userName"]
            return codes
        time.sleep(0.5)
    return codes


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_an_eight_second_provisioner_does_not_slow_the_call(
    app, deploy, tmp_path, backend, request
):
    queue = (
        f"sqlite:///{tmp_path}/queue.db"
        if backend == "sqlite"
        else request.getfixturevalue("redis_url")
    )
    deployment = deploy(queue, 8)
    answer, seconds = buy(deployment, f"CS-SLOW-{backend}")
    assert answer == {
        "resultCode": "000000",
        "resultMsg": "success.",
        "instanceId": f"b-CS-SLOW-{backend}",
    }
    assert seconds < 0.5
    codes = poll(deployment, answer["instanceId"], 30)
    assert codes[0] == "000004" and codes[-1] == "000000"
    assert set(codes[:-1]) == {"000004"}


def test_a_worker_killed_mid_job_is_replaced_and_the_job_runs_once(app, deploy, tmp_path):
    deployment = deploy(
        f"sqlite:///{tmp_path}/queue.db",
        4,
        KOOGALLERY_JOB_LEASE="2",
        KOOGALLERY_TICK_SECONDS="1",
        KOOGALLERY_OUTBOX_GRACE="1",
    )
    answer, _ = buy(deployment, "CS-KILL")
    time.sleep(1.5)  # the worker has claimed the job and is inside the hook
    os.kill(deployment.worker.pid, signal.SIGKILL)
    deployment.worker.wait(timeout=10)
    deployment.worker = deployment.start_worker()
    codes = poll(deployment, answer["instanceId"], 40)
    assert codes[-1] == "000000"
    with app.app_context():
        instance = db.session.scalars(select(Instance).where(Instance.order_id == "CS-KILL")).one()
        accounts = db.session.scalar(
            select(func.count())
            .select_from(TenantAccount)
            .where(TenantAccount.instance_pk == instance.id)
        )
        assert accounts == 1
        assert events(instance.instance_id) == ["created", "provisioned"]
        job = db.session.scalars(select(Job).where(Job.instance_pk == instance.id)).one()
        assert (job.state, job.attempts) == ("done", 2)
