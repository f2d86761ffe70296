"""The four phases: load, crashes, database down, and replayed or badly timed calls."""

import random
import subprocess
import threading
import time
from dataclasses import dataclass

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.marketplace.simulator import fresh_id, now_ms
from app.models import Instance, InstanceHistory
from reliability.deployment import Deployment
from reliability.workload import Traffic, run_load

# Answers during an outage must come within the marketplace's 5 s budget.
BUDGET_SECONDS = 5.0
CLOCK_SKEW_MS = 61_000


@dataclass
class Profile:
    """How much each phase does."""

    calls: int
    threads: int
    crash_calls: int
    crashes: int
    master_kills: int
    outage_seconds: float
    replays: int


PROFILES = {
    "short": Profile(2000, 32, 600, 2, 1, 6.0, 30),
    "full": Profile(20000, 40, 4000, 6, 2, 10.0, 200),
}


def load_phase(traffic: Traffic, profile: Profile) -> str:
    """Send the profile's calls; return the 'load held' cell."""
    first = len(traffic.records)
    seconds = run_load(traffic, profile.calls, profile.threads)
    records = traffic.records[first:]
    answered = sum(1 for record in records if record.status is not None)
    slowest = max((record.seconds for record in records), default=0.0)
    return (
        f"{answered}/{len(records)} answered, {len(records) / seconds:.0f}/s, "
        f"{profile.threads} threads, max {slowest:.1f}s"
    )


def crash_phase(traffic: Traffic, deployment: Deployment, profile: Profile) -> tuple[int, list]:
    """Kill gunicorn workers and the master under load; return (crashes, failures)."""
    random_ = random.Random()  # noqa: S311 - timing of faults, not security
    done = threading.Event()
    kills: list[str] = []
    masters = set(random_.sample(range(profile.crashes), profile.master_kills))

    def chaos() -> None:
        try:
            for number in range(profile.crashes):
                time.sleep(random_.uniform(2.0, 5.0))
                if number in masters:
                    seconds = deployment.kill_master_and_restart()
                    kills.append(f"master (back in {seconds:.1f}s)")
                else:
                    pids = deployment.web_worker_pids()
                    if pids:
                        deployment.kill_web_worker(random_.choice(pids))
                        kills.append("worker")
        finally:
            done.set()

    killer = threading.Thread(target=chaos)
    killer.start()
    run_load(
        traffic, profile.crash_calls, profile.threads // 2, keep_going=lambda: not done.is_set()
    )
    killer.join()
    return len(kills), resend_after_restart(traffic)


def resend_after_restart(traffic: Traffic, sample: int = 40) -> list[str]:
    """Resend acknowledged purchases: each must come back with the same instanceId."""
    failures = []
    acknowledged = [order for order in traffic.orders if len(order.acknowledged_ids) == 1]
    for order in random.sample(acknowledged, min(sample, len(acknowledged))):
        (expected,) = order.acknowledged_ids
        traffic.resend_purchase(order)
        if order.acknowledged_ids != {expected}:
            failures.append(f"{order.order_id}: resend after restart gave another instanceId")
    return failures


def outage_phase(
    traffic: Traffic, profile: Profile, cluster: tuple[str, str]
) -> tuple[str, list[str]]:
    """Stop PostgreSQL under load, then start it; return the cell text and failures."""
    first = len(traffic.records)
    stop = threading.Event()
    timeline: dict[str, float] = {}

    def outage() -> None:
        time.sleep(2.0)
        timeline["down"] = time.monotonic()
        subprocess.run(["pg_ctlcluster", *cluster, "stop", "-m", "fast"], check=True)  # noqa: S603,S607
        time.sleep(profile.outage_seconds)
        timeline["up"] = time.monotonic()
        subprocess.run(["pg_ctlcluster", *cluster, "start"], check=True)  # noqa: S603,S607
        timeline["recovered"] = wait_for_success(traffic)
        stop.set()

    switch = threading.Thread(target=outage)
    switch.start()
    run_load(traffic, 0, profile.threads // 4, keep_going=lambda: not stop.is_set())
    switch.join()
    return judge_outage(traffic.records[first:], timeline)


def wait_for_success(traffic: Traffic, seconds: float = 60.0) -> float:
    """Wait until a fresh call succeeds again, without restarting anything; return when."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = traffic.call("v2", "queryInstance", {"instanceId": "none", "testFlag": "1"})
        # 000003 (not found) needs the database: the service is back.
        if answer and answer.get("resultCode") in ("000000", "000003"):
            return time.monotonic()
        time.sleep(0.5)
    return float("inf")


def judge_outage(records: list, timeline: dict) -> tuple[str, list[str]]:
    """Check the answers sent while the database was down: 000005 in time, never a 5xx."""
    failures = []
    down = [r for r in records if timeline["down"] + 0.5 <= r.sent_at < timeline["up"]]
    codes: dict[str, int] = {}
    for record in down:
        outcome = record.code or record.error or "?"
        codes[outcome] = codes.get(outcome, 0) + 1
        if record.status is not None and record.seconds > BUDGET_SECONDS:
            failures.append(f"answer after {record.seconds:.1f}s while the database was down")
        if record.status is not None and (record.status >= 500 or record.code != "000005"):
            failures.append(f"{record.activity} answered {record.status}/{record.code} while down")
    recovered = timeline["recovered"] - timeline["up"]
    if recovered == float("inf"):
        failures.append("the service did not recover after PostgreSQL came back")
    summary = ", ".join(f"{code}×{count}" for code, count in sorted(codes.items()))
    return (
        f"db down {timeline['up'] - timeline['down']:.0f}s: {summary}; back in {recovered:.1f}s",
        failures,
    )


# ------------------------------------------------------------------------------ bad inputs


def counts(database_url: str) -> tuple[int, int]:
    """Return the number of instances and history rows."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            instances = session.scalar(select(func.count()).select_from(Instance))
            history = session.scalar(select(func.count()).select_from(InstanceHistory))
    finally:
        engine.dispose()
    return instances, history


def probe_phase(traffic: Traffic, database_url: str, profile: Profile) -> tuple[int, list[str]]:
    """Replay captured calls, send badly timed ones and replay V1 GETs; return (tried, failures)."""
    failures: list[str] = []
    v1_url = v1_purchase(traffic, failures)
    before = counts(database_url)
    tried = replay_v2(traffic, profile.replays, failures)
    tried += skewed_clock(traffic, failures)
    tried += replay_v1(traffic, v1_url, failures)
    if counts(database_url) != before:
        failures.append(
            f"rejected or replayed calls changed the database: {before} → {counts(database_url)}"
        )
    return tried, failures


def replay_v2(traffic: Traffic, sample: int, failures: list[str]) -> int:
    """Replay recent V2 calls byte for byte: each must be refused with 000001."""
    fresh = [call for sent_at, call in traffic.sent_calls if time.monotonic() - sent_at < 40]
    chosen = random.sample(fresh, min(sample, len(fresh)))
    for call in chosen:
        answer = traffic.send(call, f"replayed {call.activity}")
        if not answer or answer.get("resultCode") != "000001":
            failures.append(
                f"replayed {call.activity} answered {answer and answer.get('resultCode')}"
            )
    return len(chosen)


def skewed_clock(traffic: Traffic, failures: list[str]) -> int:
    """Send calls signed 61 s in the past and in the future: each must be refused with 000002."""
    tried = 0
    for order in traffic.orders[:5]:
        for skew in (-CLOCK_SKEW_MS, CLOCK_SKEW_MS):
            for activity, fields in (
                (
                    "newInstance",
                    {"orderId": fresh_id("SK"), "orderLineId": "1", "businessId": fresh_id("B")},
                ),
                (
                    "updateInstanceStatus",
                    {"instanceId": next(iter(order.acknowledged_ids), "x"), "status": "FREEZE"},
                ),
            ):
                answer = traffic.call("v2", activity, fields, timestamp_ms=now_ms() + skew)
                tried += 1
                if not answer or answer.get("resultCode") != "000002":
                    code = answer and answer.get("resultCode")
                    failures.append(f"{activity} at {skew / 1000:+.0f}s answered {code}")
    return tried


def v1_purchase(traffic: Traffic, failures: list[str]) -> str | None:
    """Buy over V1 until ready and freeze it (expireInstance); return that call's URL."""
    order = fresh_id("V1")
    purchase = {
        "customerId": "68cbc86abc2018ab880d92f36422fa0e",
        "orderId": order,
        "productId": "00301-666666-0--0",
        "skuCode": "basic",
        "chargingMode": "1",
        "testFlag": "1",
    }
    instance_id = None
    deadline = time.monotonic() + 60
    # V1 is synchronous: 000004 until provisioned, and the marketplace resends.
    while instance_id is None and time.monotonic() < deadline:
        answer = traffic.call("v1", "newInstance", {**purchase, "businessId": fresh_id("B")})
        if answer and answer.get("resultCode") == "000000":
            instance_id = answer["instanceId"]
        time.sleep(0.5)
    if instance_id is None:
        failures.append("V1 purchase never completed")
        return None
    from app.marketplace.simulator import build_call

    call = build_call(
        "v1",
        "expireInstance",
        traffic.url,
        {"instanceId": instance_id, "orderId": order, "testFlag": "1"},
        traffic.key,
    )
    answer = traffic.send(call, "expireInstance")
    if not answer or answer.get("resultCode") != "000000":
        failures.append("V1 expireInstance was not acknowledged")
        return None
    return call.url


def replay_v1(traffic: Traffic, url: str | None, failures: list[str], times: int = 5) -> int:
    """Replay an acknowledged V1 GET: the same answer each time (the counts are checked after)."""
    if url is None:
        return 0
    from app.marketplace.simulator import Call

    call = Call("v1", "expireInstance", "GET", url, {}, b"", {}, traffic.key)
    for _ in range(times):
        answer = traffic.send(call, "replayed V1 expireInstance")
        if not answer or answer.get("resultCode") != "000000":
            failures.append(f"replayed V1 GET answered {answer and answer.get('resultCode')}")
    return times
