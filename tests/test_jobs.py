"""Jobs on a real Huey queue (SQLite storage), run by draining the queue in the test."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.jobs import Queue, queue, sweep_outbox
from app.models import CallLog, Instance, Job, SeenNonce, TenantAccount, utcnow
from tests import provisioners
from tests.marketplace import BASIC_KEY
from tests.saas_helpers import decrypted_credentials, events, stored_credentials

ORDER = {"orderId": "CS-QUEUE", "orderLineId": "CS-QUEUE-000001"}


@pytest.fixture
def sqlite_queue(app, tmp_path, monkeypatch):
    """Use a real SQLite-backed Huey queue for one test; nothing runs until drained."""
    monkeypatch.setitem(app.config, "KOOGALLERY_QUEUE", f"sqlite:///{tmp_path}/queue.db")
    monkeypatch.setitem(app.config, "KOOGALLERY_JOB_MAX_ATTEMPTS", 3)
    monkeypatch.setitem(app.config, "KOOGALLERY_JOB_BACKOFF", 0.01)
    previous = app.extensions["koogallery_queue"]
    app.extensions["koogallery_queue"] = Queue(app)
    yield app.extensions["koogallery_queue"]
    app.extensions["koogallery_queue"] = previous


def drain(queue_, app) -> int:
    """Run everything queued or scheduled, as a worker would, until nothing is left."""
    ran = 0
    for _ in range(50):
        huey = queue_.huey
        tasks = [task for task in iter(huey.dequeue, None)]
        tasks += huey.read_schedule(utcnow().replace(tzinfo=None) + timedelta(days=1))
        tasks = [task for task in tasks if task.name != "tick"]
        if not tasks:
            return ran
        for task in tasks:
            with app.app_context():
                huey.execute(task)
            ran += 1
        # A retry is scheduled KOOGALLERY_JOB_BACKOFF later; run early, Huey schedules it again.
        time.sleep(0.02)
    raise AssertionError("the queue does not drain")


def buy(marketplace, business_id="b-queue"):
    return marketplace.saas_v2("newInstance", **ORDER, businessId=business_id, testFlag="1")


def query(marketplace, instance_id):
    return marketplace.saas_v2("queryInstance", instanceId=instance_id).json


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_new_instance_answers_at_once_and_query_polls_until_the_job_ran(
    app, marketplace, sqlite_queue
):
    started = time.perf_counter()
    answer = buy(marketplace).json
    assert time.perf_counter() - started < 0.5
    assert answer == {"resultCode": "000000", "resultMsg": "success.", "instanceId": "b-queue"}
    assert query(marketplace, "b-queue")["resultCode"] == "000004"
    with app.app_context():
        job = db.session.scalars(select(Job)).one()
        assert (job.kind, job.state, job.attempts) == ("provision", "pending", 0)
        # The buyer's data in the job is sealed.
        assert "CS-QUEUE" not in job.payload_sealed
    assert drain(sqlite_queue, app) == 1
    ready = query(marketplace, "b-queue")
    assert ready["resultCode"] == "000000"
    with app.app_context():
        assert decrypted_credentials(ready["info"][0]["appInfo"], BASIC_KEY) == (
            stored_credentials("b-queue")
        )
        assert db.session.scalars(select(Job.state)).one() == "done"
        assert events("b-queue") == ["created", "provisioned"]


def test_a_job_delivered_twice_runs_once(app, marketplace, sqlite_queue, use_provisioner):
    use_provisioner("tests.provisioners:RecordingProvisioner")
    buy(marketplace)
    with app.app_context():
        job_id = db.session.scalars(select(Job.id)).one()
        queue().enqueue(job_id)
    drain(sqlite_queue, app)
    assert [name for name, _ in provisioners.calls] == ["provision"]
    with app.app_context():
        assert count(TenantAccount) == 1


def test_a_failing_hook_ends_in_a_dead_letter_and_retry_completes_it(
    app, marketplace, sqlite_queue, use_provisioner, runner
):
    use_provisioner("tests.provisioners:AlwaysFailingProvisioner")
    buy(marketplace)
    drain(sqlite_queue, app)
    with app.app_context():
        job = db.session.scalars(select(Job)).one()
        assert (job.state, job.attempts) == ("dead", 3)
        assert "provisioning backend unreachable" in job.last_error
        assert db.session.scalars(select(Instance.state)).one() == "failed"
    assert query(marketplace, "b-queue")["resultCode"] == "000005"
    listed = runner.invoke(args=["market", "jobs", "--failed"]).output
    assert "dead" in listed and "ConnectionError" in listed

    use_provisioner("tests.provisioners:RecordingProvisioner")
    result = runner.invoke(args=["market", "retry", "--all-failed"])
    assert "re-enqueued" in result.output
    drain(sqlite_queue, app)
    assert query(marketplace, "b-queue")["resultCode"] == "000000"
    with app.app_context():
        assert db.session.scalars(select(Job.state)).one() == "done"
        assert events("b-queue") == ["created", "failed", "provisioned"]


def test_a_resend_for_a_failed_instance_enqueues_it_again(
    app, marketplace, sqlite_queue, use_provisioner
):
    use_provisioner("tests.provisioners:AlwaysFailingProvisioner")
    buy(marketplace)
    drain(sqlite_queue, app)
    use_provisioner("tests.provisioners:RecordingProvisioner")
    resend = buy(marketplace, "b-resend").json
    assert resend["instanceId"] == "b-queue"
    drain(sqlite_queue, app)
    assert query(marketplace, "b-queue")["resultCode"] == "000000"
    with app.app_context():
        assert [job.state for job in db.session.scalars(select(Job).order_by(Job.id))] == [
            "dead",
            "done",
        ]


def test_an_outbox_row_that_never_reached_the_queue_is_swept_up(
    app, marketplace, sqlite_queue, use_provisioner, monkeypatch
):
    # The web process dies between the commit and the enqueue.
    use_provisioner("tests.provisioners:RecordingProvisioner")
    enqueue = Queue.enqueue
    monkeypatch.setattr(Queue, "enqueue", lambda self, job_id, delay=None: 1 / 0)
    answer = buy(marketplace).json
    resend = buy(marketplace, "b-other").json
    assert answer["instanceId"] == resend["instanceId"] == "b-queue"
    monkeypatch.setattr(Queue, "enqueue", enqueue)
    monkeypatch.setitem(app.config, "KOOGALLERY_OUTBOX_GRACE", 0.001)
    time.sleep(0.01)
    with app.app_context():
        assert sweep_outbox() == 1
    drain(sqlite_queue, app)
    assert [name for name, _ in provisioners.calls] == ["provision"]
    with app.app_context():
        assert db.session.scalars(select(Instance.state)).one() == "active"


def test_a_job_whose_worker_died_is_run_again_once(app, marketplace, sqlite_queue, monkeypatch):
    buy(marketplace)
    with app.app_context():
        job = db.session.scalars(select(Job)).one()
        # A worker claimed it and was killed: the row says running, nobody is running it.
        job.state, job.attempts = "running", 1
        job.updated_at = utcnow() - timedelta(minutes=20)
        db.session.commit()
    for _ in iter(sqlite_queue.huey.dequeue, None):
        pass  # the task the dead worker had taken is gone with it
    with app.app_context():
        assert sweep_outbox() == 1
    drain(sqlite_queue, app)
    with app.app_context():
        assert db.session.scalars(select(Job.state)).one() == "done"
        assert count(TenantAccount) == 1
        assert events("b-queue") == ["created", "provisioned"]


def test_chores_purge_and_push_usage_on_short_intervals(
    app, marketplace, sqlite_queue, open_api, use_provisioner, monkeypatch
):
    use_provisioner("tests.provisioners:MeteredProvisioner")
    for name in ("KOOGALLERY_PURGE_INTERVAL", "KOOGALLERY_USAGE_PUSH_INTERVAL"):
        monkeypatch.setitem(app.config, name, 0.001)
    monkeypatch.setitem(app.config, "KOOGALLERY_TICK_SECONDS", 0.2)
    monkeypatch.setitem(app.config, "KOOGALLERY_CALL_LOG_RETENTION_DAYS", 1)
    open_api.add_order(
        {
            "orderId": "CS-QUEUE",
            "orderType": "NEW",
            "orderLine": [
                {"orderLineId": "CS-QUEUE-000001", "chargingMode": "ON_DEMAND", "productInfo": []}
            ],
        }
    )
    buy(marketplace)
    drain(sqlite_queue, app)
    with app.app_context():
        db.session.add(SeenNonce(scope="v2", nonce="expired", expires_at=utcnow() - timedelta(1)))
        db.session.add(
            CallLog(
                method="GET",
                path="/saas",
                family="saas",
                protocol="v1",
                created_at=utcnow() - timedelta(days=3),
            )
        )
        db.session.commit()
        old_calls = count(CallLog)
    for _ in range(2):  # two ticks, as a worker would run them on its schedule
        with app.app_context():
            sqlite_queue.huey.execute(sqlite_queue.tick_task.s())
        time.sleep(0.25)
    with app.app_context():
        assert db.session.scalar(select(SeenNonce).where(SeenNonce.nonce == "expired")) is None
        assert count(CallLog) == old_calls - 1
    pushed = [record for record in open_api.usage_records if record["instance_id"] == "b-queue"]
    assert pushed and pushed[0]["usage_value"] == "12.3457"


def test_an_instances_jobs_run_in_the_order_of_the_calls(
    app, marketplace, sqlite_queue, use_provisioner
):
    use_provisioner("tests.provisioners:RecordingProvisioner")
    buy(marketplace)
    drain(sqlite_queue, app)
    for status in ("FREEZE", "UNFREEZE"):
        marketplace.saas_v2("updateInstanceStatus", instanceId="b-queue", status=status)
    marketplace.saas_v2("releaseInstance", instanceId="b-queue")
    # The queue hands the jobs out newest first; each must still wait for the one before it.
    for _ in iter(sqlite_queue.huey.dequeue, None):
        pass
    with app.app_context():
        job_ids = list(db.session.scalars(select(Job.id).where(Job.kind != "provision")))
        for job_id in reversed(job_ids):
            queue().enqueue(job_id)
    drain(sqlite_queue, app)
    assert [name for name, _ in provisioners.calls] == [
        "provision",
        "freeze",
        "unfreeze",
        "release",
    ]
    with app.app_context():
        assert set(db.session.scalars(select(Job.state))) == {"done"}
