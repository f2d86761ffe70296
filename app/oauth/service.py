"""Token exchange, userinfo, refresh and the server-side login session.

The browser's cookie holds only a random session id; the tokens stay in the database, sealed.
Authlib makes the token calls (client_secret_post, as the documentation shows the form fields).
"""

import logging
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app, session
from sqlalchemy import delete, select

from app.extensions import db
from app.lifecycle import as_utc
from app.models import AppCredential, KitUser, LoginSession, Tenant, utcnow
from app.sealing import seal, unseal

log = logging.getLogger(__name__)

TOKEN_PATH = "/api/v1/oauth2/token"  # noqa: S105 - a path, not a secret
USERINFO_PATH = "/api/v1/oauth2/userinfo"
LOGOUT_PATH = "/api/v1/logout"
TIMEOUT = (3.05, 5)
SESSION_KEY = "login"


class LoginRefused(Exception):
    """The login cannot go on; `title` and `detail` are shown to the user, `status` is HTTP."""

    def __init__(self, title: str, detail: str, status: int = 403):
        super().__init__(title)
        self.title, self.detail, self.status = title, detail, status


@dataclass(frozen=True)
class Login:
    """Who is logged in, for pages and /oauth/me."""

    user: KitUser
    tenant: Tenant
    login_session: LoginSession


def active_tenant(tenant_id: str) -> Tenant:
    """Return a tenant that may log in, or refuse: never guess one."""
    tenant = db.session.scalars(select(Tenant).where(Tenant.tenant_id == tenant_id)).first()
    if tenant is None or tenant.deleted_at is not None or not tenant.domain_name:
        raise LoginRefused("Unknown enterprise", f"No enterprise {tenant_id} is known here.")
    return tenant


def app_credential(tenant: Tenant) -> AppCredential:
    """Return the tenant's app credential (KOOGALLERY_APP_ID picks one when there are several)."""
    query = select(AppCredential).where(
        AppCredential.tenant_pk == tenant.id, AppCredential.deleted_at.is_(None)
    )
    app_id = current_app.config.get("KOOGALLERY_APP_ID")
    if app_id:
        query = query.where(AppCredential.app_id == app_id)
    credentials = db.session.scalars(query).all()
    if len(credentials) != 1:
        raise LoginRefused(
            "App not set up for this enterprise",
            "The marketplace has not (or not unambiguously) synchronised this app's credential.",
        )
    return credentials[0]


def oauth_client(credential: AppCredential) -> OAuth2Session:
    """Return an OAuth client for one app credential."""
    client = OAuth2Session(
        client_id=credential.client_id,
        client_secret=unseal(credential.client_secret_sealed),
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
    )
    return client


def tls_verify() -> str | bool:
    """Return what to verify the identity domain's certificate with (never "don't")."""
    # Passed on every call: a session-wide setting loses to REQUESTS_CA_BUNDLE in the environment.
    return current_app.config.get("KOOGALLERY_IDP_CA_BUNDLE") or True


def exchange_code(tenant: Tenant, code: str) -> tuple[dict, dict]:
    """Trade the single-use code for tokens, then read the user; refuse on any failure."""
    credential = app_credential(tenant)
    client = oauth_client(credential)
    extra = {}
    if current_app.config.get("KOOGALLERY_OAUTH_REDIRECT_URI"):
        extra["redirect_uri"] = current_app.config["KOOGALLERY_OAUTH_REDIRECT_URI"]
    with identity_domain_errors():
        token = client.fetch_token(
            tenant.domain_name + TOKEN_PATH,
            grant_type="authorization_code",
            code=code,
            timeout=TIMEOUT,
            verify=tls_verify(),
            **extra,
        )
        # The bearer header is set here rather than by Authlib, whose token handling would call
        # a token that expires within its 60 s leeway "invalid" before using it.
        response = client.get(
            tenant.domain_name + USERINFO_PATH,
            headers={
                "Authorization": f"Bearer {token['access_token']}",
                "Accept": "application/json",
            },
            timeout=TIMEOUT,
            verify=tls_verify(),
            withhold_token=True,
        )
        response.raise_for_status()
        userinfo = response.json()
    return token, userinfo


# What a person is told when the identity domain refuses (documented OAuth error bodies).
OAUTH_ERROR_MESSAGES = {
    "invalid_grant": (
        "The login link has expired or was already used",
        "Start the login again from the marketplace.",
    ),
    "invalid_client": (
        "This app's credential was refused",
        "The client id or secret synchronised by the marketplace does not match.",
    ),
}


@contextmanager
def identity_domain_errors():
    """Turn the identity domain's failures into LoginRefused with a message a person can act on."""
    try:
        yield
    except OAuthError as error:
        title, detail = OAUTH_ERROR_MESSAGES.get(
            error.error, ("Login failed", f"The identity domain said: {error.error}.")
        )
        log.warning("OAuth error from the identity domain: %s", error.error)
        raise LoginRefused(title, detail) from None
    except requests.HTTPError as error:
        log.warning("identity domain answered HTTP %s", error.response.status_code)
        raise LoginRefused(
            "The identity domain refused the request",
            f"It answered HTTP {error.response.status_code}. Try again later.",
            502,
        ) from None
    except (requests.RequestException, ValueError) as error:
        log.warning("identity domain unreachable: %s", type(error).__name__)
        raise LoginRefused(
            "The identity domain cannot be reached", "Try again in a few minutes.", 502
        ) from None


def authorised_user(tenant: Tenant, userinfo: dict) -> KitUser:
    """Return the synchronised user behind the userinfo, if authSync let them in."""
    user_name = userinfo.get("userName")
    user = db.session.scalars(
        select(KitUser).where(KitUser.tenant_pk == tenant.id, KitUser.user_name == user_name)
    ).first()
    if user is None or not user.authorized:
        raise LoginRefused("Not authorised", "Your administrator has not given you this app.")
    if not user.enabled:
        raise LoginRefused("Account disabled", "Your account for this app is disabled.")
    return user


def start_session(user: KitUser, token: dict) -> LoginSession:
    """Store the tokens and give the browser a fresh session id (rotated on every login)."""
    end_session()
    login_session = LoginSession(
        session_id=secrets.token_urlsafe(32),
        user_pk=user.id,
        access_token_sealed=seal(token["access_token"]),
        refresh_token_sealed=seal(token["refresh_token"]) if token.get("refresh_token") else None,
        access_expires_at=utcnow() + timedelta(seconds=int(token.get("expires_in") or 7200)),
    )
    db.session.add(login_session)
    db.session.commit()
    session.clear()
    session[SESSION_KEY] = login_session.session_id
    return login_session


def csrf_token() -> str:
    """Return the token the logout form must carry (kept in the browser's session)."""
    return session.setdefault("oauth_csrf", secrets.token_urlsafe(24))


def end_session() -> Tenant | None:
    """Forget the current login; return its tenant (for the identity domain's logout)."""
    session_id = session.pop(SESSION_KEY, None)
    if not session_id:
        return None
    login_session = db.session.scalars(
        select(LoginSession).where(LoginSession.session_id == session_id)
    ).first()
    tenant = None
    if login_session is not None:
        user = db.session.get(KitUser, login_session.user_pk)
        tenant = db.session.get(Tenant, user.tenant_pk) if user else None
        db.session.execute(delete(LoginSession).where(LoginSession.id == login_session.id))
        db.session.commit()
    session.clear()
    return tenant


def current_login() -> Login | None:
    """Return the logged-in user, refreshing the access token when it is about to expire."""
    session_id = session.get(SESSION_KEY)
    if not session_id:
        return None
    login_session = db.session.scalars(
        select(LoginSession).where(LoginSession.session_id == session_id)
    ).first()
    user = login_session and db.session.get(KitUser, login_session.user_pk)
    tenant = user and db.session.get(Tenant, user.tenant_pk)
    # authSync may revoke or disable a user, or tenantSync delete the tenant, after login.
    if not user or not user.authorized or not user.enabled or tenant.deleted_at is not None:
        end_session()
        return None
    margin = timedelta(seconds=current_app.config["KOOGALLERY_TOKEN_REFRESH_MARGIN"])
    if as_utc(login_session.access_expires_at) - margin <= utcnow() and not refresh(
        login_session, tenant
    ):
        end_session()
        return None
    return Login(user, tenant, login_session)


def refresh(login_session: LoginSession, tenant: Tenant) -> bool:
    """Renew the access token with the refresh token; False when the session must end."""
    if not login_session.refresh_token_sealed:
        return False
    try:
        client = oauth_client(app_credential(tenant))
        with identity_domain_errors():
            # A plain token request with grant_type=refresh_token (spec kit-oauth.md §2, step 7).
            token = client.fetch_token(
                tenant.domain_name + TOKEN_PATH,
                grant_type="refresh_token",
                refresh_token=unseal(login_session.refresh_token_sealed),
                timeout=TIMEOUT,
                verify=tls_verify(),
            )
    except LoginRefused as refused:
        log.info("token refresh failed: %s", refused.title)
        return False
    login_session.access_token_sealed = seal(token["access_token"])
    if token.get("refresh_token"):
        # Keep the new refresh token if one is returned (spec kit-oauth.md §2, step 7).
        login_session.refresh_token_sealed = seal(token["refresh_token"])
    login_session.access_expires_at = utcnow() + timedelta(
        seconds=int(token.get("expires_in") or 7200)
    )
    db.session.commit()
    return True
