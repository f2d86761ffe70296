"""The console's password login, its session and CSRF tokens, and the login-failure limit.

One password for the merchant's operators (KOOGALLERY_CONSOLE_PASSWORD, clear or a werkzeug
hash). Without it the console is closed. The session lasts SESSION_HOURS; every form carries a
token bound to the session.
"""

import functools
import hmac
import secrets
from datetime import datetime, timedelta

from flask import abort, current_app, redirect, request, session, url_for
from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import ConsoleLoginFailure, utcnow

SESSION_KEY = "console"
SESSION_HOURS = 8
# Ten wrong passwords from one address in ten minutes close the door for the rest of them.
MAX_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=10)
HASH_PREFIXES = ("scrypt:", "pbkdf2:")


def password_hash() -> str | None:
    """Return the configured password as a hash (hashing a clear one once per process)."""
    configured = current_app.config.get("KOOGALLERY_CONSOLE_PASSWORD")
    if not configured:
        return None
    if configured.startswith(HASH_PREFIXES):
        return configured
    cache = current_app.extensions.setdefault("koogallery_console", {})
    if cache.get("clear") != configured:
        cache.update(clear=configured, hash=generate_password_hash(configured))
    return cache["hash"]


def console_open() -> bool:
    """Tell whether the console may be used at all (a password is configured)."""
    return password_hash() is not None


def too_many_failures(remote_addr: str) -> bool:
    """Tell whether this address has guessed wrong too often lately."""
    since = utcnow() - FAILURE_WINDOW
    failures = db.session.scalar(
        select(func.count())
        .select_from(ConsoleLoginFailure)
        .where(ConsoleLoginFailure.remote_addr == remote_addr, ConsoleLoginFailure.at >= since)
    )
    return failures >= MAX_FAILURES


def check_password(given: str, remote_addr: str) -> bool:
    """Check a login attempt; record a failure. The password itself is never logged."""
    if check_password_hash(password_hash(), given):
        db.session.execute(
            delete(ConsoleLoginFailure).where(ConsoleLoginFailure.remote_addr == remote_addr)
        )
        db.session.commit()
        return True
    db.session.add(ConsoleLoginFailure(remote_addr=remote_addr))
    db.session.commit()
    return False


def start_session() -> None:
    """Log the operator in with a fresh session (its old contents are dropped)."""
    session.clear()
    session[SESSION_KEY] = {"since": utcnow().isoformat(), "csrf": secrets.token_urlsafe(24)}


def logged_in() -> bool:
    """Tell whether the request carries a live console session."""
    data = session.get(SESSION_KEY)
    if not data:
        return False
    since = datetime.fromisoformat(data["since"])
    return utcnow() - since < timedelta(hours=SESSION_HOURS)


def login_required(view):
    """Send anonymous visitors to the login page; close the console without a password."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not console_open():
            abort(404)
        if not logged_in():
            return redirect(url_for("console.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapped


def csrf_token() -> str:
    """Return the token forms must send back (a fresh one before login)."""
    data = session.get(SESSION_KEY)
    if data:
        return data["csrf"]
    token = session.setdefault("console_login_csrf", secrets.token_urlsafe(24))
    return token


def check_csrf() -> None:
    """Refuse a POST whose form token does not match the session's."""
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent.encode(), csrf_token().encode()):
        abort(400, "the form expired; reload the page")
