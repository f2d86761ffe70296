"""A mock of a tenant's identity domain (OneAccess) and the unified login page, over real HTTPS.

It serves the login flow of kit-oauth.md §2: the marketplace's unified login page, which sends the
browser back to the app's registered callback with `?code=…&tenant=…`, and the identity domain's
token, userinfo and logout endpoints with their documented answers and errors. Start one by hand
with `python -m app.marketplace.mock_idp`.

Where the documentation is silent, the mock picks what OneAccess (a Spring Security OAuth server)
does, or the stricter choice:
* a code presented to the token endpoint is consumed whatever the outcome, even when the client
  credentials are wrong, so a client can never count on retrying one;
* checks run in this order: client credentials (401 "Bad client credentials", also for an unknown
  or missing client), grant type, code or refresh token (400 invalid_grant "Invalid authorization
  code" for both), `redirect_uri` when sent (400 invalid_grant "Redirect URI mismatch"), then the
  client the grant was issued to (401 "Client ID mismatch");
* a refresh rotates: the old refresh token and the access token issued with it stop working;
* userinfo refusals are 401 `unauthorized` with a `WWW-Authenticate: Bearer` header;
* `down` takes the identity domain (`/api/v1/…`) down with an HTML 503, as a gateway would answer;
  the unified login page belongs to the marketplace and stays up;
* a logout without an http(s) `redirect_url` is 400 `invalid_request`.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import html
import json
import secrets
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from app.marketplace.loopback import LoopbackHttpsServer

LOGIN_PATH = "/unified-login/"
TOKEN_PATH = "/api/v1/oauth2/token"  # noqa: S105 - a path, not a secret
USERINFO_PATH = "/api/v1/oauth2/userinfo"
LOGOUT_PATH = "/api/v1/logout"

# kit-oauth.md §2: tokens carry this one scope; codes are valid 5 minutes (OneAccess
# IssueOAuthAuthCode), access tokens 7200 s and refresh tokens 30 days by default.
SCOPE = "get_user_info"
AUTHORIZATION_CODE_LIFETIME = 300
DEFAULT_ACCESS_TOKEN_LIFETIME = 7200
DEFAULT_REFRESH_TOKEN_LIFETIME = 30 * 86400

CLIENT_AUTH_BASIC = "client_secret_basic"
CLIENT_AUTH_POST = "client_secret_post"

# The documented error answers (kit-oauth.md §2, token and userinfo).
INVALID_CODE = {"error": "invalid_grant", "error_description": "Invalid authorization code"}
BAD_CLIENT_CREDENTIALS = {"error": "invalid_client", "error_description": "Bad client credentials"}
CLIENT_ID_MISMATCH = {"error": "invalid_client", "error_description": "Client ID mismatch"}
UNSUPPORTED_GRANT_TYPE = {"error": "unsupported_grant_type"}
REDIRECT_URI_MISMATCH = {"error": "invalid_grant", "error_description": "Redirect URI mismatch"}

DOWN_PAGE = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
LOGIN_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Unified login (mock)</title></head>
<body>
<h1>Log in to {app_id}</h1>
<form method="post" action="{action}">
<input type="hidden" name="appId" value="{app_id}">
<label for="user">Account</label>
<select name="user" id="user">
{options}
</select>
<button type="submit" id="login">Log in</button>
</form>
</body>
</html>
"""
# The real page keeps its route and appId in the URL fragment, which browsers never send: move
# them into the query so that login URLs in either form work.
FRAGMENT_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Unified login (mock)</title></head>
<body>
<script>
const query = location.hash.split("?")[1];
if (query) location.replace(location.pathname + "?" + query);
</script>
<p>No appId: open <code>/unified-login/?ind=UNOP&amp;appId=…</code>.</p>
</body>
</html>
"""


@dataclass(frozen=True)
class RegisteredApp:
    """An app credential: its OAuth client and the login address registered with it."""

    app_id: str
    client_id: str
    client_secret: str = field(repr=False)
    callback_url: str


@dataclass(frozen=True)
class MockUser:
    """A tenant's user who can log in; `id` is the identity domain's own user id."""

    tenant_id: str
    user_name: str
    name: str
    role: str = "user"
    email: str | None = None
    mobile: str | None = None
    organization_code: str | None = None
    organization_name: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def login_value(self) -> str:
        """Return the value the login form posts for this user."""
        return f"{self.tenant_id}/{self.user_name}"


@dataclass(frozen=True)
class TokenRequest:
    """One token request the mock received and how it answered, kept for assertions."""

    grant_type: str | None
    client_id: str | None
    client_auth: str | None
    status: int
    error: str | None
    # The form as received, secrets included: for assertions only, so kept out of the repr.
    form: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class _Grant:
    """What a code, access token or refresh token stands for."""

    client_id: str
    tenant_id: str
    user_name: str
    expires_at: float
    redirect_uri: str | None = None
    # A refresh token remembers the access token issued with it, which a refresh revokes.
    access_token: str | None = field(default=None, repr=False)


class MockIdentityProvider(LoopbackHttpsServer):
    """Serve the unified login page and an identity domain on 127.0.0.1 over HTTPS."""

    name = "mock-idp"

    def __init__(
        self,
        *,
        access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
        refresh_token_lifetime: int = DEFAULT_REFRESH_TOKEN_LIFETIME,
        port: int = 0,
        log_requests: bool = False,
    ):
        super().__init__(port=port, log_requests=log_requests)
        self.access_token_lifetime = access_token_lifetime
        self.refresh_token_lifetime = refresh_token_lifetime
        self.authorization_code_lifetime = AUTHORIZATION_CODE_LIFETIME
        # True answers every identity-domain endpoint with 503.
        self.down = False
        self.token_requests: list[TokenRequest] = []
        # The redirect_url of every logout, in order.
        self.logouts: list[str] = []
        self._apps: dict[str, RegisteredApp] = {}
        self._users: dict[tuple[str, str], MockUser] = {}
        self._codes: dict[str, _Grant] = {}
        self._access_tokens: dict[str, _Grant] = {}
        self._refresh_tokens: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def register_app(
        self, app_id: str, client_id: str, client_secret: str, callback_url: str
    ) -> RegisteredApp:
        """Register an app credential whose login page sends users to `callback_url`."""
        app = RegisteredApp(app_id, client_id, client_secret, callback_url)
        with self._lock:
            self._apps[app_id] = app
        return app

    def add_user(
        self,
        tenant_id: str,
        user_name: str,
        *,
        name: str,
        role: str = "user",
        email: str | None = None,
        mobile: str | None = None,
        organization_code: str | None = None,
        organization_name: str | None = None,
    ) -> MockUser:
        """Add a user of `tenant_id` who can log in on the unified login page."""
        user = MockUser(
            tenant_id,
            user_name,
            name,
            role,
            email,
            mobile,
            organization_code,
            organization_name,
        )
        with self._lock:
            self._users[(tenant_id, user_name)] = user
        return user

    def login_url(self, app_id: str) -> str:
        """Return this mock's unified login URL for `app_id`, with the route in the query."""
        return f"{self.base_url}{LOGIN_PATH}?{urlencode({'ind': 'UNOP', 'appId': app_id})}"

    def __call__(self, environ: dict, start_response):
        """Answer one WSGI request."""
        response = self._respond(Request(environ))
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        if request.path.rstrip("/") == LOGIN_PATH.rstrip("/"):
            if request.method == "GET":
                return self._login_page(request)
            if request.method == "POST":
                return self._login(request)
            return _page(405, "Method not allowed.", headers={"Allow": "GET, POST"})
        routes = {
            TOKEN_PATH: ("POST", self._token),
            USERINFO_PATH: ("GET", self._userinfo),
            LOGOUT_PATH: ("GET", self._logout),
        }
        route = routes.get(request.path.rstrip("/"))
        if route is None:
            return _page(404, "Not found.")
        if self.down:
            return Response(DOWN_PAGE, status=503, content_type="text/html; charset=utf-8")
        method, handler = route
        if request.method != method:
            return _json(405, {"error": "method_not_allowed"}, {"Allow": method})
        return handler(request)

    # Docs: 联营kit账号登录 › 统一登录页 (zh-cn_topic_0070649141)
    def _login_page(self, request: Request) -> Response:
        app_id = request.args.get("appId")
        if not app_id:
            return Response(FRAGMENT_PAGE, content_type="text/html; charset=utf-8")
        with self._lock:
            app = self._apps.get(app_id)
            users = list(self._users.values())
        if app is None:
            return _page(404, f"Unknown appId {app_id}.")
        options = "\n".join(
            f'<option value="{html.escape(user.login_value)}">{html.escape(user.name)}</option>'
            for user in users
        )
        page = LOGIN_PAGE.format(
            app_id=html.escape(app_id), action=html.escape(LOGIN_PATH), options=options
        )
        return Response(page, content_type="text/html; charset=utf-8")

    # Docs: 联营kit账号登录 › Web登录时序 (zh-cn_topic_0070649442)
    def _login(self, request: Request) -> Response:
        app_id = request.form.get("appId") or request.args.get("appId") or ""
        login_value = request.form.get("user", "")
        with self._lock:
            app = self._apps.get(app_id)
            user = next((u for u in self._users.values() if u.login_value == login_value), None)
            if app is None:
                return _page(404, f"Unknown appId {app_id}.")
            if user is None:
                return _page(400, "Choose a registered user.")
            code = secrets.token_urlsafe(16)
            self._codes[code] = _Grant(
                client_id=app.client_id,
                tenant_id=user.tenant_id,
                user_name=user.user_name,
                expires_at=time.monotonic() + self.authorization_code_lifetime,
                redirect_uri=app.callback_url,
            )
        # kit-oauth.md §2 step 2: the callback gets `code` and `tenant` (no state).
        return redirect(_add_query(app.callback_url, code=code, tenant=user.tenant_id), 302)

    # Docs: 联营kit账号登录 › 获取/刷新Access Token (zh-cn_topic_0070649448, 0070649449)
    def _token(self, request: Request) -> Response:
        form = request.form
        client_id, client_secret, client_auth = _client_credentials(request)
        with self._lock:
            status, answer = self._token_answer(
                form.to_dict(), client_id, client_secret, client_auth
            )
            self.token_requests.append(
                TokenRequest(
                    grant_type=form.get("grant_type"),
                    client_id=client_id,
                    client_auth=client_auth,
                    status=status,
                    error=answer.get("error"),
                    form=form.to_dict(),
                )
            )
        # RFC 6749 §5.1: token answers must not be cached.
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if status == 401 and client_auth == CLIENT_AUTH_BASIC:
            headers["WWW-Authenticate"] = 'Basic realm="oauth2/client"'
        return _json(status, answer, headers)

    def _token_answer(
        self,
        form: dict[str, str],
        client_id: str | None,
        client_secret: str | None,
        client_auth: str | None,
    ) -> tuple[int, dict[str, Any]]:
        """Decide one token request; the caller holds the lock."""
        grant_type = form.get("grant_type")
        code = None
        if grant_type == "authorization_code":
            # Single use (kit-oauth.md §2 step 4): gone once presented, whatever happens next.
            code = self._codes.pop(form.get("code", ""), None)
        app = next((a for a in self._apps.values() if a.client_id == client_id), None)
        basic = client_auth == CLIENT_AUTH_BASIC
        if app is None or client_secret is None or not _secret_matches(app, client_secret, basic):
            return 401, BAD_CLIENT_CREDENTIALS
        grant_handlers = {
            "authorization_code": lambda: self._exchange_code(form, app, code),
            "refresh_token": lambda: self._refresh(form, app),
        }
        handler = grant_handlers.get(grant_type or "")
        if handler is None:
            return 400, UNSUPPORTED_GRANT_TYPE
        return handler()

    def _exchange_code(
        self, form: dict[str, str], app: RegisteredApp, code: _Grant | None
    ) -> tuple[int, dict[str, Any]]:
        if code is None or code.expires_at <= time.monotonic():
            return 400, INVALID_CODE
        # redirect_uri is optional; when sent it must be the address the code was issued for.
        redirect_uri = form.get("redirect_uri")
        if redirect_uri and redirect_uri != code.redirect_uri:
            return 400, REDIRECT_URI_MISMATCH
        if code.client_id != app.client_id:
            return 401, CLIENT_ID_MISMATCH
        return 200, self._issue_tokens(code)

    def _refresh(self, form: dict[str, str], app: RegisteredApp) -> tuple[int, dict[str, Any]]:
        presented = form.get("refresh_token", "")
        grant = self._refresh_tokens.get(presented)
        if grant is None or grant.expires_at <= time.monotonic():
            self._refresh_tokens.pop(presented, None)
            # kit-oauth.md §2 step 7: invalid_grant means "log in again".
            return 400, INVALID_CODE
        if grant.client_id != app.client_id:
            return 401, CLIENT_ID_MISMATCH
        del self._refresh_tokens[presented]
        if grant.access_token is not None:
            self._access_tokens.pop(grant.access_token, None)
        return 200, self._issue_tokens(grant)

    def _issue_tokens(self, grant: _Grant) -> dict[str, Any]:
        """Issue an access and a refresh token for the grant's client and user."""
        now = time.monotonic()
        access_token = secrets.token_urlsafe(32)
        refresh_token = secrets.token_urlsafe(32)
        self._access_tokens[access_token] = _Grant(
            grant.client_id, grant.tenant_id, grant.user_name, now + self.access_token_lifetime
        )
        self._refresh_tokens[refresh_token] = _Grant(
            grant.client_id,
            grant.tenant_id,
            grant.user_name,
            now + self.refresh_token_lifetime,
            access_token=access_token,
        )
        # kit-oauth.md §2 step 4: these five fields, no id_token.
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "scope": SCOPE,
            "refresh_token": refresh_token,
        }

    # Docs: 联营kit账号登录 › 获取用户信息 (zh-cn_topic_0070649450)
    def _userinfo(self, request: Request) -> Response:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            return _unauthorized("Full authentication is required to access this resource")
        with self._lock:
            grant = self._access_tokens.get(presented)
            if grant is not None and grant.expires_at <= time.monotonic():
                del self._access_tokens[presented]
                return _unauthorized("Access token expired")
            user = self._users.get((grant.tenant_id, grant.user_name)) if grant else None
        if user is None:
            return _unauthorized("Invalid access token")
        # kit-oauth.md §2 step 5: these fields; what the identity domain does not know is null.
        return _json(
            200,
            {
                "id": user.id,
                "userName": user.user_name,
                "name": user.name,
                "email": user.email,
                "mobile": user.mobile,
                "role": user.role,
                "organizationName": user.organization_name,
                "organizationCode": user.organization_code,
                "userId": user.id,
                "projectName": None,
                "tenant": user.tenant_id,
            },
        )

    # Docs: 联营kit账号登录 › 退出登录 (zh-cn_topic_0070649145)
    def _logout(self, request: Request) -> Response:
        redirect_url = request.args.get("redirect_url", "")
        target = urlsplit(redirect_url)
        if target.scheme not in ("http", "https") or not target.netloc:
            return _json(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "redirect_url must be an http or https URL",
                },
            )
        with self._lock:
            self.logouts.append(redirect_url)
        return redirect(redirect_url, 302)


def _client_credentials(request: Request) -> tuple[str | None, str | None, str | None]:
    """Return the client id, secret and method: HTTP Basic first, else the form fields."""
    authorization = request.authorization
    if authorization is not None and authorization.type == "basic":
        return authorization.username, authorization.password, CLIENT_AUTH_BASIC
    client_id = request.form.get("client_id")
    if client_id is None:
        return None, None, None
    return client_id, request.form.get("client_secret"), CLIENT_AUTH_POST


def _secret_matches(app: RegisteredApp, given: str, basic: bool) -> bool:
    """Compare a presented client secret with the registered one in constant time."""
    expected = app.client_secret.encode()
    if hmac.compare_digest(expected, given.encode()):
        return True
    # RFC 6749 §2.3.1 form-encodes Basic credentials but many clients send them raw: accept both.
    return basic and hmac.compare_digest(expected, unquote_plus(given).encode())


def _add_query(url: str, **params: str) -> str:
    """Append parameters to a URL that may already have a query."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        headers=headers,
        content_type="application/json;charset=UTF-8",
    )


def _unauthorized(description: str) -> Response:
    return _json(
        401,
        {"error": "unauthorized", "error_description": description},
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _page(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = f"<!doctype html><html><body><p>{html.escape(message)}</p></body></html>"
    return Response(body, status=status, headers=headers, content_type="text/html; charset=utf-8")


def main(argv: list[str] | None = None) -> None:
    """Run the mock in the foreground with one demo app and user, printing its settings."""
    parser = argparse.ArgumentParser(
        prog="python -m app.marketplace.mock_idp",
        description="Run a mock unified login page and identity domain on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any)")
    parser.add_argument(
        "--callback-url",
        default="http://127.0.0.1:5000/oauth/callback",
        help="the app's login address registered with the demo app credential",
    )
    arguments = parser.parse_args(argv)
    # Leave through the context manager on `kill` too, so the certificate files are deleted.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    with MockIdentityProvider(port=arguments.port, log_requests=True) as mock:
        app = mock.register_app(
            "mock-app-id", "mock-client-id", "mock-client-secret", arguments.callback_url
        )
        user = mock.add_user(
            "mock-tenant-id",
            "mock_user_01",
            name="测试用户1",
            role="admin",
            email="mock_user_01@example.com",
            organization_code="00000001",
            organization_name="产品部",
        )
        print(f"Mock unified login and identity domain at {mock.base_url} (Ctrl+C to stop)\n")
        print("Point the app at it (mock values; the CA file is deleted when the mock stops):")
        print(f"  KOOGALLERY_LOGIN_URL={mock.base_url}{LOGIN_PATH}")
        print(f"  REQUESTS_CA_BUNDLE={mock.ca_bundle}")
        print("\nPush the demo tenant and app credential with tenantSync and applicationSync:")
        print(f"  tenantId={user.tenant_id}  domainName={mock.base_url}")
        print(f"  appId={app.app_id}  clientId={app.client_id}  clientSecret={app.client_secret}")
        print(f"\nLogin page: {mock.login_url(app.app_id)}")
        print(f"Demo user: {user.login_value} ({user.name}) -> {app.callback_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
