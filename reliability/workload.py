"""The marketplace's traffic: freshly signed calls from many threads, every answer recorded.

Each order belongs to one thread, which sends its transitions one after another and retries
each until it is acknowledged, so that "the last acknowledged transition" is well defined. The
same threads meanwhile resend other threads' purchases (new businessId, sometimes at the same
moment as the owner) and query instances over V2 and V1.
"""

from __future__ import annotations

import collections
import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests

from app.marketplace.simulator import Call, build_call, fresh_id
from app.models import InstanceState

CLIENT_TIMEOUT = 10.0
# How long an owner keeps resending one step; long enough to outlast a gunicorn restart.
STEP_DEADLINE = 60.0
# Answers meaning "try again": in progress, internal error, or nothing at all.
RETRY_CODES = {"000004", "000005", None}
TARGET_STATE = {
    "FREEZE": InstanceState.FROZEN,
    "UNFREEZE": InstanceState.ACTIVE,
    "release": InstanceState.RELEASED,
}


@dataclass
class Record:
    """One call and what came back."""

    activity: str
    sent_at: float
    seconds: float
    status: int | None
    code: str | None
    json_ok: bool
    error: str | None


@dataclass
class Order:
    """One purchase, its acknowledged instanceIds and the state its owner last had confirmed."""

    order_id: str
    line_id: str
    acknowledged_ids: set[str] = field(default_factory=set)
    # The states the instance may be in: one after an acknowledged transition, two when the
    # owner gave up on a step whose answer never came (it may or may not have taken effect).
    possible_states: set[str] = field(default_factory=set)

    @property
    def purchase_key(self) -> str:
        return f"v2:{self.order_id}:{self.line_id}"


class Traffic:
    """Shared state of the clients: the orders, every answer, and a sample of sent calls."""

    def __init__(self, base_url: str, keys: dict[str, str]):
        self.url = f"{base_url}/saas"
        self.key = keys["KOOGALLERY_BASIC_KEY"]
        self.lock = threading.Lock()
        self.orders: list[Order] = []
        self.records: list[Record] = []
        self.sent_calls: collections.deque = collections.deque(maxlen=400)
        self.local = threading.local()

    # -------------------------------------------------------------------------- sending

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def call(self, protocol: str, activity: str, fields: dict, **build) -> dict | None:
        """Sign a call just before sending it, send it, record the answer; return its JSON."""
        call = build_call(protocol, activity, self.url, fields, self.key, **build)
        return self.send(call, activity)

    def send(self, call: Call, activity: str) -> dict | None:
        """Send a built call as is and record the answer."""
        started = time.monotonic()
        status = body = error = None
        try:
            response = self.session().request(
                call.method,
                call.url,
                headers=call.headers,
                data=call.body or None,
                timeout=CLIENT_TIMEOUT,
                allow_redirects=False,
            )
            status = response.status_code
            body = _json_object(response.content)
        except requests.RequestException as exc:
            error = type(exc).__name__
            # A dead keep-alive connection (gunicorn restarted) must not poison the next call.
            self.local.session = requests.Session()
        record = Record(
            activity,
            started,
            time.monotonic() - started,
            status,
            str(body.get("resultCode")) if body else None,
            body is not None or status is None,
            error,
        )
        with self.lock:
            self.records.append(record)
            # Only calls the server processed have their nonce stored: one refused with 000005
            # (database down) left no trace, so its bytes would be a first delivery, not a replay.
            if call.protocol == "v2" and record.code not in (None, "000005"):
                self.sent_calls.append((started, call))
        return body

    # -------------------------------------------------------------------------- one order

    def run_order(self, random_: random.Random, hammer_calls: int) -> None:
        """Buy, wait until ready, send a few transitions; hammer other orders in between."""
        order_id = fresh_id("RL")
        order = Order(order_id, f"{order_id}-000001")
        with self.lock:
            self.orders.append(order)
        instance_id = self.buy(order)
        if instance_id is None or not self.wait_until_ready(instance_id):
            return
        order.possible_states = {InstanceState.ACTIVE}
        steps = [
            random_.choice(["FREEZE", "UNFREEZE", "refresh"]) for _ in range(random_.randint(2, 5))
        ]
        if random_.random() < 0.3:
            steps.append("release")
        for step in steps:
            self.hammer(random_, hammer_calls)
            if not self.transition(order, instance_id, step):
                return

    def buy(self, order: Order) -> str | None:
        """Send newInstance (with a concurrent twin) until acknowledged; return the instanceId."""
        twin = threading.Thread(target=self.resend_purchase, args=(order,))
        twin.start()
        deadline = time.monotonic() + STEP_DEADLINE
        answer = None
        while time.monotonic() < deadline:
            answer = self.resend_purchase(order)
            if answer and answer.get("resultCode") == "000000":
                break
            time.sleep(0.3)
        twin.join()
        if not answer or answer.get("resultCode") != "000000":
            return None
        return answer.get("instanceId")

    def resend_purchase(self, order: Order) -> dict | None:
        """Send the order's newInstance with a new businessId, as the marketplace resends."""
        fields = {
            "orderId": order.order_id,
            "orderLineId": order.line_id,
            "businessId": fresh_id("B"),
            "testFlag": "1",
        }
        answer = self.call("v2", "newInstance", fields)
        if answer and answer.get("resultCode") == "000000":
            with self.lock:
                order.acknowledged_ids.add(answer.get("instanceId"))
        return answer

    def wait_until_ready(self, instance_id: str) -> bool:
        """Poll queryInstance until the worker has provisioned the instance."""
        deadline = time.monotonic() + STEP_DEADLINE
        while time.monotonic() < deadline:
            answer = self.call("v2", "queryInstance", {"instanceId": instance_id, "testFlag": "1"})
            if answer and answer.get("resultCode") == "000000":
                return True
            time.sleep(0.3)
        return False

    def transition(self, order: Order, instance_id: str, step: str) -> bool:
        """Send one step until acknowledged; False (and both states possible) if it never is."""
        activity, fields = step_call(instance_id, step)
        deadline = time.monotonic() + STEP_DEADLINE
        while time.monotonic() < deadline:
            answer = self.call("v2", activity, fields)
            code = answer.get("resultCode") if answer else None
            if code == "000000":
                if step in TARGET_STATE:
                    order.possible_states = {TARGET_STATE[step]}
                return True
            if code not in RETRY_CODES:
                break
            time.sleep(0.3)
        if step in TARGET_STATE:
            order.possible_states = order.possible_states | {TARGET_STATE[step]}
        return False

    # -------------------------------------------------------------------------- other orders

    def hammer(self, random_: random.Random, calls: int) -> None:
        """Resend or query other threads' orders, over V2 and V1."""
        for _ in range(calls):
            with self.lock:
                order = random_.choice(self.orders[-200:])
                known = sorted(order.acknowledged_ids)
            kind = random_.random()
            if kind < 0.4:
                self.resend_purchase(order)
            elif known and kind < 0.8:
                self.call("v2", "queryInstance", {"instanceId": known[0], "testFlag": "1"})
            elif known:
                self.call("v1", "queryInstance", {"instanceId": known[0], "testFlag": "1"})


def step_call(instance_id: str, step: str) -> tuple[str, dict]:
    """Return the activity and fields of one owner step."""
    common = {"instanceId": instance_id, "testFlag": "1"}
    if step in ("FREEZE", "UNFREEZE"):
        return "updateInstanceStatus", {**common, "status": step}
    if step == "release":
        return "releaseInstance", common
    renewal = fresh_id("RN")
    expire = (datetime.now(UTC) + timedelta(days=400)).strftime("%Y%m%d%H%M%S")
    return "refreshInstance", {
        **common,
        "scene": "RENEWAL",
        "orderId": renewal,
        "orderLineId": f"{renewal}-000001",
        "expireTime": expire,
    }


def _json_object(content: bytes) -> dict | None:
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def run_load(traffic: Traffic, calls: int, threads: int, keep_going=lambda: False) -> float:
    """Run owners on `threads` threads until `calls` were sent and keep_going() is False."""
    first = len(traffic.records)
    started = time.monotonic()

    def owner(seed: int) -> None:
        random_ = random.Random(seed)  # noqa: S311 - workload shape, not security
        while len(traffic.records) - first < calls or keep_going():
            traffic.run_order(random_, hammer_calls=2)

    workers = [threading.Thread(target=owner, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.monotonic() - started
