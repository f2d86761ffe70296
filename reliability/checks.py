"""The invariants, checked against the database the server wrote to."""

from dataclasses import dataclass, field

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.models import Instance, InstanceHistory
from reliability.workload import Traffic


@dataclass
class Verdict:
    """What the database and the recorded answers say about one run."""

    lost: int = 0
    duplicated: int = 0
    wrong_state: int = 0
    non_json: int = 0
    http_5xx: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong_state or self.non_json)

    def note(self, message: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(message)


def database_rows(database_url: str) -> tuple[dict, dict, dict]:
    """Return the instances by purchase key, by order, and the 'created' count per instance."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            instances = session.scalars(select(Instance)).all()
            created = dict(
                session.execute(
                    select(InstanceHistory.instance_pk, func.count())
                    .where(InstanceHistory.event == "created")
                    .group_by(InstanceHistory.instance_pk)
                ).all()
            )
    finally:
        engine.dispose()
    by_key = {instance.purchase_key: instance for instance in instances}
    by_order: dict[str, list] = {}
    for instance in instances:
        by_order.setdefault(instance.order_id, []).append(instance)
    return by_key, by_order, created


def check(database_url: str, traffic: Traffic) -> Verdict:
    """Compare every acknowledged call with what the database holds."""
    verdict = Verdict()
    by_key, by_order, created = database_rows(database_url)
    for order in traffic.orders:
        check_order(order, by_key, by_order, created, verdict)
    for record in traffic.records:
        if not record.json_ok:
            verdict.non_json += 1
        if record.status is not None and record.status >= 500:
            verdict.http_5xx += 1
    if verdict.http_5xx:
        verdict.note(f"{verdict.http_5xx} answers with HTTP 5xx")
    return verdict


def check_order(order, by_key, by_order, created, verdict: Verdict) -> None:
    """Check one order: one instance, the acknowledged id, the expected state, one creation."""
    instance = by_key.get(order.purchase_key)
    if len(order.acknowledged_ids) > 1:
        verdict.duplicated += 1
        verdict.note(f"{order.order_id}: acknowledged ids {sorted(order.acknowledged_ids)}")
    if len(by_order.get(order.order_id, [])) > 1:
        verdict.duplicated += 1
        verdict.note(f"{order.order_id}: {len(by_order[order.order_id])} instances")
    if order.acknowledged_ids and (
        instance is None or instance.instance_id not in order.acknowledged_ids
    ):
        verdict.lost += 1
        verdict.note(f"{order.order_id}: acknowledged instance missing")
        return
    if instance is None:
        return
    if created.get(instance.id, 0) != 1:
        verdict.duplicated += 1
        verdict.note(f"{order.order_id}: {created.get(instance.id, 0)} 'created' history rows")
    if order.possible_states and instance.state not in order.possible_states:
        verdict.wrong_state += 1
        verdict.note(
            f"{order.order_id}: state {instance.state}, expected {sorted(order.possible_states)}"
        )
