"""End-to-end joint-operation login in headless Chromium, against a live server.

Kit sync creates the tenant, app credential and users; the browser opens /oauth/login, picks a
user on the (mock) unified login page, comes back through the callback, sees the demo page with
the user's name and role, and logs out. A screenshot is kept in test-artifacts/.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.joint_operation import sync_tenant, use_identity_provider, user

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

webdriver = pytest.importorskip("selenium.webdriver")
# Skipped on a machine without the browser; never in CI, where .ci/run installs it.
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()) and not os.environ.get("CI"),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)


def test_login_and_logout_in_a_real_browser(
    app, marketplace, identity_provider, live_server, browser, monkeypatch
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import Select, WebDriverWait

    use_identity_provider(app, identity_provider, monkeypatch)
    joint = sync_tenant(
        app,
        marketplace,
        identity_provider,
        f"{live_server}/oauth/callback",
        [user("alice", "Alice 张", role="admin"), user("bob", "Bob")],
    )
    wait = WebDriverWait(browser, 15)

    browser.get(f"{live_server}/oauth/login")
    picker = wait.until(until.presence_of_element_located((By.NAME, "user")))
    assert browser.current_url.startswith(identity_provider.base_url)
    Select(picker).select_by_value(joint.login_value("alice"))
    browser.find_element(By.ID, "login").click()

    greeting = wait.until(until.presence_of_element_located((By.ID, "greeting")))
    assert browser.current_url == f"{live_server}/"
    assert greeting.text == "Welcome, Alice 张"
    assert browser.find_element(By.ID, "role").text == "admin"
    assert browser.find_element(By.ID, "tenant").text == "ACME 公司 (acme)"
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "browser-login.png"))

    browser.find_element(By.ID, "logout").click()
    wait.until(until.presence_of_element_located((By.ID, "login")))
    assert browser.current_url == f"{live_server}/"
    assert identity_provider.logouts[-1] == f"{live_server}/"
    browser.get(f"{live_server}/oauth/me")
    assert "not logged in" in browser.page_source
