"""Set up a joint-operation tenant the way the marketplace does: by kit sync calls."""

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from app.security import load_private_key

TENANT_ID = "tenant-0001"
APP_ID = "app-0001"
CLIENT_ID = "client-0001"
CLIENT_SECRET = "client-secret-0001"


@dataclass
class JointTenant:
    """What a test needs to log in: the ids, and the mock identity domain."""

    tenant_id: str
    app_id: str
    idp: object

    def login_value(self, user_name: str) -> str:
        return f"{self.tenant_id}/{user_name}"


def use_identity_provider(app, idp, monkeypatch) -> None:
    """Point the app's login at the mock identity domain, fresh for one test."""
    monkeypatch.setitem(app.config, "KOOGALLERY_APP_ID", APP_ID)
    monkeypatch.setitem(app.config, "KOOGALLERY_IDP_CA_BUNDLE", idp.ca_bundle)
    monkeypatch.setitem(
        app.config,
        "KOOGALLERY_LOGIN_URL",
        f"{idp.base_url}/unified-login/?ind=UNOP&appId={{appId}}",
    )
    idp.access_token_lifetime = 7200
    idp.down = False


def sync_tenant(app, marketplace, idp, callback_url: str, users: list[dict]) -> JointTenant:
    """Push tenant, app credential and users through the kit interfaces; mirror them in the IdP."""
    public_key = load_private_key(app.config["KOOGALLERY_RSA_PRIVATE_KEY"]).public_key()
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    secret = base64.b64encode(public_key.encrypt(CLIENT_SECRET.encode(), oaep)).decode()
    common = {"instanceId": "instance-0001", "tenantId": TENANT_ID, "testFlag": 0}
    calls = [
        (
            "tenantSync",
            {
                **common,
                "orderId": "CS-JOINT",
                "tenantCode": "acme",
                "name": "ACME 公司",
                "domainName": idp.base_url,
                "flag": 1,
            },
        ),
        (
            "applicationSync",
            {**common, "appId": APP_ID, "clientId": CLIENT_ID, "clientSecret": secret, "flag": 1},
        ),
        ("authSync", {**common, "appId": APP_ID, "userList": users, "flag": 1}),
    ]
    for interface, body in calls:
        answer = marketplace.kit_post(f"/saas/produceAPI/v2/{interface}", body).json
        assert answer["resultCode"] == "000000", (interface, answer)
    idp.register_app(APP_ID, CLIENT_ID, CLIENT_SECRET, callback_url)
    for user in users:
        idp.add_user(TENANT_ID, user["userName"], name=user["name"], role=user["role"])
    return JointTenant(TENANT_ID, APP_ID, idp)


def user(user_name: str, name: str, role: str = "user", enable: str = "true") -> dict:
    return {"userName": user_name, "name": name, "orgCode": "001", "role": role, "enable": enable}
