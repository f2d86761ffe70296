"""The appInfo and usageInfo parts of SaaS answers (spec saas.md; security.md §6)."""

from collections.abc import Iterable
from datetime import UTC

from app.lifecycle import CallRefused
from app.provisioning import AppInfo, Usage
from app.results import ResultCode
from app.security import encrypt_field, encryption_bits

# Limits the seller console's debugger checks ("{field}长度不合法").
MAX_URL_LENGTH = 512
MAX_CREDENTIAL_LENGTH = 128  # after encryption
MAX_MEMO_LENGTH = 1024


def app_info_fields(app_info: AppInfo, *, key: str, encrypt: bool, encrypt_type: str) -> dict:
    """Return `appInfo` (and `encryptType`) with userName/password encrypted under `key`."""
    info = {"frontEndUrl": app_info.front_end_url}
    if app_info.admin_url:
        info["adminUrl"] = app_info.admin_url
    bits = encryption_bits(encrypt_type)
    for name, value in (("userName", app_info.user_name), ("password", app_info.password)):
        if value is not None:
            info[name] = encrypt_field(key, value, bits) if encrypt else value
    if app_info.memo:
        info["memo"] = app_info.memo
    check_lengths(info)
    return {"encryptType": encrypt_type, "appInfo": info} if encrypt else {"appInfo": info}


def check_lengths(info: dict) -> None:
    """Refuse to send an appInfo the seller console would reject for its lengths."""
    limits = {
        "frontEndUrl": MAX_URL_LENGTH,
        "adminUrl": MAX_URL_LENGTH,
        "userName": MAX_CREDENTIAL_LENGTH,
        "password": MAX_CREDENTIAL_LENGTH,
        "memo": MAX_MEMO_LENGTH,
    }
    for name, limit in limits.items():
        if len(info.get(name) or "") > limit:
            raise CallRefused(ResultCode.INTERNAL_ERROR, f"appInfo_{name}_too_long")


def usage_info(usages: Iterable[Usage]) -> list[dict]:
    """Return queryInstance's usageInfo entries (usageValue Double(12,4), UTC statisticalTime)."""
    entries = []
    for usage in usages:
        moment = usage.statistical_time
        moment = moment.astimezone(UTC) if moment.tzinfo else moment
        entry = {
            "usageValue": float(round(usage.usage_value, 4)),
            "statisticalTime": moment.strftime("%Y%m%d%H%M%S")
            + f"{moment.microsecond // 1000:03d}",
        }
        if usage.related_instance_id:
            entry["relatedInstanceId"] = usage.related_instance_id
        if usage.dashboard_url:
            entry["dashboardUrl"] = usage.dashboard_url
        entries.append(entry)
    return entries
