"""`make bench`: throughput, latency and memory of the hot paths, as ratios to a baseline.

Starts the production configuration (gunicorn with the Dockerfile's worker count, a job worker,
a fresh migrated database), then for each row pre-signs a batch of calls just before sending
them (nonces unique, timestamps current) and drives them from separate client processes. The
baseline is `/livez`, which touches no database and no signature: the ceiling of this stack on
this machine, measured in the same run, so that ratios survive a noisy shared machine.

    python -m bench.run [--database sqlite|postgresql] [--requests 2000] [--clients 32]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from reliability.deployment import Deployment, fresh_keys

ROOT = Path(__file__).resolve().parent.parent
WORKERS = "2"  # WEB_CONCURRENCY in the Dockerfile


def worker_peak_rss_mb(server: Deployment) -> float:
    """Return the largest peak resident memory of the gunicorn workers (VmHWM), in MB."""
    peaks = []
    for pid in server.web_worker_pids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks or [0.0])


# ------------------------------------------------------------------------------ the client


def send_batch(requests_: list[tuple[str, str, dict, bytes]]) -> list[tuple[float, str]]:
    """Send pre-signed requests one after another; return (seconds, resultCode) per request."""
    import requests

    session = requests.Session()
    out = []
    for method, url, headers, body in requests_:
        started = time.perf_counter()
        response = session.request(method, url, headers=headers, data=body or None, timeout=30)
        seconds = time.perf_counter() - started
        try:
            code = response.json().get("resultCode", str(response.status_code))
        except ValueError:
            code = f"HTTP {response.status_code}"
        out.append((seconds, code))
    return out


def drive(batch: list, clients: int) -> dict:
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
        "throughput": len(timings) / elapsed,
        "p50_ms": statistics.median(timings) * 1000,
        "p99_ms": timings[min(len(timings) - 1, int(len(timings) * 0.99))] * 1000,
        "ok": sum(code == "000000" or code == "ok" for code in codes),
        "codes": sorted(set(codes)),
    }


def run_group(chunks: list[list]) -> list[tuple[float, str]]:
    with ThreadPoolExecutor(len(chunks)) as threads:
        return [item for result in threads.map(send_batch, chunks) for item in result]


# ------------------------------------------------------------------------------ the rows


def v2(server: Deployment, path: str, body: dict, key_name="KOOGALLERY_BASIC_KEY"):
    from app.marketplace.simulator import build_call

    call = build_call("v2", body.pop("activity"), server.url + path, body, server.keys[key_name])
    return (call.method, call.url, call.headers, call.body)


def v1(server: Deployment, path: str, activity: str, fields: dict):
    from app.marketplace.simulator import build_call

    call = build_call(
        "v1", activity, server.url + path, fields, server.keys["KOOGALLERY_BASIC_KEY"]
    )
    return (call.method, call.url, call.headers, call.body)


def kit(server: Deployment, interface: str, body: dict):
    from app.marketplace.simulator import build_call

    call = build_call(
        "kit-v2", interface, server.url + "/saas", body, server.keys["KOOGALLERY_KIT_KEY"]
    )
    return (call.method, call.url, call.headers, call.body)


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
    drive(batch, 8)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = send_batch(
            [v2(server, "/saas", {"activity": "queryInstance", "instanceId": ",".join(ids[:100])})]
        )
        if answer[0][1] == "000000":
            break
        time.sleep(0.5)
    return ids


def rows(server: Deployment, n: int, clients: int) -> list[tuple[str, dict]]:
    """Measure every row; return (name, figures)."""
    from app.security import encrypt_field

    results = []
    basic = server.keys["KOOGALLERY_BASIC_KEY"]
    base = [("GET", f"{server.url}/livez", {}, b"")] * n
    results.append(("baseline /livez", drive(base, clients)))
    ids = setup_instances(server, 120)
    results.append(
        (
            "V2 queryInstance, 1 id",
            drive(
                [
                    v2(server, "/saas", {"activity": "queryInstance", "instanceId": ids[i % 100]})
                    for i in range(n)
                ],
                clients,
            ),
        )
    )
    results.append(
        (
            "V2 queryInstance, 100 ids",
            drive(
                [
                    v2(
                        server,
                        "/saas",
                        {"activity": "queryInstance", "instanceId": ",".join(ids[:100])},
                    )
                    for _ in range(n // 10)
                ],
                clients,
            ),
        )
    )
    run = secrets.token_hex(3)
    results.append(
        (
            "V2 newInstance, new orders",
            drive(
                [
                    v2(
                        server,
                        "/saas",
                        {
                            "activity": "newInstance",
                            "orderId": f"N{run}{i}",
                            "orderLineId": "1",
                            "businessId": f"b{run}{i}",
                        },
                    )
                    for i in range(n)
                ],
                clients,
            ),
        )
    )
    results.append(
        (
            "V2 newInstance, resends",
            drive(
                [
                    v2(
                        server,
                        "/saas",
                        {
                            "activity": "newInstance",
                            "orderId": f"N{run}{i % 200}",
                            "orderLineId": "1",
                            "businessId": f"r{run}{i}",
                        },
                    )
                    for i in range(n)
                ],
                clients,
            ),
        )
    )
    phone, email = encrypt_field(basic, "13800138000"), encrypt_field(basic, "buyer@example.com")
    results.append(
        (
            "V1 newInstance, phone+e-mail",
            drive(
                [
                    v1(
                        server,
                        "/saas",
                        "newInstance",
                        {
                            "customerId": "c",
                            "orderId": f"V{run}{i}",
                            "productId": "p",
                            "businessId": f"v{run}{i}",
                            "mobilePhone": phone,
                            "email": email,
                        },
                    )
                    for i in range(n)
                ],
                clients,
            ),
        )
    )
    results.append(
        (
            "V1 queryInstance",
            drive(
                [
                    v1(server, "/saas", "queryInstance", {"instanceId": ids[i % 100]})
                    for i in range(n)
                ],
                clients,
            ),
        )
    )
    results.append(
        (
            "License getLicense",
            drive(
                [
                    v1(
                        server,
                        "/license",
                        "getLicense",
                        {
                            "customerId": "c",
                            "orderId": f"G{run}{i}",
                            "productId": "p",
                            "businessId": f"g{run}{i}",
                        },
                    )
                    for i in range(n // 2)
                ],
                clients,
            ),
        )
    )
    tenant = f"T{run}"
    send_batch(
        [
            kit(
                server,
                "tenantSync",
                {
                    "tenantId": tenant,
                    "tenantCode": "t",
                    "name": "n",
                    "domainName": "https://t.example",
                    "flag": 1,
                    "testFlag": 0,
                },
            )
        ]
    )
    users = [
        {"userName": f"u{i}", "name": f"User {i}", "orgCode": "1", "role": "user", "enable": "true"}
        for i in range(500)
    ]
    results.append(
        (
            "kit authSync, 500 users",
            drive(
                [
                    kit(
                        server,
                        "authSync",
                        {
                            "tenantId": tenant,
                            "appId": "a",
                            "userList": users,
                            "flag": 1,
                            "testFlag": 0,
                        },
                    )
                    for _ in range(10)
                ],
                1,
            ),
        )
    )
    for size in (1000, 5000, 20000):
        orgs = [
            {"orgCode": str(i), "orgName": f"部门{i}", "parentCode": str(i // 10) if i else ""}
            for i in range(size)
        ]
        results.append(
            (
                f"kit allOrgSync, {size} departments",
                drive(
                    [
                        kit(
                            server,
                            "allOrgSync",
                            {"tenantId": tenant, "orgInfoList": orgs, "testFlag": 0},
                        )
                        for _ in range(3)
                    ],
                    1,
                ),
            )
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgresql-url", default=os.environ.get("BENCH_POSTGRESQL_URL"))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="koogallery-bench-") as directory:
        database = (
            f"sqlite:///{directory}/bench.db" if args.database == "sqlite" else args.postgresql_url
        )
        if not database:
            raise SystemExit("--postgresql-url (or BENCH_POSTGRESQL_URL) is needed")
        server = Deployment(
            database, Path(directory), fresh_keys(), web_workers=WORKERS, access_log=False
        )
        try:
            server.migrate()
            server.start()
            measured = rows(server, args.requests, args.clients)
            rss = worker_peak_rss_mb(server)
        finally:
            server.stop()
    baseline = measured[0][1]["throughput"]
    cores = os.cpu_count()
    print(f"{args.database}, {WORKERS} gunicorn workers, {args.clients} clients, {cores} cores")
    print(f"{'row':<34} {'req':>6} {'req/s':>8} {'× base':>7} {'p50 ms':>8} {'p99 ms':>8}  answers")
    for name, figures in measured:
        print(
            f"{name:<34} {figures['requests']:>6} {figures['throughput']:>8.1f} "
            f"{figures['throughput'] / baseline:>7.2f} {figures['p50_ms']:>8.1f} "
            f"{figures['p99_ms']:>8.1f}  {','.join(figures['codes'])}"
        )
    print(f"peak RSS of a gunicorn worker: {rss:.0f} MB")
    Path(args.json).write_text(
        json.dumps(
            {"database": args.database, "rows": dict(measured), "worker_peak_rss_mb": rss}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
