"""`flask --app wsgi market usage-push`: send usage records to the marketplace by hand."""

import json
from datetime import UTC, datetime
from typing import TextIO

import click
from flask import current_app
from flask.cli import with_appcontext

from app.marketplace.client import (
    USAGE_TIME_FORMAT,
    MarketplaceClient,
    MarketplaceError,
    usage_record,
)

USAGE_TIME = click.DateTime(formats=[USAGE_TIME_FORMAT])


@click.command("usage-push")
@click.option("--instance", "instance_id", help="The instance the usage belongs to.")
@click.option(
    "--value", "usage_value", help="Usage in the product's unit, e.g. 1.5 (≤ 4 decimals)."
)
@click.option("--begin", type=USAGE_TIME, help="Start of the period, UTC yyyyMMddTHHmmssZ.")
@click.option("--end", type=USAGE_TIME, help="End of the period, UTC yyyyMMddTHHmmssZ.")
@click.option("--sn", "metering_sn", help="metering_sn; reuse it to resend the same record.")
@click.option("--related-package", "relate_pkg_instance", help="Package instance it draws on.")
@click.option(
    "--file",
    "records_file",
    type=click.File("r", encoding="utf-8"),
    help="A JSON list of complete records instead of the options above ('-' for stdin).",
)
@with_appcontext
def usage_push_command(
    instance_id: str | None,
    usage_value: str | None,
    begin: datetime | None,
    end: datetime | None,
    metering_sn: str | None,
    relate_pkg_instance: str | None,
    records_file: TextIO | None,
) -> None:
    """Push usage records (按需使用量推送) and print the marketplace's answer."""
    single = (instance_id, usage_value, begin, end, metering_sn, relate_pkg_instance)
    if records_file is not None:
        if any(option is not None for option in single):
            raise click.UsageError("give either --file or the record options, not both")
        records = _load_records(records_file)
    else:
        if None in (instance_id, usage_value, begin, end):
            raise click.UsageError("--instance, --value, --begin and --end are required")
        try:
            record = usage_record(
                instance_id,
                usage_value,
                # click parses the times naive; the format's trailing Z says they are UTC.
                begin.replace(tzinfo=UTC),
                end.replace(tzinfo=UTC),
                metering_sn=metering_sn,
                relate_pkg_instance=relate_pkg_instance,
            )
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        records = [record]

    client = MarketplaceClient.from_config(current_app.config)
    if client is None:
        raise click.ClickException("set KOOGALLERY_AK and KOOGALLERY_SK to call the open API")
    try:
        answer = client.push_usage(records)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    except MarketplaceError as error:
        status = f" (HTTP {error.status})" if error.status else ""
        raise click.ClickException(f"usage push failed{status}: {error}") from None

    click.echo(f"{answer.get('error_code')} ok: {len(records)} usage record(s) accepted")
    for record in records:
        # The serial number is what makes a resend idempotent: show it so it can be reused.
        click.echo(f"  {record['metering_sn']}  {record['instance_id']}  {record['usage_value']}")


def _load_records(records_file: TextIO) -> list[dict]:
    """Read a JSON list of records; each must carry its own metering_sn."""
    try:
        records = json.load(records_file)
    except ValueError as error:
        raise click.UsageError(f"{records_file.name} is not JSON: {error}") from None
    if not isinstance(records, list):
        raise click.UsageError(f"{records_file.name} must hold a JSON list of records")
    # No serial numbers are invented for a file: pushing the same file twice must not bill twice.
    return records
