"""The provisioning hook: what "provision, renew, freeze, release" mean for your product.

Replace the default by naming your own class in KOOGALLERY_PROVISIONER=package.module:Class. It
is created once per process with the app's config, and called inside the marketplace call's
database transaction: rows you add through `db.session` are committed together with the instance
state, and an exception rolls them back and answers `000005`.

Every method must be idempotent: the marketplace resends, and after a crash a call may run again.
`instance.test` is True for the seller console's debug calls and daily probes (testFlag=1):
handle them like real ones, but create nothing billable.
"""

import importlib
import secrets
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from flask import current_app

from app.extensions import db
from app.models import Instance, TenantAccount
from app.sealing import seal, unseal


@dataclass(frozen=True)
class Purchase:
    """What the marketplace told us about a new purchase (newInstance)."""

    instance_id: str
    protocol: str
    order_id: str
    order_line_id: str | None = None
    business_id: str | None = None
    product_id: str | None = None
    sku_code: str | None = None
    customer_id: str | None = None
    customer_name: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    # Decrypted in memory only; never stored or logged.
    mobile_phone: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)
    charging_mode: str | None = None
    period_type: str | None = None
    period_number: int | None = None
    expire_time: str | None = None
    trial: bool = False
    test: bool = False
    order_amount: str | None = None
    spec: Mapping[str, str] = field(default_factory=dict)
    # saasExtendParams / extendParams: the parameters defined when the product was listed.
    extend_params: Mapping[str, str] = field(default_factory=dict, repr=False)
    # The query-order answer (V2, when AK/SK are configured); None otherwise.
    order_details: Mapping | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Renewal:
    """A renewal, trial-to-formal conversion or cancelled renewal period (refreshInstance)."""

    order_id: str
    expire_time: str
    order_line_id: str | None = None
    product_id: str | None = None
    scene: str = "RENEWAL"
    trial_to_formal: bool = False
    period_type: str | None = None
    period_number: int | None = None
    test: bool = False


@dataclass(frozen=True)
class Upgrade:
    """A change of specification (upgrade / upgradeInstance)."""

    order_id: str
    order_line_id: str | None = None
    product_id: str | None = None
    sku_code: str | None = None
    spec: Mapping[str, str] = field(default_factory=dict)
    extend_params: Mapping[str, str] = field(default_factory=dict, repr=False)
    order_details: Mapping | None = field(default=None, repr=False)
    test: bool = False


@dataclass(frozen=True)
class AppInfo:
    """What the buyer needs to use the instance; userName and password are encrypted on the wire."""

    front_end_url: str
    admin_url: str | None = None
    user_name: str | None = None
    password: str | None = field(default=None, repr=False)
    memo: str | None = None


@dataclass(frozen=True)
class Usage:
    """One usage figure for queryInstance's usageInfo (on-demand and package products)."""

    usage_value: Decimal
    statistical_time: datetime
    related_instance_id: str | None = None
    dashboard_url: str | None = None


class InProgress:
    """Returned by provision() when the resource will be ready later.

    The instance stays `provisioning` and queryInstance answers `000004` until your backend calls
    `app.saas.service.complete_provisioning(instance_id)` (or runs
    `flask --app wsgi market complete-provisioning INSTANCE_ID`).
    """


IN_PROGRESS = InProgress()


class Provisioner:
    """The interface; subclass it and override what your product needs."""

    def __init__(self, config: Mapping):
        self.config = config

    def provision(self, instance: Instance, purchase: Purchase) -> AppInfo | InProgress:
        """Create the customer's resource and return how to reach it."""
        raise NotImplementedError

    def describe(self, instance: Instance) -> AppInfo:
        """Return the appInfo of an existing instance (resends, queryInstance)."""
        raise NotImplementedError

    def describe_many(self, instances: list[Instance]) -> list[AppInfo]:
        """Describe several instances (queryInstance asks for up to 100), in the same order."""
        # Override it when describe() needs a query per instance: fetch them all at once.
        return [self.describe(instance) for instance in instances]

    def usage(self, instance: Instance) -> list[Usage] | None:
        """Return usage for queryInstance's usageInfo, or None for products without usage."""
        return None

    def renew(self, instance: Instance, renewal: Renewal) -> None:
        """Extend (or shorten) the resource's validity to renewal.expire_time."""

    def freeze(self, instance: Instance) -> None:
        """Stop the buyer from using the resource, keeping its data."""

    def unfreeze(self, instance: Instance) -> None:
        """Give the buyer access again."""

    def upgrade(self, instance: Instance, upgrade: Upgrade) -> None:
        """Apply the new specification."""

    def release(self, instance: Instance) -> None:
        """Delete the resource; the marketplace will not call again for it."""

    def allow_change(self, instance: Instance, product_info: Mapping) -> bool:
        """Tell whether a specification change at renewal is acceptable (changeInstanceCheck)."""
        return True


PASSWORD_ALPHABETS = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "!@#$%^&*")


def generate_password(length: int = 20) -> str:
    """Return a random password with every character class that password rules tend to demand."""
    alphabet = "".join(PASSWORD_ALPHABETS)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(char in chars for char in password) for chars in PASSWORD_ALPHABETS):
            return password


class TenantAccountProvisioner(Provisioner):
    """The default: one admin account per instance, kept in the tenant_account table."""

    def provision(self, instance: Instance, purchase: Purchase) -> AppInfo:
        """Create the instance's admin account with a strong random password."""
        account = TenantAccount(
            instance_pk=instance.id,
            admin_user=f"admin-{secrets.token_hex(4)}",
            admin_password_encrypted=seal(generate_password()),
            plan=purchase.sku_code,
        )
        db.session.add(account)
        db.session.flush()
        return self.describe(instance)

    def describe(self, instance: Instance) -> AppInfo:
        """Return the URLs from the config and the account's initial credentials."""
        account = db.session.scalars(
            db.select(TenantAccount).where(TenantAccount.instance_pk == instance.id)
        ).one()
        return self._app_info(instance, account)

    def describe_many(self, instances: list[Instance]) -> list[AppInfo]:
        """Describe instances with one query for all their accounts."""
        query = db.select(TenantAccount).where(
            TenantAccount.instance_pk.in_([instance.id for instance in instances])
        )
        accounts = {account.instance_pk: account for account in db.session.scalars(query)}
        return [self._app_info(instance, accounts[instance.id]) for instance in instances]

    def _app_info(self, instance: Instance, account: TenantAccount) -> AppInfo:
        memo = "测试实例：未创建计费资源。" if instance.test else None
        return AppInfo(
            front_end_url=self.config["KOOGALLERY_FRONTEND_URL"],
            admin_url=self.config.get("KOOGALLERY_ADMIN_URL"),
            user_name=account.admin_user,
            password=unseal(account.admin_password_encrypted),
            memo=memo,
        )

    def upgrade(self, instance: Instance, upgrade: Upgrade) -> None:
        """Record the new plan on the account."""
        account = self._account(instance)
        account.plan = upgrade.sku_code or account.plan

    def freeze(self, instance: Instance) -> None:
        """Disable the account."""
        self._account(instance).active = False

    def unfreeze(self, instance: Instance) -> None:
        """Enable the account."""
        self._account(instance).active = True

    def release(self, instance: Instance) -> None:
        """Disable the account for good; the row stays as a record of what was sold."""
        account = self._account(instance, required=False)
        if account is not None:
            account.active = False

    def _account(self, instance: Instance, required: bool = True) -> TenantAccount | None:
        query = db.select(TenantAccount).where(TenantAccount.instance_pk == instance.id)
        account = db.session.scalars(query).first()
        if account is None and required:
            raise LookupError(f"instance {instance.instance_id} has no tenant account")
        return account


class SlowDemoProvisioner(TenantAccountProvisioner):
    """The default, after 8 seconds of pretend work: for `make demo-slow`.

    It shows the point of the job queue: the marketplace's 5-second call is answered at once,
    and queryInstance reports 000004 until the work is done.
    """

    seconds = 8.0

    def provision(self, instance: Instance, purchase: Purchase) -> AppInfo:
        """Wait, then create the account (slow work before database writes)."""
        time.sleep(self.seconds)
        return super().provision(instance, purchase)


def load_provisioner(config: Mapping) -> Provisioner:
    """Create the provisioner named by KOOGALLERY_PROVISIONER (module:Class)."""
    target = config.get("KOOGALLERY_PROVISIONER") or "app.provisioning:TenantAccountProvisioner"
    module_name, _, class_name = target.partition(":")
    provisioner_class = getattr(importlib.import_module(module_name), class_name)
    return provisioner_class(config)


def get_provisioner() -> Provisioner:
    """Return the app's provisioner, created on first use."""
    extensions = current_app.extensions
    if "koogallery_provisioner" not in extensions:
        extensions["koogallery_provisioner"] = load_provisioner(current_app.config)
    return extensions["koogallery_provisioner"]
