"""`make reliability`: load, crashes, a database outage and bad inputs against real servers.

Starts gunicorn (production settings, four workers) and `market worker` (SQLite task queue) on
loopback with a fresh database per engine, runs the phases and prints one table. Exit status 1
when any invariant fails: an acknowledged purchase missing or duplicated, an instance in another
state than its last acknowledged transition, a non-JSON answer, an HTTP 5xx.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python reliability/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reliability import checks, phases
from reliability.deployment import Deployment, fresh_keys
from reliability.workload import Traffic

PG_DATABASE = "koogallery_reliability"
PG_ROLE = "koogallery"


@dataclass
class Row:
    """One line of the table."""

    database: str
    load: str = "-"
    faults: list[str] = field(default_factory=list)
    bad_inputs: str = "-"
    lost: int = 0
    duplicated: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def postgres_cluster() -> tuple[str, str, str]:
    """Return (version, name, port) of the newest local cluster, as .ci/run picks it."""
    listing = subprocess.run(
        ["pg_lsclusters", "-h"],  # noqa: S607 - the PostgreSQL packaging tool, from PATH
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    clusters = [line.split()[:3] for line in listing.splitlines()]
    version, name, port = max(clusters, key=lambda cluster: float(cluster[0]))
    # .ci/run passes the port it found; it is the same cluster, named explicitly.
    return version, name, os.environ.get("RELIABILITY_PG_PORT", port)


def fresh_postgres_database(port: str, database: str = PG_DATABASE) -> str:
    """Recreate a database owned by the test role; return its URL."""
    password = os.environ.get("RELIABILITY_PG_PASSWORD", "koogallery")
    script = (
        "SET client_min_messages TO warning;\n"
        f"DROP DATABASE IF EXISTS {database};\n"
        f"CREATE DATABASE {database} OWNER {PG_ROLE};\n"
    )
    # The test role cannot create databases: the postgres superuser does, as .ci/run does.
    subprocess.run(  # noqa: S603 - fixed arguments, the port is ours
        ["su", "postgres", "-c", f"psql -q -p {port}"],  # noqa: S607 - system tools, from PATH
        input=script,
        text=True,
        check=True,
    )
    return f"postgresql+psycopg://{PG_ROLE}:{password}@127.0.0.1:{port}/{database}"


def run_database(name: str, profile: phases.Profile) -> Row:
    """Run every phase against one database engine."""
    row = Row(name)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"koogallery-reliability-{name}-") as directory:
        cluster = None
        if name == "postgresql":
            version, cluster_name, port = postgres_cluster()
            cluster = (version, cluster_name)
            database_url = fresh_postgres_database(port)
        else:
            database_url = f"sqlite:///{directory}/reliability.db"
        keys = fresh_keys()
        deployment = Deployment(database_url, Path(directory), keys)
        deployment.migrate()
        deployment.start()
        try:
            run_phases(row, deployment, database_url, keys, profile, cluster)
        except Exception as error:  # report it in the table rather than lose the other database
            row.failures.append(f"phase aborted: {type(error).__name__}: {error}")
        finally:
            deployment.stop()
        if row.failures:
            print(f"--- {name}: server log (last lines)\n{deployment.log_tail()}", file=sys.stderr)
    row.seconds = time.monotonic() - started
    return row


def run_phases(row, deployment, database_url, keys, profile, cluster) -> None:
    """Load, crash, outage (PostgreSQL), bad inputs; then the invariants over everything sent."""
    traffic = Traffic(deployment.url, keys)
    print(f"[{row.database}] load: {profile.calls} calls", flush=True)
    row.load = phases.load_phase(traffic, profile)
    verdict = checks.check(database_url, traffic)
    row.failures += [f"after load: {problem}" for problem in verdict.problems]
    busy = sum(1 for record in traffic.records if record.code == "000005")
    print(f"[{row.database}] crashes: {profile.crashes}", flush=True)
    crashes, failures = phases.crash_phase(traffic, deployment, profile)
    row.faults.append(f"{crashes}/{profile.crashes} kill -9 ({profile.master_kills} master)")
    row.failures += failures
    if cluster:
        print(f"[{row.database}] database down", flush=True)
        outage, failures = phases.outage_phase(traffic, profile, cluster)
        row.faults.append(outage)
        row.failures += failures
    else:
        row.faults.append(f"busy: {busy}×000005 in load, 0 HTTP 500 required")
    print(f"[{row.database}] replays and clock", flush=True)
    tried, failures = phases.probe_phase(traffic, database_url, profile)
    row.bad_inputs = f"{tried} refused/idempotent"
    row.failures += failures
    verdict = checks.check(database_url, traffic)
    row.lost, row.duplicated = verdict.lost, verdict.duplicated
    row.failures += verdict.problems
    if verdict.wrong_state or verdict.non_json:
        row.failures.append(f"{verdict.wrong_state} wrong states, {verdict.non_json} non-JSON")
    row.load += f"; {len(traffic.orders)} orders, {len(traffic.records)} calls in all"


def print_table(rows: list[Row]) -> None:
    """Print the one table of the run."""
    header = (
        "database",
        "load held",
        "faults survived",
        "bad inputs tried",
        "lost/dup",
        "result",
        "time",
    )
    lines = [
        (
            row.database,
            row.load,
            "; ".join(row.faults) or "-",
            row.bad_inputs,
            f"{row.lost}/{row.duplicated}",
            "PASS" if not row.failures else f"FAIL ({len(row.failures)})",
            f"{row.seconds:.0f}s",
        )
        for row in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    for cells in (header, tuple("-" * width for width in widths), *lines):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True)))
    for row in rows:
        for failure in row.failures[:20]:
            print(f"  {row.database}: {failure}")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen profile on the chosen databases; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(phases.PROFILES), default="short")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    options = parser.parse_args(argv)
    names = ("sqlite", "postgresql") if options.database == "both" else (options.database,)
    profile = phases.PROFILES[options.profile]
    rows = [run_database(name, profile) for name in names]
    print_table(rows)
    return 1 if any(row.failures or row.lost or row.duplicated for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
