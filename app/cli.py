"""`flask --app wsgi market …`: commands for the merchant's operator."""

import json
import os
from datetime import timedelta
from pathlib import Path

import click
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import delete, or_, select

from app.auth import purge_expired_nonces
from app.devkeys import DEVELOPMENT_KEYS_FILE
from app.extensions import db
from app.jobs import queue, retry
from app.license.service import deliver_license
from app.licensing import InvalidLicense, public_key_pem, signing_key, verify_license
from app.marketplace.client import MarketplaceClient, MarketplaceError
from app.marketplace.commands import lifecycle_command, send_command, usage_push_command
from app.marketplace.mock_marketplace import mock_command
from app.models import CallLog, Job, JobState, utcnow
from app.saas.service import complete_provisioning
from app.security import (
    generate_private_key,
    load_private_key,
    private_key_pem,
    public_key_base64,
)
from config import DEVELOPMENT, KEY_SETTINGS

market = AppGroup("market", help="Operate the KooGallery merchant server.")

CALL_COLUMNS = (
    ("time (UTC)", 19),
    ("family", 7),
    ("protocol", 8),
    ("activity", 20),
    ("result", 6),
    ("reason", 20),
    ("instance / order", 36),
    ("ms", 5),
)

# What each key is for, in the seller console's words (spec README, "Keys").
KEY_PURPOSES = {
    "KOOGALLERY_BASIC_KEY": "基础接口 key, also the V1 Key值",
    "KOOGALLERY_KIT_KEY": "联营SaaS同步接口 key",
    "KOOGALLERY_LICENSE_KEY": "License授权码交付接口 key",
    "KOOGALLERY_GENERAL_KEY": "通用接口 key (orderNotify)",
}


@market.command("calls")
@click.option("--failed", is_flag=True, help="Only calls not answered 000000.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
def calls_command(failed: bool, limit: int) -> None:
    """Print the latest marketplace calls, newest first."""
    query = select(CallLog).order_by(CallLog.id.desc()).limit(limit)
    if failed:
        query = query.where(or_(CallLog.result_code.is_(None), CallLog.result_code != "000000"))
    rows = db.session.scalars(query).all()
    if not rows:
        click.echo("No calls recorded." if not failed else "No failed calls recorded.")
        return
    click.echo(_table_row(name for name, _ in CALL_COLUMNS))
    click.echo(_table_row("-" * width for _, width in CALL_COLUMNS))
    for row in rows:
        click.echo(
            _table_row(
                (
                    row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    row.family,
                    row.protocol,
                    row.activity or "-",
                    row.result_code or "-",
                    row.reason or ("ok" if row.verified else "-"),
                    row.instance_id or row.order_id or "-",
                    str(row.duration_ms),
                )
            )
        )


def _table_row(cells) -> str:
    parts = []
    for cell, (_, width) in zip(cells, CALL_COLUMNS, strict=True):
        text = str(cell)
        parts.append(text if len(text) <= width else text[: width - 1] + "…")
    return "  ".join(
        part.ljust(width) for part, (_, width) in zip(parts, CALL_COLUMNS, strict=True)
    )


@market.command("keys")
def keys_command() -> None:
    """Print the development keys and how to use them."""
    config = current_app.config
    if config["KOOGALLERY_ENV"] != DEVELOPMENT:
        raise click.ClickException("keys are only printed in development")
    generated = config.get("KOOGALLERY_DEVELOPMENT_KEYS", [])
    saved_path = Path(current_app.instance_path) / DEVELOPMENT_KEYS_FILE

    click.echo(f"Development keys (saved in {saved_path}; for local testing only):\n")
    for name in KEY_SETTINGS:
        value = ",".join(config[name]) if name in generated else "<set in the environment>"
        click.echo(f"  {name}={value}    # {KEY_PURPOSES[name]}")
    click.echo(
        "\nPaste these lines into .env to keep them, or bind them to a test product in the "
        "seller console (应用工具 › 密钥管理)."
    )
    rsa_key = config.get("KOOGALLERY_RSA_PRIVATE_KEY")
    if rsa_key:
        click.echo(
            "\nRSA public key for the app credential (应用凭证), Base64 without PEM lines:\n  "
            + public_key_base64(load_private_key(rsa_key))
        )
    if config.get("KOOGALLERY_LICENSE_SIGNING_KEY"):
        click.echo(
            "\nLicence public key (build it into your software to verify licences offline):\n"
            + public_key_pem(signing_key(config))
        )
    if "KOOGALLERY_CONSOLE_PASSWORD" in generated:
        click.echo(
            f"\nOperator console: /console, password {config['KOOGALLERY_CONSOLE_PASSWORD']}"
        )
    port = os.environ.get("PORT", "5000")
    click.echo(f"\nTry it:  curl -s http://127.0.0.1:{port}/healthz")


@market.command("complete-provisioning")
@click.argument("instance_id")
def complete_provisioning_command(instance_id: str) -> None:
    """Mark an instance whose provisioner answered "in progress" as ready."""
    try:
        instance = complete_provisioning(instance_id)
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{instance.instance_id}: {instance.state}")


@market.command("verify-license")
@click.argument("license_or_file")
@click.option("--public-key", type=click.File(), help="PEM file; default: the configured key's.")
def verify_license_command(license_or_file: str, public_key) -> None:
    """Check a licence's signature and print its document."""
    try:
        path = Path(license_or_file)
        text = path.read_text() if path.is_file() else license_or_file
    except OSError:  # a licence is longer than any file name
        text = license_or_file
    if public_key is not None:
        key = load_pem_public_key(public_key.read().encode())
    else:
        key = signing_key(current_app.config).public_key()
    try:
        document = verify_license(text, key)
    except InvalidLicense as error:
        raise click.ClickException(f"invalid licence: {error}") from None
    click.echo("valid licence")
    click.echo(json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True))


@market.command("license-public-key")
def license_public_key_command() -> None:
    """Print the public key your software needs to verify licences offline."""
    click.echo(public_key_pem(signing_key(current_app.config)), nl=False)


@market.command("deliver-license")
@click.argument("event_id")
@click.option("--file", "license_file", type=click.File(), required=True)
def deliver_license_command(event_id: str, license_file) -> None:
    """Store an asynchronously issued licence and upload it for the marketplace's event."""
    if MarketplaceClient.from_config(current_app.config) is None:
        raise click.ClickException("KOOGALLERY_AK and KOOGALLERY_SK are needed to upload")
    try:
        license = deliver_license(event_id, license_file.read().strip())
    except (LookupError, MarketplaceError) as error:
        raise click.ClickException(str(error)) from None
    db.session.refresh(license)
    upload = "uploaded" if license.delivered_at else "upload queued"
    click.echo(f"licence for event {event_id} stored ({license.state}), {upload}")


@market.command("rsa-keygen")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default="instance/rsa-private.pem",
    show_default=True,
    help="Where to write the private key (mode 0600).",
)
def rsa_keygen_command(out: str) -> None:
    """Create the 3072-bit RSA key pair whose public key goes with the app credential."""
    path = Path(out)
    if path.exists():
        raise click.ClickException(f"{path} exists; move it away to make a new key")
    key = generate_private_key(3072)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(private_key_pem(key))
    click.echo(f"Private key written to {path}. Set KOOGALLERY_RSA_PRIVATE_KEY={path}")
    click.echo("\nPublic key for the app credential (应用凭证), Base64 without PEM lines:")
    click.echo(public_key_base64(key))


@market.command("prune")
@click.option(
    "--days", type=click.IntRange(0), help="Keep this many days of call log (default: the setting)."
)
def prune_command(days: int | None) -> None:
    """Delete call-log rows past the retention and expired nonces now."""
    days = current_app.config["KOOGALLERY_CALL_LOG_RETENTION_DAYS"] if days is None else days
    cutoff = utcnow() - timedelta(days=days)
    calls = db.session.execute(delete(CallLog).where(CallLog.created_at < cutoff)).rowcount
    db.session.commit()
    nonces = purge_expired_nonces(force=True)
    click.echo(f"deleted {calls} call-log rows older than {days} days and {nonces} expired nonces")


@market.command("worker")
@click.option("--workers", default=2, show_default=True, help="Threads running jobs.")
def worker_command(workers: int) -> None:
    """Run the job worker (provisioning, order details, chores) until stopped."""
    huey_queue = queue()
    if huey_queue.inline:
        raise click.ClickException("KOOGALLERY_QUEUE=inline runs jobs in the calls: no worker")
    consumer = huey_queue.huey.create_consumer(
        workers=workers, worker_type="thread", periodic=False
    )
    click.echo(f"worker: {current_app.config['KOOGALLERY_QUEUE']}, {workers} threads")
    consumer.run()


@market.command("jobs")
@click.option("--failed", is_flag=True, help="Only dead letters and jobs waiting to retry.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def jobs_command(failed: bool, limit: int) -> None:
    """List jobs, newest first, with the last error of each."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if failed:
        query = query.where(Job.state.in_((JobState.DEAD, JobState.RETRYING)))
    rows = db.session.scalars(query).all()
    if not rows:
        click.echo("No jobs.")
        return
    for job in rows:
        instance_id = job.instance.instance_id if job.instance else "-"
        click.echo(
            f"{job.id:>6}  {job.kind:<12} {job.state:<9} attempts={job.attempts:<2} "
            f"{instance_id:<36} {job.updated_at:%Y-%m-%d %H:%M:%S}  {job.last_error or ''}"
        )


@market.command("retry")
@click.argument("job_id", type=int, required=False)
@click.option("--all-failed", is_flag=True, help="Every dead letter.")
def retry_command(job_id: int | None, all_failed: bool) -> None:
    """Give a dead job (or all of them) a fresh set of attempts."""
    if all_failed:
        ids = list(db.session.scalars(select(Job.id).where(Job.state == JobState.DEAD)))
    elif job_id is not None:
        ids = [job_id]
    else:
        raise click.UsageError("name a JOB_ID or pass --all-failed")
    for one in ids:
        outcome = "re-enqueued" if retry(one) else "not retried (done, running or unknown)"
        click.echo(f"job {one}: {outcome}")


market.add_command(usage_push_command)
market.add_command(send_command)
market.add_command(lifecycle_command)
market.add_command(mock_command)


def register_cli(app: Flask) -> None:
    """Add the `market` command group to the app."""
    app.cli.add_command(market)
