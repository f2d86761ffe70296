"""Kit sync (联营): every interface and flag, V1 and V2, with the documented body quirks."""

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy import select

from app.extensions import db
from app.models import AppCredential, Department, KitUser, Tenant
from app.sealing import unseal
from app.security import load_private_key
from tests.marketplace import BASIC_KEY, KIT_KEY
from tests.saas_helpers import count, last_call, signed_by

TENANT = {
    "instanceId": "huaiweitest123456",
    "orderId": "CS1906666666ABCDE",
    "tenantId": "68cbc86abc2018ab880d92f36422fa0e",
    "tenantCode": "huawei",
    "name": "huaiweitest",
    "domainName": "https://example.tenantaccount.com",
    "flag": 1,
    "testFlag": 0,
    "timeStamp": "20220413093539534",
}
TENANT_ID = TENANT["tenantId"]


def kit(marketplace, interface, body, version="v2"):
    """Send a kit call the way the marketplace does for that generation, and check Body-Sign."""
    if version == "v2":
        response = marketplace.kit_post(f"/saas/produceAPI/v2/{interface}", body)
        assert signed_by(response, KIT_KEY)
    else:
        response = marketplace.kit_v1_post(f"/saas/produceAPI/{interface}", body)
        assert signed_by(response, BASIC_KEY)
    assert response.status_code == 200
    return response.json["resultCode"]


def tenant() -> Tenant:
    return db.session.scalars(select(Tenant).where(Tenant.tenant_id == TENANT_ID)).one()


# ------------------------------------------------------------------------------ tenantSync


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_tenant_add_modify_delete(app, marketplace, version):
    assert kit(marketplace, "tenantSync", TENANT, version) == "000000"
    assert kit(marketplace, "tenantSync", TENANT, version) == "000000"  # repeated add
    modified = {**TENANT, "flag": 2, "name": "renamed", "domainName": "https://new.example.com/"}
    assert kit(marketplace, "tenantSync", modified, version) == "000000"
    with app.app_context():
        stored = tenant()
        assert (stored.name, stored.domain_name, stored.tenant_code) == (
            "renamed",
            "https://new.example.com",
            "huawei",
        )
        assert (stored.instance_id, stored.order_id) == ("huaiweitest123456", "CS1906666666ABCDE")
        assert count(Tenant) == 1
    assert kit(marketplace, "tenantSync", {**TENANT, "flag": 0}, version) == "000000"
    with app.app_context():
        assert tenant().deleted_at is not None
    assert kit(marketplace, "tenantSync", {**TENANT, "flag": 1}, version) == "000000"
    with app.app_context():
        assert tenant().deleted_at is None


def test_delete_of_an_unknown_tenant_succeeds(app, marketplace):
    body = {**TENANT, "tenantId": "never-seen", "flag": 0}
    assert kit(marketplace, "tenantSync", body) == "000000"
    with app.app_context():
        assert count(Tenant) == 0


def test_seller_test_tenant_with_empty_instance_and_order(app, marketplace):
    body = {**TENANT, "instanceId": "", "orderId": "", "testFlag": 1}
    assert kit(marketplace, "tenantSync", body) == "000000"
    with app.app_context():
        assert (tenant().instance_id, tenant().test) == (None, True)


def test_documented_body_with_spacing_as_printed(app, client, marketplace):
    # security.md vector D2's body, byte for byte: unsorted, ": " spacing.
    raw = (
        '{"instanceId": "huaiweitest123456","orderId": "CS1906666666ABCDE",'
        '"tenantId": "68cbc86abc2018ab880d92f36422fa0e","tenantCode": "huawei",'
        '"name": "huaiweitest","domainName": "https://example.tenantaccount.com","flag": 1,'
        '"testFlag": 0,"timeStamp": "20220413093539534"}'
    )
    response = marketplace.kit_post("/saas/produceAPI/v2/tenantSync", TENANT, raw=raw)
    assert response.json["resultCode"] == "000000"


@pytest.mark.parametrize(
    "change",
    [{"flag": 5}, {"tenantId": ""}, {"domainName": ""}, {"domainName": "example.com"}],
    ids=["bad flag", "no tenantId", "no domain on add", "domain without scheme"],
)
def test_bad_tenant_bodies_get_000002(app, marketplace, change):
    assert kit(marketplace, "tenantSync", {**TENANT, **change}) == "000002"
    with app.app_context():
        assert count(Tenant) == 0


# ------------------------------------------------------------------------------ applicationSync

OAEP_VARIANTS = {
    "sha256-mgf1-sha256": padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
    "sha256-mgf1-sha1": padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA256(), None),  # noqa: S303
    "sha1-mgf1-sha1": padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None),  # noqa: S303
}


def encrypted_secret(app, secret: str, variant: str) -> str:
    public_key = load_private_key(app.config["KOOGALLERY_RSA_PRIVATE_KEY"]).public_key()
    ciphertext = public_key.encrypt(secret.encode(), OAEP_VARIANTS[variant])
    return base64.b64encode(ciphertext).decode()


def application(app, secret="the-client-secret", variant="sha256-mgf1-sha256", **change):
    body = {
        "instanceId": TENANT["instanceId"],
        "tenantId": TENANT_ID,
        "appId": "app-0001",
        "clientId": "client-0001",
        "clientSecret": encrypted_secret(app, secret, variant),
        "flag": 1,
        "testFlag": 0,
    }
    return {**body, **change}


@pytest.mark.parametrize("variant", OAEP_VARIANTS)
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_application_secret_is_decrypted_with_each_oaep_variant_and_sealed(
    app, marketplace, variant, version
):
    kit(marketplace, "tenantSync", TENANT, version)
    body = application(app, "typed in the console 调试", variant)
    assert kit(marketplace, "applicationSync", body, version) == "000000"
    with app.app_context():
        credential = db.session.scalars(select(AppCredential)).one()
        assert credential.client_id == "client-0001"
        assert unseal(credential.client_secret_sealed) == "typed in the console 调试"
        assert "typed in the console" not in credential.client_secret_sealed


def test_application_modify_and_delete(app, marketplace):
    kit(marketplace, "tenantSync", TENANT)
    kit(marketplace, "applicationSync", application(app, "first"))
    assert kit(marketplace, "applicationSync", application(app, "second", flag=2)) == "000000"
    with app.app_context():
        credential = db.session.scalars(select(AppCredential)).one()
        assert unseal(credential.client_secret_sealed) == "second"
    assert kit(marketplace, "applicationSync", application(app, flag=0)) == "000000"
    assert kit(marketplace, "applicationSync", application(app, flag=0, appId="absent")) == (
        "000000"
    )
    with app.app_context():
        assert db.session.scalars(select(AppCredential)).one().deleted_at is not None


def test_undecryptable_secret_is_refused_and_nothing_is_stored(app, marketplace):
    kit(marketplace, "tenantSync", TENANT)
    garbage = base64.b64encode(b"\x01" * 384).decode()
    assert kit(marketplace, "applicationSync", application(app, clientSecret=garbage)) == "000002"
    with app.app_context():
        assert count(AppCredential) == 0
        assert last_call().reason == "client_secret_undecryptable"


# ------------------------------------------------------------------------------ authSync


def user(user_name, **fields):
    return {
        "userName": user_name,
        "name": user_name.title(),
        "orgCode": "00000001",
        "role": "user",
        "enable": "true",
        "mobile": "13800000000",
        "email": f"{user_name}@example.com",
        **fields,
    }


def auth(users, flag=1, as_string=False):
    return {
        "instanceId": TENANT["instanceId"],
        "tenantId": TENANT_ID,
        "appId": "app-0001",
        "userList": json.dumps(users) if as_string else users,
        "currentSyncTime": "20220413093539534",
        "flag": flag,
        "testFlag": 0,
    }


def users() -> dict[str, KitUser]:
    return {row.user_name: row for row in db.session.scalars(select(KitUser))}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_users_add_modify_revoke_delete(app, marketplace, version):
    kit(marketplace, "tenantSync", TENANT, version)
    added = [user("alice", role="admin"), user("bob")]
    assert kit(marketplace, "authSync", auth(added), version) == "000000"
    assert kit(marketplace, "authSync", auth(added), version) == "000000"  # repeated add
    with app.app_context():
        stored = users()
        assert sorted(stored) == ["alice", "bob"]
        assert (stored["alice"].role, stored["alice"].enabled) == ("admin", True)
        assert unseal(stored["bob"].email_sealed) == "bob@example.com"
    modified = auth([user("bob", enable="false", name="Robert")], flag=2)
    assert kit(marketplace, "authSync", modified, version) == "000000"
    assert kit(marketplace, "authSync", auth([user("alice")], flag=3), version) == "000000"
    with app.app_context():
        stored = users()
        assert (stored["bob"].name, stored["bob"].enabled) == ("Robert", False)
        assert stored["alice"].authorized is False
    deleted = auth([user("bob"), user("nobody")], flag=0)
    assert kit(marketplace, "authSync", deleted, version) == "000000"
    with app.app_context():
        assert sorted(users()) == ["alice"]


def test_v1_user_list_as_a_string_with_extension(app, marketplace):
    listed = [
        {
            "userName": "carol",
            "name": "Carol",
            "orgCode": "00000002",
            "role": "user",
            "enable": "true",
            "extension": {"entryDate": "2022-04-13", "employeeType": "2", "workPlace": "Xi'an"},
        }
    ]
    assert kit(marketplace, "authSync", auth(listed, as_string=True), "v1") == "000000"
    with app.app_context():
        carol = users()["carol"]
        assert (carol.entry_date, carol.employee_type, carol.work_place) == (
            "2022-04-13",
            "2",
            "Xi'an",
        )


def test_more_than_500_users_are_refused(app, marketplace):
    many = [user(f"u{number}") for number in range(501)]
    assert kit(marketplace, "authSync", auth(many)) == "000002"
    with app.app_context():
        assert count(KitUser) == 0


@pytest.mark.parametrize(
    "bad", [{"role": "root"}, {"enable": "yes"}, {"userName": ""}], ids=["role", "enable", "name"]
)
def test_bad_users_are_refused(app, marketplace, bad):
    assert kit(marketplace, "authSync", auth([user("dave", **bad)])) == "000002"
    with app.app_context():
        assert count(KitUser) == 0


def test_users_arriving_before_their_tenant_are_kept(app, marketplace):
    assert kit(marketplace, "authSync", auth([user("erin")])) == "000000"
    assert kit(marketplace, "tenantSync", TENANT) == "000000"
    with app.app_context():
        assert tenant().name == "huaiweitest" and sorted(users()) == ["erin"]


# ------------------------------------------------------------------------------ departments


def departments() -> dict[str, tuple]:
    rows = db.session.scalars(select(Department))
    return {row.org_code: (row.org_name, row.parent_code) for row in rows}


def org(code, name, parent="", flag=1):
    return {
        "instanceId": TENANT["instanceId"],
        "tenantId": TENANT_ID,
        "orgCode": code,
        "orgName": name,
        "parentCode": parent,
        "flag": flag,
        "testFlag": 0,
    }


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_single_department_add_move_delete(app, marketplace, version):
    assert kit(marketplace, "singleOrgSync", org("1", "总部"), version) == "000000"
    assert kit(marketplace, "singleOrgSync", org("2", "产品部", "1"), version) == "000000"
    assert kit(marketplace, "singleOrgSync", org("2", "产品部", "1"), version) == "000000"
    assert kit(marketplace, "singleOrgSync", org("3", "研发部", "1"), version) == "000000"
    moved = org("3", "研发中心", "2", flag=2)
    assert kit(marketplace, "singleOrgSync", moved, version) == "000000"
    assert kit(marketplace, "singleOrgSync", org("1", "", flag=0), version) == "000000"
    assert kit(marketplace, "singleOrgSync", org("9", "", flag=0), version) == "000000"
    with app.app_context():
        assert departments() == {"2": ("产品部", "1"), "3": ("研发中心", "2")}


def test_single_department_body_with_a_repeated_key(app, client, marketplace):
    # The documented example repeats instanceId: the last one wins, as in Java.
    raw = (
        '{"instanceId": "first", "tenantId": "68cbc86abc2018ab880d92f36422fa0e",'
        ' "instanceId": "huaiweitest123456", "orgCode": "7", "orgName": "市场部",'
        ' "parentCode": "", "flag": 1, "testFlag": 0}'
    )
    body = json.loads(raw)
    response = marketplace.kit_post("/saas/produceAPI/v2/singleOrgSync", body, raw=raw)
    assert response.json["resultCode"] == "000000"
    with app.app_context():
        assert departments() == {"7": ("市场部", None)}


FULL_TREE = [
    {"orgCode": "00000001", "orgName": "产品部", "parentCode": "265789314"},
    {"orgCode": "265789314", "orgName": "总部", "parentCode": ""},
]
EXPECTED_TREE = {"00000001": ("产品部", "265789314"), "265789314": ("总部", None)}


@pytest.mark.parametrize(
    ("version", "field", "value"),
    [
        ("v2", "orgInfoList", FULL_TREE),
        ("v2", "orgInfoList", json.dumps(FULL_TREE, ensure_ascii=False)),
        (
            "v2",
            "orgInfoList",
            '[{orgCode:"00000001", orgName:"产品部", parentCode:"265789314" },'
            ' {orgCode:"265789314", orgName:"总部", parentCode:"" }]',
        ),
        (
            "v1",
            "orgInfo",
            json.dumps(
                [
                    {"orgCode": o["orgCode"], "name": o["orgName"], "parentCode": o["parentCode"]}
                    for o in FULL_TREE
                ]
            ),
        ),
    ],
    ids=["array", "JSON string", "pseudo-JSON string", "V1 orgInfo with name"],
)
def test_full_department_sync_accepts_every_documented_shape(
    app, marketplace, version, field, value
):
    kit(marketplace, "singleOrgSync", org("old", "旧部门"))
    body = {"instanceId": TENANT["instanceId"], "tenantId": TENANT_ID, field: value, "testFlag": 0}
    assert kit(marketplace, "allOrgSync", body, version) == "000000"
    with app.app_context():
        assert departments() == EXPECTED_TREE  # the old tree is replaced


def test_unparseable_org_list_is_refused(app, marketplace):
    body = {"tenantId": TENANT_ID, "orgInfoList": "[{orgCode: 1,,}", "testFlag": 0}
    assert kit(marketplace, "allOrgSync", body) == "000002"


def test_kit_calls_need_the_kit_key(app, marketplace):
    response = marketplace.kit_post("/saas/produceAPI/v2/tenantSync", TENANT, key=BASIC_KEY)
    assert response.json["resultCode"] == "000001"
    with app.app_context():
        assert count(Tenant) == 0


def test_market_rsa_keygen_prints_the_public_key_as_the_console_wants(runner, tmp_path):
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    out = tmp_path / "rsa.pem"
    result = runner.invoke(args=["market", "rsa-keygen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    public_line = result.output.strip().splitlines()[-1]
    assert "-----" not in public_line
    public_key = load_der_public_key(base64.b64decode(public_line))
    private_key = load_private_key(str(out))
    assert public_key.key_size == 3072
    assert public_key.public_numbers() == private_key.public_key().public_numbers()
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(args=["market", "rsa-keygen", "--out", str(out)])
    assert again.exit_code != 0 and "exists" in again.output


def test_a_department_list_over_the_limit_is_refused(app, marketplace, monkeypatch):
    from app.kit import schemas

    monkeypatch.setattr(schemas, "MAX_DEPARTMENTS_PER_CALL", 3)
    monkeypatch.setattr(
        schemas.AllOrgSync._declared_fields["orgInfoList"],
        "validators",
        [schemas.validate.Length(max=3)],
    )
    orgs = [{"orgCode": str(n), "orgName": f"d{n}", "parentCode": ""} for n in range(4)]
    body = {"tenantId": TENANT_ID, "orgInfoList": orgs, "testFlag": 0}
    assert kit(marketplace, "allOrgSync", body) == "000002"


def test_a_full_department_sync_may_exceed_the_general_body_limit(app, marketplace, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    orgs = [{"orgCode": str(n), "orgName": f"部门{n}", "parentCode": ""} for n in range(100)]
    body = {"tenantId": TENANT_ID, "orgInfoList": orgs, "testFlag": 0}
    assert kit(marketplace, "allOrgSync", body) == "000000"
    monkeypatch.setitem(app.config, "KOOGALLERY_KIT_MAX_BODY", 1024)
    assert kit(marketplace, "allOrgSync", body) == "000002"
