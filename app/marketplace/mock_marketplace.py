"""One mock marketplace on one HTTPS port: the open-API gateway and the identity domain together.

The merchant server talks to the marketplace's open API (open-api.md) and to a tenant's identity
domain with the unified login page (kit-oauth.md §2). This serves both from one loopback address,
so one base URL and one CA bundle cover every setting: paths under `/api/mkp-openapi-public/` go
to a `MockOpenApi`, the login page and the `/api/v1/…` identity endpoints to a
`MockIdentityProvider`. Neither is started itself; each is only the WSGI app behind this server.

Run it with `python -m app.marketplace.mock_marketplace` or `flask --app wsgi market mock`, paste
the printed settings into `.env`, and restart the merchant server.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.wrappers import Response

from app.marketplace.loopback import LoopbackHttpsServer
from app.marketplace.mock_api import MOCK_AK, MOCK_SK, MOCK_USAGE_KEY, MockOpenApi
from app.marketplace.mock_idp import (
    LOGIN_PATH,
    LOGOUT_PATH,
    MockIdentityProvider,
    MockUser,
    RegisteredApp,
)
from config import parse_key_ring

DEFAULT_PORT = 8443

# Where each inner mock's paths begin; a prefix matches whole path segments only.
OPEN_API_PREFIX = "/api/mkp-openapi-public"
IDENTITY_PREFIXES = (LOGIN_PATH.rstrip("/"), "/api/v1/oauth2", LOGOUT_PATH)

# The demo login and 授权码 registered on request, with the values mock_idp's own demo uses.
DEMO_APP_ID = "mock-app-id"
DEMO_CLIENT_ID = "mock-client-id"
DEMO_CLIENT_SECRET = "mock-client-secret"  # noqa: S105 - a published mock value
DEMO_CALLBACK_URL = "http://127.0.0.1:5000/oauth/callback"
DEMO_TENANT_ID = "mock-tenant-id"
DEMO_USER_NAME = "mock_user_01"
DEMO_LICENSE_CODE = "MOCK-LICENSE-CODE-0001"
# The product and order of the spec's mock order MOCKPERIODYEARNEW (open-api.md, 查询订单).
DEMO_PRODUCT_ID = "OFFI846204237451911168"
DEMO_ORDER_ID = "MOCKPERIODYEARNEW"


@dataclass(frozen=True)
class Demo:
    """What `register_demo` added: an app credential, a user who can log in, a 授权码."""

    app: RegisteredApp
    user: MockUser
    license_code: str


class MockMarketplace(LoopbackHttpsServer):
    """Serve the mock open API and the mock identity domain on one 127.0.0.1 HTTPS port."""

    name = "mock-marketplace"

    def __init__(
        self,
        ak: str = MOCK_AK,
        sk: str = MOCK_SK,
        usage_key: str = MOCK_USAGE_KEY,
        *,
        port: int = 0,
        log_requests: bool = False,
    ):
        super().__init__(port=port, log_requests=log_requests)
        # Never started: each is a WSGI app behind this server's port.
        self.open_api = MockOpenApi(ak, sk, usage_key)
        self.identity = MockIdentityProvider()

    def start(self):
        """Serve both mocks and give them this server's address and CA bundle."""
        super().start()
        # Only their helpers read these (a login URL, a client pointed at `mock.base_url`); the
        # answers themselves never depend on the address they are served at.
        for inner in (self.open_api, self.identity):
            inner.base_url, inner.ca_bundle = self.base_url, self.ca_bundle
        return self

    def stop(self) -> None:
        """Stop serving and delete the certificate files."""
        super().stop()
        for inner in (self.open_api, self.identity):
            inner.base_url = inner.ca_bundle = None

    def __call__(self, environ: dict, start_response):
        """Hand one request to the open API or the identity domain, by its path."""
        path = environ.get("PATH_INFO", "")
        if _under(path, OPEN_API_PREFIX):
            return self.open_api(environ, start_response)
        if any(_under(path, prefix) for prefix in IDENTITY_PREFIXES):
            return self.identity(environ, start_response)
        return _not_found(path)(environ, start_response)

    def login_url(self, app_id: str) -> str:
        """Return the unified login URL for `app_id`, with the route in the query."""
        return self.identity.login_url(app_id)


def register_demo(marketplace: MockMarketplace, callback_url: str = DEMO_CALLBACK_URL) -> Demo:
    """Register the demo app credential, user and 授权码 that the printed instructions name."""
    app = marketplace.identity.register_app(
        DEMO_APP_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, callback_url
    )
    user = marketplace.identity.add_user(
        DEMO_TENANT_ID,
        DEMO_USER_NAME,
        name="测试用户1",
        role="admin",
        email="mock_user_01@example.com",
        organization_code="00000001",
        organization_name="产品部",
    )
    marketplace.open_api.add_license_code(
        DEMO_LICENSE_CODE, product_id=DEMO_PRODUCT_ID, order_id=DEMO_ORDER_ID
    )
    return Demo(app, user, DEMO_LICENSE_CODE)


def env_settings(
    marketplace: MockMarketplace, *, app_id: str | None = None, include_basic_key: bool = True
) -> str:
    """Return the `.env` lines that point the merchant server at a running mock marketplace."""
    if marketplace.base_url is None or marketplace.ca_bundle is None:
        raise RuntimeError("start the mock marketplace before asking for its settings")
    base_url, ca_bundle = marketplace.base_url, marketplace.ca_bundle
    open_api = marketplace.open_api
    lines = [
        "# Mock KooGallery marketplace (mock values; the CA file is deleted when it stops)",
        f"KOOGALLERY_AK={open_api.ak}",
        f"KOOGALLERY_SK={open_api.sk}",
        f"KOOGALLERY_API_BASE={base_url}",
        f"KOOGALLERY_API_CA_BUNDLE={ca_bundle}",
        f"KOOGALLERY_IDP_CA_BUNDLE={ca_bundle}",
        # The real page keeps its route in the URL fragment; the mock reads it from the query.
        f"KOOGALLERY_LOGIN_URL={base_url}{LOGIN_PATH}?ind=UNOP&appId={{appId}}",
    ]
    if include_basic_key:
        lines += [
            "# Signs usage pushes, and also verifies the marketplace's calls to this server:",
            "# to keep your own key, run the mock with --usage-key set to it instead.",
            f"KOOGALLERY_BASIC_KEY={open_api.usage_key}",
        ]
    if app_id:
        lines.append(f"KOOGALLERY_APP_ID={app_id}")
    return "\n".join(lines)


def describe(
    marketplace: MockMarketplace, *, demo: Demo | None = None, include_basic_key: bool = True
) -> str:
    """Return what the foreground mock prints: its address, CA bundle, settings and demo data."""
    settings = env_settings(
        marketplace,
        app_id=demo.app.app_id if demo else None,
        include_basic_key=include_basic_key,
    )
    lines = [
        f"Mock KooGallery marketplace at {marketplace.base_url} (Ctrl+C to stop)",
        f"CA bundle: {marketplace.ca_bundle}",
        "",
        "Paste into the merchant server's .env, then restart it:",
        "",
        settings,
        "",
        f"Mock orders: {', '.join(marketplace.open_api.orders)}",
    ]
    if demo is not None:
        app, user = demo.app, demo.user
        lines += [
            "",
            "Push the demo tenant and app credential with tenantSync and applicationSync:",
            f"  tenantId={user.tenant_id}  domainName={marketplace.base_url}",
            f"  appId={app.app_id}  clientId={app.client_id}  clientSecret={app.client_secret}",
            f"Login page: {marketplace.login_url(app.app_id)}",
            f"Demo user: {user.login_value} ({user.name}) -> {app.callback_url}",
            f"Demo 授权码: {demo.license_code} (order {DEMO_ORDER_ID}, product {DEMO_PRODUCT_ID})",
        ]
    return "\n".join(lines)


def serve(
    marketplace: MockMarketplace,
    *,
    demo_callback_url: str | None = None,
    include_basic_key: bool = True,
    echo: Callable[[str], None] | None = None,
) -> None:
    """Start the mock, print its settings, and serve until SIGINT or SIGTERM."""
    echo = echo or functools.partial(print, flush=True)
    # Leave through the context manager on `kill` too, so the certificate files are deleted.
    previous_handler = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        with marketplace:
            demo = register_demo(marketplace, demo_callback_url) if demo_callback_url else None
            echo(describe(marketplace, demo=demo, include_basic_key=include_basic_key))
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def default_usage_key(config: Mapping) -> str:
    """Return the key usage pushes from this app are signed with: its first 基础接口 key."""
    # MarketplaceClient.from_config signs with the first key of the ring (security.md §8).
    basic_keys = parse_key_ring(config.get("KOOGALLERY_BASIC_KEY"))
    return basic_keys[0] if basic_keys else MOCK_USAGE_KEY


@click.command("mock")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option(
    "--usage-key",
    help="Key usage pushes must be signed with. Default: the first KOOGALLERY_BASIC_KEY.",
)
@click.option("--demo", is_flag=True, help="Register a demo app credential, user and 授权码.")
@click.option(
    "--callback-url",
    help="The demo app's login address. Default: KOOGALLERY_OAUTH_REDIRECT_URI, "
    f"else {DEMO_CALLBACK_URL}.",
)
@with_appcontext
def mock_command(port: int, usage_key: str | None, demo: bool, callback_url: str | None) -> None:
    """Run a mock marketplace (open API and login) on 127.0.0.1 until interrupted."""
    config = current_app.config
    usage_key = usage_key or default_usage_key(config)
    if demo:
        callback_url = (
            callback_url or config.get("KOOGALLERY_OAUTH_REDIRECT_URI") or DEMO_CALLBACK_URL
        )
    serve(
        MockMarketplace(usage_key=usage_key, port=port, log_requests=True),
        demo_callback_url=callback_url if demo else None,
        # The app's own key needs no new setting; any other must be pasted for pushes to verify.
        include_basic_key=usage_key not in parse_key_ring(config.get("KOOGALLERY_BASIC_KEY")),
        echo=click.echo,
    )


def main(argv: list[str] | None = None) -> None:
    """Run the mock marketplace in the foreground until interrupted, printing its settings."""
    parser = argparse.ArgumentParser(
        prog="python -m app.marketplace.mock_marketplace",
        description="Run a mock KooGallery marketplace (open API and login) on 127.0.0.1.",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port to listen on (default: %(default)s; 0 picks a free one)",
    )
    parser.add_argument(
        "--usage-key",
        default=MOCK_USAGE_KEY,
        help="key usage pushes must be signed with (default: %(default)s)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="register a demo app credential, user and 授权码"
    )
    parser.add_argument(
        "--callback-url",
        default=DEMO_CALLBACK_URL,
        help="the demo app's login address (default: %(default)s)",
    )
    arguments = parser.parse_args(argv)
    serve(
        MockMarketplace(usage_key=arguments.usage_key, port=arguments.port, log_requests=True),
        demo_callback_url=arguments.callback_url if arguments.demo else None,
    )


def _under(path: str, prefix: str) -> bool:
    """Tell whether `path` is `prefix` or below it, on a segment boundary."""
    return path == prefix or path.startswith(prefix + "/")


def _not_found(path: str) -> Response:
    body = {
        "error": "not_found",
        "error_description": (
            f"No mock serves {path}: the open API is under {OPEN_API_PREFIX}/, "
            f"the identity domain under {', '.join(IDENTITY_PREFIXES)}."
        ),
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=404,
        content_type="application/json;charset=UTF-8",
    )


if __name__ == "__main__":
    main()
