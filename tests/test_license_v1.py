"""Legacy V1 License (GET /license): getLicense issues a real, verifiable licence."""

import base64
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from sqlalchemy import select

from app.extensions import db
from app.licensing import InvalidLicense, signing_key, verify_license
from app.models import Instance, InstanceHistory, License, LicenseHistory
from tests.marketplace import BASIC_KEY, LICENSE_KEY
from tests.saas_helpers import count, events, signed_by

PURCHASE = {
    "businessId": "lic-business-1",
    "customerId": "68cbc86abc2018ab880d92f36422fa0e",
    "orderId": "CS-LIC-ORDER",
    "productId": "00301-777777-0--0",
    "skuCode": "sku-professional",
    "expireTime": "20271129235959",
    "amount": "3",
    "testFlag": "0",
}
INSTANCE_ID = PURCHASE["businessId"]


def get_license(marketplace, key=BASIC_KEY, **params):
    return marketplace.v1_get("/license", {"activity": "getLicense", **PURCHASE, **params}, key=key)


def call(marketplace, activity, **params):
    return marketplace.v1_get("/license", {"activity": activity, **params})


def public_key(app):
    return signing_key(app.config).public_key()


def extend_params(pairs: dict) -> str:
    items = [{"name": name, "value": value} for name, value in pairs.items()]
    return base64.b64encode(json.dumps(items).encode()).decode()


def licenses() -> list[License]:
    return db.session.scalars(select(License)).all()


def test_get_license_answers_a_licence_that_verifies_offline(app, marketplace):
    response = get_license(marketplace)
    answer = response.json
    assert answer["resultCode"] == "000000" and signed_by(response, BASIC_KEY)
    assert answer["instanceId"] == INSTANCE_ID
    document = verify_license(answer["license"], public_key(app))
    assert document["orderId"] == "CS-LIC-ORDER"
    assert document["customerId"] == PURCHASE["customerId"]
    assert document["instanceId"] == INSTANCE_ID
    assert (document["skuCode"], document["quantity"]) == ("sku-professional", 3)
    assert document["notAfter"] == "2027-11-29T15:59:59Z"  # V1 expireTime is Beijing time
    with app.app_context():
        (stored,) = licenses()
        assert (stored.kind, stored.state, stored.license_text) == (
            "v1",
            "active",
            answer["license"],
        )
        instance = db.session.scalars(select(Instance)).one()
        assert (instance.family, instance.state) == ("license", "active")
        assert events(INSTANCE_ID) == ["created", "provisioned"]
        assert db.session.scalars(select(LicenseHistory.event)).all() == ["issued"]


def test_get_license_resent_five_times_gives_one_instance_and_the_same_text(app, marketplace):
    answers = [get_license(marketplace, businessId=f"resend-{number}").json for number in range(5)]
    assert {answer["instanceId"] for answer in answers} == {"resend-0"}
    assert len({answer["license"] for answer in answers}) == 1
    with app.app_context():
        assert count(Instance) == 1 and count(License) == 1


@pytest.mark.parametrize("part", [1, 2])
def test_a_licence_with_one_byte_changed_fails_to_verify(app, marketplace, part):
    text = get_license(marketplace).json["license"]
    pieces = text.split(".")
    changed = pieces[part][:10] + ("A" if pieces[part][10] != "A" else "B") + pieces[part][11:]
    pieces[part] = changed
    with pytest.raises(InvalidLicense):
        verify_license(".".join(pieces), public_key(app))


def test_the_license_key_is_accepted_for_v1_too(app, marketplace):
    response = get_license(marketplace, key=LICENSE_KEY)
    assert response.json["resultCode"] == "000000" and signed_by(response, LICENSE_KEY)


def test_machine_code_from_extend_params_is_bound_into_the_licence(app, marketplace):
    params = extend_params({"machineCode": "A1B2-C3D4-E5F6", "note": "x"})
    text = get_license(marketplace, saasExtendParams=params).json["license"]
    assert verify_license(text, public_key(app))["boundTo"] == "A1B2-C3D4-E5F6"


HOSTILE = [
    "$(touch {marker}) `touch {marker}`; touch {marker} && rm -rf /nonexistent",
    "__import__('os').system('touch {marker}')",
    "{{{{7*7}}}} ${{7*7}} <script>alert(1)</script> ' OR 1=1 --",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_machine_codes_are_data_never_code(app, marketplace, tmp_path, template):
    marker = tmp_path / "executed"
    hostile = template.format(marker=marker)
    text = get_license(marketplace, saasExtendParams=extend_params({"machineCode": hostile}))
    document = verify_license(text.json["license"], public_key(app))
    assert document["boundTo"] == hostile
    assert not Path(marker).exists()


@pytest.mark.parametrize(
    "value",
    ["not base64 at all!", base64.b64encode(b"{'python': 'dict'}").decode(), "QUJD" * 600],
    ids=["invalid Base64", "not JSON", "over 2048 characters"],
)
def test_malformed_extend_params_are_refused_with_000002(app, marketplace, value):
    response = get_license(marketplace, saasExtendParams=value)
    assert response.json["resultCode"] == "000002" and signed_by(response, BASIC_KEY)
    with app.app_context():
        assert count(Instance) == 0 and count(License) == 0


def test_refresh_sets_the_expiry_and_reissues_the_licence(app, marketplace):
    first = get_license(marketplace).json["license"]
    response = call(
        marketplace,
        "refreshLicense",
        instanceId=INSTANCE_ID,
        orderId="CS-LIC-RENEW",
        expireTime="20281129235959",
    )
    assert response.json["resultCode"] == "000000" and signed_by(response, BASIC_KEY)
    renewed = get_license(marketplace, businessId="after-renewal").json["license"]
    assert renewed != first
    assert verify_license(renewed, public_key(app))["notAfter"] == "2028-11-29T15:59:59Z"
    with app.app_context():
        assert db.session.scalars(select(Instance.expire_time)).one() == "20281129235959"
        assert events(INSTANCE_ID)[-1] == "renewed"
        history = db.session.scalars(
            select(InstanceHistory).where(InstanceHistory.event == "renewed")
        ).one()
        assert history.order_id == "CS-LIC-RENEW"
        assert history.changes["expire_time"] == ["20271129235959", "20281129235959"]


def test_expire_freezes_the_purchase_and_its_licence(app, marketplace):
    get_license(marketplace)
    for _ in range(2):
        response = call(
            marketplace, "expireLicense", instanceId=INSTANCE_ID, orderId="CS-LIC-ORDER"
        )
        assert response.json["resultCode"] == "000000" and signed_by(response, BASIC_KEY)
    with app.app_context():
        assert db.session.scalars(select(Instance.state)).one() == "frozen"
        assert licenses()[0].state == "frozen"
        assert events(INSTANCE_ID) == ["created", "provisioned", "frozen"]


@pytest.mark.parametrize("activity", ["refreshLicense", "expireLicense", "releaseLicense"])
def test_unknown_instance_answers_000003(marketplace, activity):
    params = {"instanceId": "nothing", "orderId": "o", "expireTime": "20281129235959"}
    assert call(marketplace, activity, **params).json["resultCode"] == "000003"


def test_lifecycle_ends_released(app, marketplace):
    get_license(marketplace)
    steps = [
        ("refreshLicense", {"orderId": "R1", "expireTime": "20281129235959"}, "000000"),
        ("expireLicense", {"orderId": "CS-LIC-ORDER"}, "000000"),
        ("releaseLicense", {"orderId": "CS-LIC-ORDER"}, "000000"),
        ("releaseLicense", {"orderId": "CS-LIC-ORDER"}, "000000"),
        ("refreshLicense", {"orderId": "R2", "expireTime": "20291129235959"}, "000003"),
        ("expireLicense", {"orderId": "CS-LIC-ORDER"}, "000003"),
    ]
    for activity, params, code in steps:
        response = call(marketplace, activity, instanceId=INSTANCE_ID, **params)
        assert (activity, response.json["resultCode"]) == (activity, code)
        assert signed_by(response, BASIC_KEY)
    with app.app_context():
        assert db.session.scalars(select(Instance.state)).one() == "released"
        assert licenses()[0].state == "released"
        assert events(INSTANCE_ID) == ["created", "provisioned", "renewed", "frozen", "released"]


def test_saas_calls_do_not_reach_license_instances(marketplace):
    get_license(marketplace)
    answer = marketplace.saas_v1("queryInstance", instanceId=INSTANCE_ID).json
    assert answer["resultCode"] == "000003"


def test_market_verify_license_accepts_a_file_and_a_string(app, marketplace, runner, tmp_path):
    text = get_license(marketplace).json["license"]
    license_file = tmp_path / "licence.txt"
    license_file.write_text(text + "\n")
    for argument in (str(license_file), text):
        result = runner.invoke(args=["market", "verify-license", argument])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("valid licence") and "CS-LIC-ORDER" in result.output
    tampered = text[:-3] + ("AAA" if not text.endswith("AAA") else "BBB")
    result = runner.invoke(args=["market", "verify-license", tampered])
    assert result.exit_code != 0 and "invalid licence" in result.output


def test_the_readme_snippet_verifies_a_licence_with_the_printed_public_key(
    app, marketplace, runner
):
    pem = runner.invoke(args=["market", "license-public-key"]).output
    text = get_license(marketplace).json["license"]
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    document = namespace["verify_licence"](text, pem.encode())
    assert document["instanceId"] == INSTANCE_ID
    with pytest.raises(InvalidSignature):
        namespace["verify_licence"](
            text[:-2] + ("AA" if not text.endswith("AA") else "BB"), pem.encode()
        )


def test_without_a_signing_key_get_license_answers_000005_and_a_resend_retries(
    app, marketplace, monkeypatch
):
    key = app.config["KOOGALLERY_LICENSE_SIGNING_KEY"]
    monkeypatch.setitem(app.config, "KOOGALLERY_LICENSE_SIGNING_KEY", None)
    failed = get_license(marketplace)
    assert failed.json["resultCode"] == "000005" and signed_by(failed, BASIC_KEY)
    with app.app_context():
        assert db.session.scalars(select(Instance.state)).one() == "failed"
        assert count(License) == 0
    monkeypatch.setitem(app.config, "KOOGALLERY_LICENSE_SIGNING_KEY", key)
    retried = get_license(marketplace, businessId="resend").json
    assert retried["resultCode"] == "000000" and retried["instanceId"] == INSTANCE_ID


def test_a_renewed_licence_stays_bound_to_the_machine(app, marketplace):
    params = extend_params({"machineCode": "MACHINE-42"})
    get_license(marketplace, saasExtendParams=params)
    call(
        marketplace,
        "refreshLicense",
        instanceId=INSTANCE_ID,
        orderId="R",
        expireTime="20301231235959",
    )
    text = get_license(marketplace, businessId="again", saasExtendParams=params).json["license"]
    document = verify_license(text, public_key(app))
    assert (document["boundTo"], document["notAfter"]) == ("MACHINE-42", "2030-12-31T15:59:59Z")
