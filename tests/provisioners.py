"""Provisioners for tests, named in KOOGALLERY_PROVISIONER like a merchant's own."""

import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

from app.licensing import LATER, LicenseIssuer
from app.provisioning import IN_PROGRESS, AppInfo, Provisioner, TenantAccountProvisioner, Usage

# What the hooks were called with, for assertions.
calls: list[tuple[str, object]] = []


class RecordingProvisioner(TenantAccountProvisioner):
    """The default provisioner, remembering every call and its arguments."""

    def provision(self, instance, purchase):
        calls.append(("provision", purchase))
        return super().provision(instance, purchase)

    def renew(self, instance, renewal):
        calls.append(("renew", renewal))

    def freeze(self, instance):
        calls.append(("freeze", instance.instance_id))
        super().freeze(instance)

    def unfreeze(self, instance):
        calls.append(("unfreeze", instance.instance_id))
        super().unfreeze(instance)

    def upgrade(self, instance, upgrade):
        calls.append(("upgrade", upgrade))
        super().upgrade(instance, upgrade)

    def release(self, instance):
        calls.append(("release", instance.instance_id))
        super().release(instance)


class SlowProvisioner(Provisioner):
    """Answers "in progress"; the test completes the instance later."""

    def provision(self, instance, purchase):
        return IN_PROGRESS

    def describe(self, instance):
        return AppInfo(front_end_url="https://slow.example.com/")


class FailingOnceProvisioner(TenantAccountProvisioner):
    """Fails the first attempt of every instance, as a flaky backend would."""

    failed: ClassVar[set[str]] = set()

    def provision(self, instance, purchase):
        if instance.instance_id not in self.failed:
            self.failed.add(instance.instance_id)
            raise ConnectionError("backend unavailable")
        return super().provision(instance, purchase)


class RefusingProvisioner(TenantAccountProvisioner):
    """Refuses every specification change at renewal."""

    def allow_change(self, instance, product_info):
        return False


class MeteredProvisioner(TenantAccountProvisioner):
    """Reports usage, as an on-demand product's provisioner would."""

    def usage(self, instance):
        return [
            Usage(
                usage_value=Decimal("12.34567"),
                statistical_time=datetime(2026, 11, 29, 8, 0, 0, 123000, tzinfo=UTC),
                dashboard_url="https://isv.example.com/usage",
            )
        ]


class LongNameProvisioner(TenantAccountProvisioner):
    """Answers a user name too long to fit 128 characters once encrypted."""

    def describe(self, instance):
        return replace(super().describe(instance), user_name="u" * 100)


class LaterIssuer(LicenseIssuer):
    """Issues nothing at once: the licence is delivered later by upload."""

    def issue(self, request):
        return LATER


class AlwaysFailingProvisioner(TenantAccountProvisioner):
    """A backend that is down: every attempt fails."""

    def provision(self, instance, purchase):
        raise ConnectionError("provisioning backend unreachable")


class SleepyProvisioner(TenantAccountProvisioner):
    """Takes KOOGALLERY_TEST_PROVISION_SECONDS (default 8) before creating the account."""

    def provision(self, instance, purchase):
        # Slow work first, database writes after: a long transaction would lock SQLite.
        time.sleep(float(os.environ.get("KOOGALLERY_TEST_PROVISION_SECONDS", "8")))
        calls.append(("provision", purchase))
        return super().provision(instance, purchase)
