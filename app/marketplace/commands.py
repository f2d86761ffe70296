"""`flask --app wsgi market usage-push | send | lifecycle`: talk to the marketplace, or play it."""

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
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
from app.marketplace.lifecycle import PASS, html_report, run_lifecycle, summary
from app.marketplace.simulator import (
    BUDGET_SECONDS,
    PROTOCOLS,
    Keys,
    build_call,
    fresh_id,
    judge,
    new_order,
    send,
)
from app.security import load_private_key

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


# ------------------------------------------------------------------------------ simulator


def parse_fields(values: tuple[str, ...], protocol: str) -> dict:
    """Turn -f name=value options into body fields (JSON values allowed: -f userList='[…]')."""
    fields: dict = {}
    for item in values:
        name, separator, value = item.partition("=")
        if not separator:
            raise click.BadParameter(f"{item!r} is not name=value", param_hint="-f")
        # Kit bodies carry flag/testFlag as Integers; lists and objects may be given as JSON.
        if value[:1] in "[{" or (protocol.startswith("kit") and value.isdigit()):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        fields[name] = value
    return fields


@click.command("send")
@click.argument("activity")
@click.option(
    "--url", required=True, help="The production address, e.g. https://isv.example.com/saas."
)
@click.option(
    "--protocol",
    type=click.Choice(PROTOCOLS),
    default="v2",
    show_default=True,
    help="Which generation to speak.",
)
@click.option("-f", "--field", "field_values", multiple=True, help="name=value, repeatable.")
@click.option("--test/--no-test", default=True, show_default=True, help="testFlag=1 (debug call).")
@click.option("--curl", is_flag=True, help="Print the equivalent curl line instead of sending.")
@click.option("--budget", default=BUDGET_SECONDS, show_default=True, help="Seconds allowed.")
@click.option("--ca-bundle", help="CA bundle for a server with a private certificate.")
@with_appcontext
def send_command(activity, url, protocol, field_values, test, curl, budget, ca_bundle):
    """Send one call as the marketplace would, and judge the answer as the seller console does."""
    keys = Keys(current_app.config)
    fields = {**default_fields(protocol, activity, test), **parse_fields(field_values, protocol)}
    try:
        call = build_call(
            protocol, activity, url.rstrip("/"), fields, keys.for_call(protocol, activity)
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if curl:
        click.echo(call.curl())
        return
    answer = send(call, verify=ca_bundle or True)
    verdict = judge(call, answer, budget=budget)
    click.echo(f"> {call.method} {call.url}")
    for name, value in call.headers.items():
        click.echo(f"> {name}: {value}")
    if call.body:
        click.echo(f"> {call.body.decode('utf-8')}")
    click.echo(
        f"< HTTP {answer.status or '-'} in {answer.seconds * 1000:.0f} ms (budget {budget:g} s)"
    )
    for name, value in answer.headers:
        click.echo(f"< {name}: {value}")
    click.echo(f"< {answer.body.decode('utf-8', 'replace')}")
    for name, value in verdict.credentials.items():
        click.echo(f"  appInfo.{name} (decrypted): {value}")
    for check in verdict.checks:
        click.echo(
            f"{'PASS' if check.passed else 'FAIL'}  {check.name}"
            + (f" — {check.message}" if check.message else "")
        )
    if not verdict.passed:
        raise SystemExit(1)


def default_fields(protocol: str, activity: str, test: bool) -> dict:
    """Return sensible generated values for what the call needs (ids fresh on every call)."""
    order = new_order()
    flag = (1 if test else 0) if protocol.startswith("kit") else ("1" if test else "0")
    defaults = {
        "newInstance": {**order, "businessId": fresh_id("B")},
        "getLicense": {
            "orderId": order["orderId"],
            "businessId": fresh_id("B"),
            "productId": "00301-000000-0--0",
        },
        "orderNotify": order,
    }
    fields = dict(defaults.get(activity, {}))
    if protocol in ("v1", "license-v1") and activity in ("newInstance", "getLicense"):
        fields = {k: v for k, v in fields.items() if k != "orderLineId"}
        fields |= {
            "customerId": "68cbc86abc2018ab880d92f36422fa0e",
            "productId": "00301-000000-0--0",
        }
    return {**fields, "testFlag": flag}


@click.command("lifecycle")
@click.option("--url", required=True, help="The production address for this protocol.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="v2", show_default=True)
@click.option("--report", type=click.Path(dir_okay=False, writable=True), help="Also write HTML.")
@click.option("--budget", default=BUDGET_SECONDS, show_default=True, help="Seconds per call.")
@click.option("--ca-bundle", help="CA bundle for a server with a private certificate.")
@with_appcontext
def lifecycle_command(url, protocol, report, budget, ca_bundle):
    """Run the whole lifecycle and the negative cases; exit non-zero if any step fails."""
    results = run_lifecycle(
        protocol,
        url,
        Keys(current_app.config),
        budget=budget,
        verify=ca_bundle or True,
        rsa_public_key=configured_rsa_public_key(),
    )
    for result in results:
        click.echo(result.line())
    click.echo(f"{protocol}: {summary(results)}")
    if report:
        Path(report).write_text(html_report(results, f"KooGallery lifecycle — {protocol} — {url}"))
    if any(result.status != PASS for result in results):
        raise SystemExit(1)


def configured_rsa_public_key():
    """Return the public half of the configured RSA key (to encrypt a test clientSecret)."""
    pem = current_app.config.get("KOOGALLERY_RSA_PRIVATE_KEY")
    return load_private_key(pem).public_key() if pem else None
