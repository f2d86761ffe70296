"""Provisioning work on a task queue (Huey): outbox rows, retries with backoff, dead letters.

The marketplace call commits the instance in `provisioning` together with a `job` row (the
outbox), then hands the job's id to the queue and answers at once. A worker runs the job: it
claims the row with a conditional update (so a job delivered twice runs once), calls the hook,
and commits the hook's rows, the instance's new state and the job's `done` in one transaction.
A failure is retried with exponential backoff; after KOOGALLERY_JOB_MAX_ATTEMPTS the job is kept
as a dead letter and the instance is `failed` (queryInstance answers 000005).

KOOGALLERY_QUEUE chooses the queue: `sqlite` (default; a file under instance/, no server
needed), `sqlite:////path/queue.db`, `redis://host:6379/0` (several machines), or `inline`
(run each job in the call itself: tests and tiny deployments).

A chain of `tick` tasks does the chores: re-enqueue outbox rows that never reached the queue or
whose worker died, purge expired nonces and old call-log rows, and push on-demand usage.
"""

import json
import logging
import traceback
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from flask import Flask, current_app, has_app_context
from huey import Huey, MemoryHuey, RedisHuey
from huey.storage import SqliteStorage
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import aliased

from app.extensions import db
from app.lifecycle import mark_failed, mark_provisioned
from app.models import CallLog, Instance, InstanceState, Job, JobState, Maintenance, utcnow
from app.provisioning import InProgress, Purchase, Renewal, Upgrade, get_provisioner
from app.sealing import seal, unseal

log = logging.getLogger(__name__)


def running_lease() -> timedelta:
    """How long a running job may take before its worker is presumed dead."""
    return timedelta(seconds=current_app.config["KOOGALLERY_JOB_LEASE"])


def outbox_grace() -> timedelta:
    """How long an outbox row may wait before it is presumed never enqueued (a crash)."""
    return timedelta(seconds=current_app.config["KOOGALLERY_OUTBOX_GRACE"])


def make_huey(setting: str, instance_path: str):
    """Return the Huey instance for a KOOGALLERY_QUEUE setting."""
    if setting == "inline":
        return MemoryHuey("koogallery", immediate=True, results=False)
    if setting.startswith("redis://") or setting.startswith("rediss://"):
        return RedisHuey("koogallery", url=setting, results=False)
    if setting == "sqlite":
        filename = str(Path(instance_path) / "queue.db")
    elif setting.startswith("sqlite:///"):
        filename = setting.removeprefix("sqlite:///")
    else:
        raise ValueError(
            f"KOOGALLERY_QUEUE must be inline, sqlite[:///path] or redis://…, not {setting!r}"
        )
    Path(filename).parent.mkdir(parents=True, exist_ok=True)
    return Huey("koogallery", storage_class=QueueStorage, filename=filename, results=False)


class QueueStorage(SqliteStorage):
    """Huey's SQLite queue, with the write-ahead log synced at checkpoints, not every commit.

    Huey leaves SQLite at synchronous=FULL, an fsync for every enqueue inside the marketplace's
    call. NORMAL is SQLite's advice for WAL: a power cut may lose the last enqueues but cannot
    corrupt the file, and a lost enqueue is found again by the outbox sweep (the job row is in
    the app's database, committed with the change that needed it).
    """

    def _create_connection(self):
        connection = super()._create_connection()
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection


class Queue:
    """The app's task queue and the two tasks it carries."""

    def __init__(self, app: Flask):
        self.app = app
        self.inline = app.config["KOOGALLERY_QUEUE"] == "inline"
        self.huey = make_huey(app.config["KOOGALLERY_QUEUE"], app.instance_path)
        self.run_job_task = self.huey.task(name="run_job")(self._in_app(run_job))
        self.tick_task = self.huey.task(name="tick")(self._in_app(tick))

        @self.huey.on_startup()
        def start_ticking():
            # Each worker starts one tick; the lease in tick() keeps a single chain alive.
            self.tick_task()

    def _in_app(self, function):
        app = self.app

        def in_app(*args):
            # Inline jobs run inside the marketplace call, in its app context and session.
            if has_app_context():
                return function(*args)
            with app.app_context():
                return function(*args)

        in_app.__name__ = function.__name__
        return in_app

    def enqueue(self, job_id: int, delay: float | None = None) -> None:
        """Hand a committed job to the queue (now, or after `delay` seconds)."""
        if delay and not self.inline:
            self.run_job_task.schedule(args=(job_id,), delay=delay)
        else:
            self.run_job_task(job_id)


def init_queue(app: Flask) -> None:
    """Create the app's queue."""
    app.extensions["koogallery_queue"] = Queue(app)


def queue() -> Queue:
    """Return the current app's queue."""
    return current_app.extensions["koogallery_queue"]


# ------------------------------------------------------------------------------ outbox


def add_job(kind: str, instance: Instance | None, payload: dict) -> Job:
    """Add a job to the session; it is committed with the change that needs it."""
    job = Job(kind=kind, instance=instance, payload_sealed=seal(json.dumps(payload)))
    db.session.add(job)
    return job


def dispatch(job: Job) -> None:
    """Hand a committed job to the queue; if this fails, the outbox sweep will do it later."""
    db.session.commit()
    job_id = job.id
    # Nothing may hold a database lock while an inline job runs in this same call.
    db.session.commit()
    try:
        queue().enqueue(job_id)
    except Exception:
        log.exception("could not enqueue job %s; the outbox sweep will retry", job_id)


def provision_purchase(instance: Instance, purchase: Purchase) -> Job:
    """Add the job that runs the provisioning hook for a claimed instance."""
    return add_job("provision", instance, asdict(purchase))


# ------------------------------------------------------------------------------ running


def run_job(job_id: int) -> None:
    """Run one job once: claim it, call its handler, commit the effect with `done`."""
    claimed = db.session.execute(
        update(Job)
        .where(Job.id == job_id, claimable())
        .values(state=JobState.RUNNING, attempts=Job.attempts + 1, updated_at=utcnow())
        # Compared in SQL only: SQLite hands datetimes back without their zone.
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        return  # done, dead, or running elsewhere: a duplicate delivery
    session = db.session()
    # Keep what was loaded usable after the commit below, so that a slow hook does not hold a
    # transaction open: on SQLite that would lock the database for every marketplace call.
    session.expire_on_commit = False
    try:
        job = db.session.get(Job, job_id)
        payload = json.loads(unseal(job.payload_sealed))
        if job.instance is not None:
            job.instance.state  # noqa: B018 - load it before the transaction ends
        db.session.commit()
        HANDLERS[job.kind](job, payload)
        job.state = JobState.DONE
        job.last_error = None
        db.session.commit()
        enqueue_next(job)
    except Exception as error:
        db.session.rollback()
        log.exception("job %s (%s) failed", job_id, job.kind)
        give_up_or_retry(db.session.get(Job, job_id), error)
    finally:
        session.expire_on_commit = True


def enqueue_next(job: Job) -> None:
    """Enqueue the instance's next waiting job, which waited for this one to finish."""
    if job.instance_pk is None:
        return
    next_id = db.session.scalar(
        select(Job.id)
        .where(Job.instance_pk == job.instance_pk, Job.id > job.id, Job.state == JobState.PENDING)
        .order_by(Job.id)
        .limit(1)
    )
    db.session.commit()
    if next_id is not None:
        queue().enqueue(next_id)


def claimable():
    """Jobs that may start now: waiting ones, and running ones whose worker died.

    An instance's jobs run in the order the marketplace's calls made them (freeze before
    unfreeze before release): a job waits while an earlier one of its instance is unfinished.
    """
    earlier = aliased(Job)
    unfinished_earlier = (
        select(earlier.id)
        .where(
            earlier.instance_pk == Job.instance_pk,
            earlier.id < Job.id,
            earlier.state.not_in((JobState.DONE, JobState.DEAD)),
        )
        .exists()
    )
    return (
        or_(
            Job.state.in_((JobState.PENDING, JobState.RETRYING)),
            (Job.state == JobState.RUNNING) & (Job.updated_at < utcnow() - running_lease()),
        )
        & ~unfinished_earlier
    )


def give_up_or_retry(job: Job, error: Exception) -> None:
    """Schedule the next attempt with exponential backoff, or keep the job as a dead letter."""
    config = current_app.config
    job.last_error = "".join(traceback.format_exception_only(error)).strip()[:512]
    if job.attempts >= config["KOOGALLERY_JOB_MAX_ATTEMPTS"]:
        job.state = JobState.DEAD
        if job.kind == "provision" and job.instance is not None:
            mark_failed(job.instance, "newInstance", error)
        db.session.commit()
        enqueue_next(job)
        return
    delay = config["KOOGALLERY_JOB_BACKOFF"] * 2 ** (job.attempts - 1)
    job.state = JobState.RETRYING
    job.run_after = utcnow() + timedelta(seconds=delay)
    db.session.commit()
    queue().enqueue(job.id, delay=delay)


def run_provision(job: Job, payload: dict) -> None:
    """Call the provisioning hook; the instance becomes active unless the hook says later."""
    instance = job.instance
    if instance.state != InstanceState.PROVISIONING:
        return  # released or completed meanwhile: nothing to do
    outcome = get_provisioner().provision(instance, Purchase(**payload))
    if not isinstance(outcome, InProgress):
        mark_provisioned(instance, "newInstance")


def run_fetch_order(job: Job, payload: dict) -> None:
    """Fetch an order's details after orderNotify."""
    from app.notify.service import fetch_details

    fetch_details(payload["notification_id"])


def run_hook(job: Job, payload: dict) -> None:
    """Call the hook behind a change the marketplace call has already committed."""
    provisioner = get_provisioner()
    if job.kind == "renew":
        provisioner.renew(job.instance, Renewal(**payload))
    elif job.kind == "upgrade":
        provisioner.upgrade(job.instance, Upgrade(**payload))
    else:  # freeze, unfreeze, release
        getattr(provisioner, job.kind)(job.instance)


def run_upload_license(job: Job, payload: dict) -> None:
    """Upload a licence an asynchronous issuer produced (字符串/文件流上传)."""
    from app.license.service import upload_license

    upload_license(payload["license_id"])


HANDLERS = {
    "provision": run_provision,
    "renew": run_hook,
    "freeze": run_hook,
    "unfreeze": run_hook,
    "upgrade": run_hook,
    "release": run_hook,
    "fetch_order": run_fetch_order,
    "upload_license": run_upload_license,
}


def retry(job_id: int) -> bool:
    """Give a dead (or waiting) job a fresh set of attempts and enqueue it."""
    job = db.session.get(Job, job_id)
    if job is None or job.state in (JobState.DONE, JobState.RUNNING):
        return False
    job.state, job.attempts, job.last_error = JobState.PENDING, 0, None
    if job.kind == "provision" and job.instance is not None:
        job.instance.state = InstanceState.PROVISIONING
        job.instance.failure_reason = None
    dispatch(job)
    return True


# ------------------------------------------------------------------------------ chores


def tick() -> None:
    """Do the chores that are due, then schedule the next tick (one chain, whatever restarts)."""
    config = current_app.config
    interval = config["KOOGALLERY_TICK_SECONDS"]
    if not claim_chore("tick", interval * 0.8):
        return  # another chain ticked just now: let this one end
    if claim_chore("sweep", interval):
        sweep_outbox()
    if claim_chore("purge", config["KOOGALLERY_PURGE_INTERVAL"]):
        purge_old_rows()
    if claim_chore("usage", config["KOOGALLERY_USAGE_PUSH_INTERVAL"]):
        push_usage()
    queue().tick_task.schedule(delay=interval)


def claim_chore(name: str, interval: float) -> bool:
    """Claim a chore for this run if it is due; several workers race, one wins."""
    now = utcnow()
    row = db.session.get(Maintenance, name)
    if row is None:
        db.session.add(Maintenance(name=name, next_due=now))
        try:
            db.session.commit()
        except Exception:
            db.session.rollback()
    claimed = db.session.execute(
        update(Maintenance)
        .where(Maintenance.name == name, Maintenance.next_due <= now)
        .values(next_due=now + timedelta(seconds=interval))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return claimed == 1


def sweep_outbox() -> int:
    """Enqueue jobs that never reached the queue, or whose worker died mid-run."""
    now = utcnow()
    stale = select(Job.id).where(
        or_(
            (Job.state == JobState.PENDING) & (Job.created_at < now - outbox_grace()),
            (Job.state == JobState.RETRYING) & (Job.run_after < now - outbox_grace()),
            (Job.state == JobState.RUNNING) & (Job.updated_at < now - running_lease()),
        )
    )
    job_ids = list(db.session.scalars(stale))
    db.session.commit()
    for job_id in job_ids:
        queue().enqueue(job_id)
    return len(job_ids)


def purge_old_rows() -> None:
    """Delete expired nonces and call-log rows past KOOGALLERY_CALL_LOG_RETENTION_DAYS."""
    from app.auth import purge_expired_nonces

    purge_expired_nonces(force=True)
    days = current_app.config["KOOGALLERY_CALL_LOG_RETENTION_DAYS"]
    db.session.execute(delete(CallLog).where(CallLog.created_at < utcnow() - timedelta(days=days)))
    db.session.commit()


def push_usage() -> int:
    """Push the usage the hook reports for active on-demand instances (按需使用量推送)."""
    from app.marketplace.client import MarketplaceClient, MarketplaceError, usage_record

    client = MarketplaceClient.from_config(current_app.config)
    if client is None:
        return 0
    provisioner = get_provisioner()
    instances = db.session.scalars(
        select(Instance).where(
            Instance.state == InstanceState.ACTIVE,
            Instance.charging_mode.in_(("ON_DEMAND", "ON_DEMAND_PKG")),
        )
    ).all()
    records = []
    for instance in instances:
        for usage in provisioner.usage(instance) or []:
            end = usage.statistical_time
            # metering_sn is the marketplace's dedupe key: the same figure pushed twice counts once.
            records.append(
                usage_record(
                    instance.instance_id,
                    # usage_value: > 0 with at most 4 decimals (spec open-api.md).
                    round(Decimal(usage.usage_value), 4),
                    end - timedelta(seconds=current_app.config["KOOGALLERY_USAGE_PUSH_INTERVAL"]),
                    end,
                    metering_sn=f"{instance.instance_id}-{end:%Y%m%d%H%M%S}",
                )
            )
    db.session.commit()
    for start in range(0, len(records), 1000):
        try:
            client.push_usage(records[start : start + 1000])
        except (MarketplaceError, ValueError) as error:
            log.warning("usage push failed: %s", getattr(error, "code", None) or error)
    return len(records)
