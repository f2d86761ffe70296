"""`make bench`: throughput, latency and memory of the hot paths, as ratios to a baseline.

Starts the production configuration (gunicorn with the Dockerfile's worker count, a job worker,
a fresh migrated database) and a mock marketplace (open API and identity domain), then for each
row pre-signs a batch of calls just before sending them (nonces unique, timestamps current) and
drives them from separate client processes. The baseline is `/livez`, which touches no database
and no signature: the ceiling of this stack on this machine, measured in the same run, so that
ratios survive a noisy shared machine.

    python -m bench.run [--database sqlite|postgresql] [--requests 2000] [--clients 32]
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from reliability.deployment import Deployment, fresh_keys

ROOT = Path(__file__).resolve().parent.parent
WORKERS = "2"  # WEB_CONCURRENCY in the Dockerfile
BASELINE = "baseline /livez"
# The joint-operation login the OAuth row goes through.
APP_ID, CLIENT_ID, CLIENT_SECRET = "bench-app", "bench-client", secrets.token_urlsafe(24)
LOGIN_USER = "bench-user"


def worker_memory_mb(server: Deployment, field: str) -> list[float]:
    """Return VmRSS (now) or VmHWM (peak) of each gunicorn worker, in MB."""
    values = []
    for pid in server.web_worker_pids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                values.append(int(line.split()[1]) / 1024)
    return values


# ------------------------------------------------------------------------------ the client


def send_batch(requests_: list[tuple[str, str, dict, bytes]]) -> list[tuple[float, str]]:
    """Send pre-signed requests one after another; return (seconds, resultCode) per request."""
    session = requests.Session()
    out = []
    for method, url, headers, body in requests_:
        started = time.perf_counter()
        response = session.request(
            method, url, headers=headers, data=body or None, timeout=30, allow_redirects=False
        )
        seconds = time.perf_counter() - started
        try:
            code = response.json().get("resultCode", f"HTTP {response.status_code}")
        except ValueError:
            code = f"HTTP {response.status_code}"
        out.append((seconds, code))
    return out


def drive(batch: list, clients: int, expect: str) -> dict:
    """Send a batch from `clients` concurrent clients in separate processes; return figures."""
    chunks = [batch[i::clients] for i in range(clients)]
    processes = min(clients, os.cpu_count() or 2)
    started = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        # Each process runs several client threads, so `clients` requests are in flight.
        groups = [chunks[i::processes] for i in range(processes)]
        results = list(pool.map(run_group, groups))
    elapsed = time.perf_counter() - started
    timings = sorted(seconds for group in results for seconds, _ in group)
    codes = [code for group in results for _, code in group]
    return {
        "requests": len(timings),
        "clients": clients,
        "throughput": len(timings) / elapsed,
        "p50_ms": statistics.median(timings) * 1000,
        "p99_ms": timings[min(len(timings) - 1, int(len(timings) * 0.99))] * 1000,
        "ok": sum(code == expect for code in codes),
        "codes": sorted(set(codes)),
    }


def run_group(chunks: list[list]) -> list[tuple[float, str]]:
    with ThreadPoolExecutor(len(chunks)) as threads:
        return [item for result in threads.map(send_batch, chunks) for item in result]


# ------------------------------------------------------------------------------ signed calls


def signed(server: Deployment, protocol: str, activity: str, path: str, fields: dict, key: str):
    """Sign a call as the marketplace would; return (method, url, headers, body) for a client."""
    from app.marketplace.simulator import build_call

    call = build_call(protocol, activity, server.url + path, fields, server.keys[key])
    return (call.method, call.url, call.headers, call.body)


def v2(server: Deployment, path: str, body: dict):
    return signed(server, "v2", body.pop("activity"), path, body, "KOOGALLERY_BASIC_KEY")


def v1(server: Deployment, path: str, activity: str, fields: dict):
    return signed(server, "v1", activity, path, fields, "KOOGALLERY_BASIC_KEY")


def kit(server: Deployment, interface: str, body: dict):
    return signed(server, "kit-v2", interface, "/saas", body, "KOOGALLERY_KIT_KEY")


def must_succeed(call, expect: str = "000000") -> None:
    """Send one setup call; stop the benchmark if it is not answered as expected."""
    code = send_batch([call])[0][1]
    if code != expect:
        raise SystemExit(f"setup call {call[1].split('?')[0]} answered {code}, not {expect}")


# ------------------------------------------------------------------------------ setup


def setup_instances(server: Deployment, count: int) -> list[str]:
    """Buy `count` instances and wait until they are provisioned; return their ids."""
    ids = [f"bench-{i}-{secrets.token_hex(4)}" for i in range(count)]
    batch = [
        v2(
            server,
            "/saas",
            {
                "activity": "newInstance",
                "orderId": f"O-{i}",
                "orderLineId": f"L-{i}",
                "businessId": i,
            },
        )
        for i in ids
    ]
    drive(batch, 8, "000000")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # 000000 as soon as one is ready: wait until the answer describes all of them.
        method, url, headers, body = v2(
            server, "/saas", {"activity": "queryInstance", "instanceId": ",".join(ids[:100])}
        )
        answer = requests.request(method, url, headers=headers, data=body, timeout=30).json()
        if len(answer.get("info") or []) == 100:
            break
        time.sleep(0.5)
    return ids


def setup_online_license(server: Deployment, mock, run: str) -> str:
    """Open an online-activation purchase with room for every device; return its instanceId."""
    from app.marketplace.mock_api import mock_orders

    order = copy.deepcopy(mock_orders()["MOCKPERIODYEARNEW"])
    order_id = f"BENCHLIC{run}"
    line = order["orderLine"][0]
    next_year = datetime.now(UTC) + timedelta(days=365)
    line.update(orderLineId=f"{order_id}-000001", expireTime=next_year.strftime("%Y%m%d%H%M%S"))
    line["productInfo"][0]["linearValue"] = 1_000_000
    order["orderId"] = order_id
    mock.open_api.add_order(order)
    body = {
        "activity": "newInstance",
        "orderId": order_id,
        "orderLineId": f"{order_id}-000001",
        "businessId": f"lic-{run}",
    }
    must_succeed(v2(server, "/license", body))
    return f"lic-{run}"


def setup_login(server: Deployment, mock, tenant: str) -> None:
    """Sync a tenant, its app credential and one user, and register them with the identity mock."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from app.security import load_private_key

    public_key = load_private_key(server.keys["KOOGALLERY_RSA_PRIVATE_KEY"]).public_key()
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    secret = base64.b64encode(public_key.encrypt(CLIENT_SECRET.encode(), oaep)).decode()
    common = {"tenantId": tenant, "testFlag": 0}
    user = {"userName": LOGIN_USER, "name": "Bench", "orgCode": "1", "role": "admin"}
    for interface, body in (
        ("tenantSync", {"tenantCode": "b", "name": "Bench", "domainName": mock.base_url}),
        ("applicationSync", {"appId": APP_ID, "clientId": CLIENT_ID, "clientSecret": secret}),
        ("authSync", {"appId": APP_ID, "userList": [{**user, "enable": "true"}]}),
    ):
        must_succeed(kit(server, interface, {**common, **body, "flag": 1}))
    mock.identity.register_app(APP_ID, CLIENT_ID, CLIENT_SECRET, f"{server.url}/oauth/callback")
    mock.identity.add_user(tenant, LOGIN_USER, name="Bench", role="admin")


def login_codes(mock, tenant: str, count: int) -> list[str]:
    """Pick the user on the mock unified login page `count` times; return the codes."""
    codes = []
    with requests.Session() as session:
        for _ in range(count):
            answer = session.post(
                f"{mock.base_url}/unified-login/",
                data={"appId": APP_ID, "user": f"{tenant}/{LOGIN_USER}"},
                verify=mock.ca_bundle,
                allow_redirects=False,
                timeout=10,
            )
            codes.append(parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0])
    return codes


# ------------------------------------------------------------------------------ the rows


@dataclass(frozen=True)
class Row:
    """One measured path: its batch is built (signed) just before it is sent."""

    name: str
    build: Callable[[], list]
    clients: int
    expect: str = "000000"
    # A basic-interface row: the p99 target applies to it.
    basic: bool = False


def basic_rows(server: Deployment, n: int, clients: int, run: str) -> list[Row]:
    """Return the SaaS rows, against this server alone (no AK/SK: nothing waits for the mock)."""
    from app.security import encrypt_field

    ids = setup_instances(server, 120)
    basic = server.keys["KOOGALLERY_BASIC_KEY"]
    phone, email = encrypt_field(basic, "13800138000"), encrypt_field(basic, "buyer@example.com")

    def query(i, size=1):
        return {"activity": "queryInstance", "instanceId": ",".join(ids[i % 100 :][:size])}

    def new(prefix, order, i):
        return {
            "activity": "newInstance",
            "orderId": order,
            "orderLineId": "1",
            "businessId": f"{prefix}{run}{i}",
        }

    def v1_new(i):
        return {
            "customerId": "c",
            "orderId": f"V{run}{i}",
            "productId": "p",
            "businessId": f"v{run}{i}",
            "mobilePhone": phone,
            "email": email,
        }

    return [
        Row(
            "V2 queryInstance, 1 id",
            lambda: [v2(server, "/saas", query(i)) for i in range(n)],
            clients,
            basic=True,
        ),
        Row(
            "V2 queryInstance, 100 ids",
            lambda: [v2(server, "/saas", query(0, 100)) for _ in range(n // 10)],
            clients,
            basic=True,
        ),
        Row(
            "V2 newInstance, new orders",
            lambda: [v2(server, "/saas", new("b", f"N{run}{i}", i)) for i in range(n)],
            clients,
            basic=True,
        ),
        Row(
            "V2 newInstance, resends",
            lambda: [v2(server, "/saas", new("r", f"N{run}{i % 200}", i)) for i in range(n)],
            clients,
            basic=True,
        ),
        Row(
            "V1 newInstance, phone+e-mail",
            lambda: [v1(server, "/saas", "newInstance", v1_new(i)) for i in range(n)],
            clients,
            basic=True,
        ),
        Row(
            "V1 queryInstance",
            lambda: [
                v1(server, "/saas", "queryInstance", {"instanceId": ids[i % 100]}) for i in range(n)
            ],
            clients,
            basic=True,
        ),
    ]


def query_order_rows(server: Deployment, mock, n: int, clients: int, run: str) -> list[Row]:
    """Return V2 newInstance with AK/SK set: each new order waits for query order."""
    from app.marketplace.mock_api import mock_orders

    template = mock_orders()["MOCKPERIODYEARNEW"]

    def known_order(i):
        order_id = f"Q{run}{i}"
        order = copy.deepcopy(template)
        order["orderId"] = order_id
        order["orderLine"][0]["orderLineId"] = f"{order_id}-000001"
        mock.open_api.add_order(order)
        body = {"activity": "newInstance", "orderId": order_id}
        return v2(
            server,
            "/saas",
            {**body, "orderLineId": f"{order_id}-000001", "businessId": f"q{run}{i}"},
        )

    return [
        Row(
            "V2 newInstance, new, query order",
            lambda: [known_order(i) for i in range(n // 4)],
            clients,
        ),
    ]


def license_rows(server: Deployment, mock, n: int, clients: int, run: str) -> list[Row]:
    """Return the License rows: V1 getLicense and online activation's getLicenseAsync."""
    instance_id = setup_online_license(server, mock, run)
    now = datetime.now(UTC)
    effective = now.strftime("%Y-%m-%d %H:%M:%S z")
    expire = (now + timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S z")

    def v1_licence(i):
        fields = {"customerId": "c", "orderId": f"G{run}{i}", "productId": "p"}
        return {**fields, "businessId": f"g{run}{i}"}

    def device(i):
        return {
            "activity": "getLicenseAsync",
            "instanceId": instance_id,
            "effectiveTime": effective,
            "expireTime": expire,
            "eventId": f"E{run}{i}",
            "deviceFingerprint": f"device-{run}-{i}",
            "testFlag": "0",
        }

    return [
        Row(
            "License getLicense",
            lambda: [v1(server, "/license", "getLicense", v1_licence(i)) for i in range(n // 2)],
            clients,
            basic=True,
        ),
        Row(
            "License getLicenseAsync",
            lambda: [v2(server, "/license", device(i)) for i in range(n // 2)],
            clients,
            basic=True,
        ),
    ]


def joint_operation_rows(
    server: Deployment, mock, n: int, clients: int, run: str, sizes: tuple[int, ...]
) -> list[Row]:
    """Return the kit sync rows and the OAuth login."""
    tenant, login_tenant = f"T{run}", f"L{run}"
    must_succeed(
        kit(
            server,
            "tenantSync",
            {
                "tenantId": tenant,
                "tenantCode": "t",
                "name": "n",
                "domainName": mock.base_url,
                "flag": 1,
                "testFlag": 0,
            },
        )
    )
    setup_login(server, mock, login_tenant)
    users = [
        {"userName": f"u{i}", "name": f"User {i}", "orgCode": "1", "role": "user", "enable": "true"}
        for i in range(500)
    ]

    def single(i):
        department = {"orgCode": f"s{i}", "orgName": f"部门{i}", "parentCode": ""}
        return {"tenantId": tenant, **department, "flag": 1, "testFlag": 0}

    def whole_tree(size):
        orgs = [
            {"orgCode": str(i), "orgName": f"部门{i}", "parentCode": str(i // 10) if i else ""}
            for i in range(size)
        ]
        return [
            kit(server, "allOrgSync", {"tenantId": tenant, "orgInfoList": orgs, "testFlag": 0})
            for _ in range(3)
        ]

    def callbacks():
        return [
            ("GET", f"{server.url}/oauth/callback?code={code}&tenant={login_tenant}", {}, b"")
            for code in login_codes(mock, login_tenant, n // 10)
        ]

    authorise = {"tenantId": tenant, "appId": "a", "userList": users, "flag": 1, "testFlag": 0}
    return [
        Row(
            "kit singleOrgSync",
            lambda: [kit(server, "singleOrgSync", single(i)) for i in range(n // 2)],
            clients,
        ),
        Row(
            "kit authSync, 500 users",
            lambda: [kit(server, "authSync", dict(authorise)) for _ in range(10)],
            1,
        ),
        *(
            Row(f"kit allOrgSync, {size} departments", lambda size=size: whole_tree(size), 1)
            for size in sizes
        ),
        # The mock identity domain shares this process with the clients; 8 logins at a time.
        Row("OAuth callback (token + userinfo)", callbacks, 8, expect="HTTP 302"),
    ]


def measure(row: Row) -> dict:
    """Sign the row's batch now and send it; return its figures."""
    return drive(row.build(), row.clients, row.expect)


# ------------------------------------------------------------------------------ targets


def targets(
    results: dict[str, dict], rows: list[Row], steady_rss: float, sizes: tuple[int, ...]
) -> list[tuple]:
    """Return (target, measured, met) for each target of the performance issue."""
    base = results[BASELINE]["throughput"]

    def ratio(name):
        return results[name]["throughput"] / base

    checks = [
        ("V2 queryInstance (1 id) >= 0.60 x base", ratio("V2 queryInstance, 1 id"), 0.60),
        ("V2 newInstance (new orders) >= 0.35 x base", ratio("V2 newInstance, new orders"), 0.35),
    ]
    out = [(name, f"{value:.2f}", value >= floor) for name, value, floor in checks]
    for row in rows:
        if row.basic:
            p99 = results[row.name]["p99_ms"]
            out.append((f"{row.name}: p99 <= 50 ms", f"{p99:.0f} ms", p99 <= 50))
    auth = results["kit authSync, 500 users"]["p50_ms"]
    out.append(("kit authSync, 500 users <= 1 s", f"{auth:.0f} ms", auth <= 1000))
    least, most = min(sizes), max(sizes)
    small = results[f"kit allOrgSync, {least} departments"]["p50_ms"]
    large = results[f"kit allOrgSync, {most} departments"]["p50_ms"]
    out.append((f"kit allOrgSync, {most} departments <= 5 s", f"{large:.0f} ms", large <= 5000))
    # Time per department at the largest size over time per department at the smallest.
    growth = (large / most) / (small / least)
    out.append((f"allOrgSync {most} vs {least}: <= 1.3 x linear", f"{growth:.2f} x", growth <= 1.3))
    out.append(("steady RSS per worker <= 120 MB", f"{steady_rss:.0f} MB", steady_rss <= 120))
    return out


# ------------------------------------------------------------------------------ main


def restart_with(server: Deployment, settings: dict[str, str]) -> None:
    """Restart gunicorn with more settings (the job worker keeps running)."""
    server.environ.update(settings)
    server.web.terminate()
    server.web.wait(timeout=30)
    server.start_web()


def mock_settings(mock) -> dict[str, str]:
    """Return the settings that point the server at the mock marketplace."""
    from app.marketplace.mock_marketplace import env_settings

    lines = env_settings(mock, include_basic_key=False).splitlines()
    settings = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {**settings, "KOOGALLERY_APP_ID": APP_ID}


def run_all(server: Deployment, mock, args) -> tuple[dict, list[Row], dict]:
    """Measure the baseline and every row selected by --only; return figures, rows and memory."""
    n, clients, run = args.requests, args.clients, secrets.token_hex(3)
    baseline = Row(
        BASELINE, lambda: [("GET", f"{server.url}/livez", {}, b"")] * n, clients, "HTTP 200"
    )
    results = {BASELINE: measure(baseline)}
    rows: list[Row] = []
    memory = {}
    groups = (
        lambda: basic_rows(server, n, clients, run),
        lambda: query_order_rows(server, mock, n, clients, run),
        lambda: license_rows(server, mock, n, clients, run),
        lambda: joint_operation_rows(server, mock, n, clients, run, args.department_sizes),
    )
    for number, group in enumerate(groups):
        if number == 1:
            # The basic rows measure this server alone; from here on it calls the mock's open
            # API (query order) and identity domain, as a merchant with AK/SK set does.
            restart_with(server, mock_settings(mock))
        for row in group():
            if args.only and not any(part in row.name for part in args.only):
                continue
            rows.append(row)
            results[row.name] = measure(row)
            if row.basic:
                # After the basic rows, before the big kit bodies: memory of a worker at work.
                memory["steady_rss_mb_per_worker"] = worker_memory_mb(server, "VmRSS")
    memory["peak_rss_mb_per_worker"] = worker_memory_mb(server, "VmHWM")
    for kind in ("steady", "peak"):
        memory[f"{kind}_rss_mb"] = max(memory.get(f"{kind}_rss_mb_per_worker") or [0.0])
    return results, rows, memory


def print_table(args, results: dict, rows: list[Row], memory: dict) -> list[tuple]:
    base = results[BASELINE]["throughput"]
    print(
        f"{args.database}, {WORKERS} gunicorn workers, {args.clients} clients, "
        f"{os.cpu_count()} cores"
    )
    header = f"{'row':<36} {'req':>5} {'cl':>3} {'req/s':>8} {'× base':>7} {'p50 ms':>8}"
    print(f"{header} {'p99 ms':>8}  answers")
    for name, figures in results.items():
        print(
            f"{name:<36} {figures['requests']:>5} {figures['clients']:>3} "
            f"{figures['throughput']:>8.1f} {figures['throughput'] / base:>7.2f} "
            f"{figures['p50_ms']:>8.1f} {figures['p99_ms']:>8.1f}  {','.join(figures['codes'])}"
        )
    for kind, when in (("steady", "after the basic rows"), ("peak", "peak")):
        figures = ", ".join(f"{mb:.0f}" for mb in memory.get(f"{kind}_rss_mb_per_worker", []))
        print(f"RSS per gunicorn worker, {when}: {figures or '-'} MB")
    steady = memory["steady_rss_mb"]
    if args.only:
        return []
    checked = targets(results, rows, steady, args.department_sizes)
    print("\ntargets")
    for name, value, met in checked:
        print(f"  {'met    ' if met else 'NOT MET'}  {name:<52} {value}")
    return checked


def database_url(args, directory: str) -> str:
    """Return the database to measure: a fresh SQLite file, or PostgreSQL.

    Without --postgresql-url, a fresh `koogallery_bench` database is made in the local cluster
    the way `make reliability` makes its own (needs root, the `koogallery` role and pg_lsclusters).
    """
    if args.database == "sqlite":
        return f"sqlite:///{directory}/bench.db"
    if args.postgresql_url:
        return args.postgresql_url
    from reliability.run import fresh_postgres_database, postgres_cluster

    return fresh_postgres_database(postgres_cluster()[2], "koogallery_bench")


def main(argv: list[str] | None = None) -> int:
    from app.marketplace.mock_marketplace import MockMarketplace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgresql-url", default=os.environ.get("BENCH_POSTGRESQL_URL"))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--only", action="append", help="measure only rows whose name contains this (repeatable)"
    )
    parser.add_argument(
        "--department-sizes",
        type=lambda text: tuple(int(size) for size in text.split(",")),
        default=(1000, 5000, 20000),
        help="allOrgSync tree sizes, comma-separated (default 1000,5000,20000)",
    )
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="koogallery-bench-") as directory:
        database = database_url(args, directory)
        keys = fresh_keys()
        with MockMarketplace(usage_key=keys["KOOGALLERY_BASIC_KEY"]) as mock:
            server = Deployment(
                database, Path(directory), keys, web_workers=WORKERS, access_log=False
            )
            try:
                server.migrate()
                server.start()
                results, rows, memory = run_all(server, mock, args)
            finally:
                server.stop()
    checked = print_table(args, results, rows, memory)
    Path(args.json).write_text(
        json.dumps(
            {
                "database": args.database,
                "workers": WORKERS,
                "clients": args.clients,
                "cores": os.cpu_count(),
                "rows": results,
                **memory,
                "targets": [{"target": t, "measured": v, "met": m} for t, v, m in checked],
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
