"""The operator console in headless Chromium, against a live server full of simulated traffic.

The marketplace simulator runs whole lifecycles (with their wrong-key and stale-timestamp calls),
one purchase ends as a dead letter, and a kit user is named like a script. An operator logs in,
reads the overview, an instance's history, a failed call's hint and a tenant (the script shown as
text), and retries the dead letter. Screenshots are kept in test-artifacts/.
"""

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.marketplace.lifecycle import PASS, run_lifecycle
from app.marketplace.simulator import Keys
from app.models import Instance, Job, JobState
from app.security import load_private_key
from tests.conftest import CHROMEDRIVER, CHROMIUM

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "correct horse battery staple"
SCRIPT_USER = "<script>alert(1)</script>"
TENANT_ID = "tenant-console"
LIFECYCLES = {"v2": "/saas", "v1": "/saas", "kit-v2": "/saas", "license": "/license"}

pytest.importorskip("selenium.webdriver")
# Skipped on a machine without the browser; never in CI, where .ci/run installs it.
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()) and not os.environ.get("CI"),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)


def simulate_traffic(app, live_server):
    """Run the simulator's lifecycles; their negative steps leave failed calls in the log."""
    public_key = load_private_key(app.config["KOOGALLERY_RSA_PRIVATE_KEY"]).public_key()
    for protocol, path in LIFECYCLES.items():
        results = run_lifecycle(
            protocol, live_server + path, Keys(app.config), rsa_public_key=public_key
        )
        assert [r.line() for r in results if r.status != PASS] == []


def leave_a_dead_letter(marketplace, use_provisioner):
    """Buy while the backend is down: the one allowed attempt fails and the job is dead."""
    use_provisioner("tests.provisioners:AlwaysFailingProvisioner")
    marketplace.saas_v2(
        "newInstance", orderId="CS-DEAD", orderLineId="CS-DEAD-1", businessId="b-dead"
    )
    # The backend is back: a retry from the console succeeds.
    use_provisioner("tests.provisioners:RecordingProvisioner")


def sync_a_tenant_with_a_script_for_a_name(marketplace):
    """A tenant whose user name is markup, and a department tree, through kit sync."""
    common = {"instanceId": "", "tenantId": TENANT_ID, "testFlag": 1}
    users = [
        {"userName": "alice", "name": "Alice 张", "orgCode": "2", "role": "admin"},
        {"userName": SCRIPT_USER, "name": SCRIPT_USER, "orgCode": "3", "role": "user"},
    ]
    orgs = [
        {"orgCode": "1", "orgName": "总部", "parentCode": ""},
        {"orgCode": "2", "orgName": "产品部", "parentCode": "1"},
        {"orgCode": "3", "orgName": "研发部", "parentCode": "1"},
    ]
    for interface, body in (
        (
            "tenantSync",
            {
                **common,
                "orderId": "",
                "tenantCode": "acme",
                "name": "ACME 公司",
                "domainName": "https://acme.tenantaccount.example",
                "flag": 1,
            },
        ),
        ("authSync", {**common, "appId": "app-console", "userList": users, "flag": 1}),
        ("allOrgSync", {**common, "orgInfoList": orgs}),
    ):
        answer = marketplace.kit_post(f"/saas/produceAPI/v2/{interface}", body).json
        assert answer["resultCode"] == "000000", (interface, answer)


def screenshot(browser, name: str) -> None:
    """Save the whole page, not just the window: grow the window to the page's height first."""
    # Headless Chromium reports no frame, yet the window is taller than the page it shows.
    frame = 700 - browser.execute_script("return window.innerHeight")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1000, max(700, height + frame))
    assert browser.save_screenshot(str(ARTIFACTS / name))
    browser.set_window_size(1000, 700)


def test_an_operator_reads_the_console_and_retries_a_dead_letter(
    app, marketplace, live_server, use_provisioner, browser, monkeypatch
):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setitem(app.config, "KOOGALLERY_CONSOLE_PASSWORD", PASSWORD)
    simulate_traffic(app, live_server)
    leave_a_dead_letter(marketplace, use_provisioner)
    sync_a_tenant_with_a_script_for_a_name(marketplace)
    with app.app_context():
        lifecycle_instance = db.session.scalars(
            select(Instance.instance_id).where(
                Instance.family == "saas", Instance.protocol == "v2", Instance.state == "released"
            )
        ).one()
        dead_job = db.session.scalars(select(Job.id).where(Job.state == JobState.DEAD)).one()
    wait = WebDriverWait(browser, 15)
    ARTIFACTS.mkdir(exist_ok=True)

    # Anonymous: sent to the login page, then back to the overview.
    browser.get(f"{live_server}/console/")
    wait.until(until.presence_of_element_located((By.ID, "password"))).send_keys(PASSWORD)
    assert browser.current_url.startswith(f"{live_server}/console/login")
    browser.find_element(By.ID, "login").click()
    wait.until(until.presence_of_element_located((By.ID, "chart")))
    assert browser.current_url == f"{live_server}/console/"
    failed_rows = browser.find_elements(
        By.XPATH, "//h2[.='Latest failed calls']/following-sibling::table[1]//tr[@class='failed']"
    )
    assert failed_rows
    screenshot(browser, "console-overview.png")

    # An instance's whole life, from the list.
    browser.find_element(By.LINK_TEXT, "Instances").click()
    wait.until(until.presence_of_element_located((By.ID, "instances")))
    browser.find_element(By.LINK_TEXT, lifecycle_instance).click()
    history = wait.until(until.presence_of_element_located((By.ID, "history")))
    events = [row.text for row in history.find_elements(By.CSS_SELECTOR, "tr td:nth-child(2)")]
    for event in ("created", "provisioned", "renewed", "frozen", "unfrozen", "upgraded"):
        assert event in events
    assert events[-1] == "released"
    for credentials in browser.find_elements(By.CSS_SELECTOR, "details#credentials summary"):
        credentials.click()
    screenshot(browser, "console-instance.png")

    # The newest failed call, and what to check for it.
    browser.get(f"{live_server}/console/calls?failed=1")
    calls = wait.until(until.presence_of_element_located((By.ID, "calls")))
    calls.find_element(By.CSS_SELECTOR, "tr.failed td a").click()
    assert wait.until(until.presence_of_element_located((By.ID, "hint"))).text
    screenshot(browser, "console-failed-call.png")

    # The tenant: its department tree, and the script user shown as text, never run.
    browser.find_element(By.LINK_TEXT, "Tenants").click()
    wait.until(until.presence_of_element_located((By.LINK_TEXT, TENANT_ID))).click()
    tree = wait.until(until.presence_of_element_located((By.ID, "tree")))
    assert "总部" in tree.text and "研发部" in tree.text
    assert SCRIPT_USER in browser.find_element(By.ID, "users").text
    assert "&lt;script&gt;" in browser.page_source
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 (reading the property is what raises)
    screenshot(browser, "console-tenant.png")

    # The dead letter, retried from the jobs page.
    browser.find_element(By.LINK_TEXT, "Jobs").click()
    wait.until(until.element_to_be_clickable((By.ID, f"retry-{dead_job}"))).click()
    flash = wait.until(until.presence_of_element_located((By.CLASS_NAME, "flash")))
    assert flash.text == f"Job {dead_job} re-enqueued."
    with app.app_context():
        assert db.session.get(Job, dead_job).state == JobState.DONE
    screenshot(browser, "console-jobs.png")
