"""The login routes and the demo page a merchant replaces with their product."""

import hmac
from urllib.parse import quote

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from app.oauth import service

bp = Blueprint("oauth", __name__, url_prefix="/oauth")
demo = Blueprint("demo", __name__)


# Docs: 联营kit账号登录 › 统一登录页 (zh-cn_topic_0070649141)
@bp.get("/login")
def login():
    """Send the browser to the marketplace's unified login page for this app."""
    app_id = current_app.config.get("KOOGALLERY_APP_ID") or ""
    return redirect(current_app.config["KOOGALLERY_LOGIN_URL"].format(appId=quote(app_id)))


# Docs: 联营kit账号登录 › Web登录流程 (zh-cn_topic_0070649442), 获取Token (zh-cn_topic_0070649448),
# 获取用户信息 (zh-cn_topic_0070649450)
@bp.get("/callback")
def callback():
    """Finish a login: code → tokens → user, checked against what authSync granted."""
    code = request.args.get("code")
    # The prose says tenant_id, the examples say tenant: accept both.
    tenant_id = request.args.get("tenant") or request.args.get("tenant_id")
    try:
        if not code or not tenant_id:
            raise service.LoginRefused(
                "Incomplete login", "The login link lacks its code or tenant.", 400
            )
        check_state(request.args.get("state"))
        tenant = service.active_tenant(tenant_id)
        token, userinfo = service.exchange_code(tenant, code)
        user = service.authorised_user(tenant, userinfo)
    except service.LoginRefused as refused:
        return login_error(refused)
    service.start_session(user, token)
    return redirect(url_for("demo.index"))


def check_state(state: str | None) -> None:
    """Check `state` when the login carries one; the unified login page sends none."""
    if state is None:
        return
    expected = session.pop("oauth_state", None)
    if expected is None or not hmac.compare_digest(expected.encode(), state.encode()):
        raise service.LoginRefused("Login link not ours", "Start the login again.", 400)


def login_error(refused: service.LoginRefused):
    """Show a refused login as a page, never a stack trace."""
    page = render_template("error.html", title=refused.title, detail=refused.detail)
    return page, refused.status


# Docs: 联营kit账号登录 › 获取用户信息 (zh-cn_topic_0070649450): what the app knows of the user
@bp.get("/me")
def me():
    """Return the logged-in user as JSON."""
    login = service.current_login()
    if login is None:
        return jsonify(error="not logged in"), 401
    user, tenant = login.user, login.tenant
    return jsonify(
        userName=user.user_name,
        name=user.name,
        role=user.role,
        orgCode=user.org_code,
        tenantId=tenant.tenant_id,
        tenantName=tenant.name,
    )


# Docs: 联营kit账号登录 › 登出 (zh-cn_topic_0070649145)
@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """End the local session, then the identity domain's (GET only asks to confirm)."""
    if request.method == "GET":
        # A link or an <img> must not log anyone out: the form below carries a token.
        return render_template("logout.html")
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent.encode(), service.csrf_token().encode()):
        return login_error(service.LoginRefused("The form expired", "Reload the page.", 400))
    tenant = service.end_session()
    home = url_for("demo.index", _external=True)
    if tenant is None or not tenant.domain_name:
        return redirect(home)
    return redirect(
        f"{tenant.domain_name}{service.LOGOUT_PATH}?redirect_url={quote(home, safe='')}"
    )


# Docs: none (the demo landing page of this project; replace it with your product)
@demo.get("/")
def index():
    """Show who is logged in, or how to log in."""
    return render_template("index.html", login=service.current_login())


@bp.app_context_processor
def oauth_helpers():
    return {"oauth_csrf_token": service.csrf_token}
