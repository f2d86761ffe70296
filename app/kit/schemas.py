"""Schemas of the five kit sync interfaces, V1 and V2 (spec kit-oauth.md §1).

The documented bodies are irregular: keys repeat, `orgInfoList` arrives as an array, as a JSON
string or as a string of pseudo-JSON with unquoted keys, V1 calls it `orgInfo` and names
departments `name`, V1 sends `userList` as a JSON string and nests some user fields in
`extension`. normalise_*() turn every documented shape into one before validation.
"""

import json
import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from app.saas.schemas import Flag, Id

MAX_USERS_PER_CALL = 500
# A full department sync replaces the tree in one transaction; beyond this the call is refused
# rather than left to exhaust memory (the documentation sets no number).
MAX_DEPARTMENTS_PER_CALL = 50_000
BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?=\s*:)")


class SyncFlag(fields.Field):
    """flag: 0 delete, 1 add, 2 modify (3 revoke, authSync only); Integer, sometimes a string."""

    def __init__(self, allowed: tuple[int, ...], **kwargs):
        super().__init__(**kwargs)
        self.allowed = allowed

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or str(value).strip() not in {str(a) for a in self.allowed}:
            raise ValidationError(f"must be one of {', '.join(map(str, self.allowed))}")
        return int(str(value).strip())


class Enable(fields.Field):
    """enable: the string "true"/"false" (a JSON boolean is accepted too)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("true", "false"):
            return str(value).strip().lower() == "true"
        raise ValidationError('must be "true" or "false"')


def optional(length: int) -> fields.String:
    """Return an optional text field of at most `length` characters (blank allowed)."""
    return fields.String(validate=validate.Length(max=length), allow_none=True)


class KitSchema(Schema):
    """Fields every sync body carries."""

    class Meta:
        unknown = EXCLUDE

    # Empty for the seller's own test tenant (created with the app credential).
    instanceId = optional(64)
    testFlag = Flag(load_default=None)
    timeStamp = optional(20)


class TenantSync(KitSchema):
    orderId = optional(64)
    tenantId = Id(required=True)
    tenantCode = optional(64)
    name = optional(255)
    domainName = optional(255)
    flag = SyncFlag((0, 1, 2), required=True)

    @validates_schema
    def check_add(self, data, **kwargs):
        if data["flag"] == 0:
            return
        for name in ("tenantCode", "name", "domainName"):
            if not data.get(name):
                raise ValidationError("missing data for required field", name)
        if not data["domainName"].startswith(("https://", "http://")):
            raise ValidationError("must include the scheme (https://…)", "domainName")


class ApplicationSync(KitSchema):
    tenantId = Id(required=True)
    appId = Id(required=True)
    clientId = optional(64)
    clientSecret = fields.String(allow_none=True)
    flag = SyncFlag((0, 1, 2), required=True)

    @validates_schema
    def check_add(self, data, **kwargs):
        if data["flag"] != 0:
            for name in ("clientId", "clientSecret"):
                if not data.get(name):
                    raise ValidationError("missing data for required field", name)


class User(Schema):
    class Meta:
        unknown = EXCLUDE

    userName = Id(required=True)
    name = optional(64)
    orgCode = optional(64)
    position = optional(255)
    employeeCode = optional(64)
    employeeType = fields.String(validate=validate.OneOf(["1", "2", "3", "4", ""]), allow_none=True)
    role = fields.String(validate=validate.OneOf(["user", "admin"]), load_default="user")
    enable = Enable(load_default=True)
    mobile = optional(32)
    email = optional(128)
    workPlace = optional(256)
    entryDate = optional(20)


class AuthSync(KitSchema):
    tenantId = Id(required=True)
    appId = Id(required=True)
    userList = fields.List(fields.Nested(User), required=True)
    currentSyncTime = optional(20)
    flag = SyncFlag((0, 1, 2, 3), required=True)

    @validates_schema
    def check_size(self, data, **kwargs):
        if len(data["userList"]) > MAX_USERS_PER_CALL:
            raise ValidationError(f"more than {MAX_USERS_PER_CALL} users", "userList")


class Org(Schema):
    class Meta:
        unknown = EXCLUDE

    orgCode = Id(required=True)
    orgName = optional(128)
    parentCode = optional(64)


class SingleOrgSync(KitSchema):
    tenantId = Id(required=True)
    orgCode = Id(required=True)
    orgName = optional(128)
    parentCode = optional(64)
    flag = SyncFlag((0, 1, 2), required=True)


class AllOrgSync(KitSchema):
    tenantId = Id(required=True)
    orgInfoList = fields.List(
        fields.Nested(Org), required=True, validate=validate.Length(max=MAX_DEPARTMENTS_PER_CALL)
    )


# ------------------------------------------------------------------------------ body quirks


def normalise_users(body: dict) -> dict:
    """Accept userList as an array or a JSON string, and V1's nested `extension` fields."""
    users = _decoded(body.get("userList"), "userList")
    if isinstance(users, list):
        users = [_flatten_extension(user) for user in users]
    return {**body, "userList": users}


def normalise_orgs(body: dict) -> dict:
    """Accept orgInfoList (array, JSON string, pseudo-JSON) and V1's orgInfo with `name`."""
    raw = body.get("orgInfoList", body.get("orgInfo"))
    orgs = _decoded(raw, "orgInfoList")
    if isinstance(orgs, list):
        orgs = [
            {"orgName": org.get("name"), **org} if isinstance(org, dict) else org for org in orgs
        ]
    return {**body, "orgInfoList": orgs}


def _flatten_extension(user):
    if not isinstance(user, dict) or not isinstance(user.get("extension"), dict):
        return user
    extension = user["extension"]
    return {**extension, **{k: v for k, v in user.items() if k != "extension"}}


def _decoded(value, field: str):
    if not isinstance(value, str):
        return value
    try:
        return parse_loose_json(value)
    except ValueError:
        raise ValidationError("not a list", field) from None


def parse_loose_json(text: str):
    """Parse JSON, or the documented pseudo-JSON whose keys have no quotes.

    `[{orgCode:"00000001", orgName:"产品部"}]` → `[{"orgCode": "00000001", "orgName": "产品部"}]`.
    Keys are quoted only outside string values, so a value such as "R&D, east: 2" is untouched.
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    out: list[str] = []
    index, in_string, escaped, last = 0, False, False, ""
    while index < len(text):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif last in ("{", ","):
            bare = BARE_KEY.match(text, index)
            if bare:
                out.append(f'"{bare.group(0)}"')
                index, last = bare.end(), '"'
                continue
        out.append(char)
        if not char.isspace():
            last = char
        index += 1
    return json.loads("".join(out))
