"""The scan of every log line of the test run (tests/conftest.py) can find what it looks for."""

from tests import conftest


def test_the_scan_finds_a_planted_secret():
    planted = ["app.x charged card for 13800138000", "app.y ok"]
    assert conftest.leaked_secrets(planted, conftest.secrets_to_scan()) == ["13800138000"]


def test_the_scan_sees_the_apps_log_records(marketplace):
    marketplace.saas_v2("queryInstance", instanceId="nothing")
    assert any("saas v2 queryInstance -> 000003" in text for text in conftest.LOGS.texts)


def test_generated_passwords_are_among_the_scanned_values(marketplace):
    marketplace.saas_v2("newInstance", orderId="o-scan", orderLineId="l-scan", businessId="b-scan")
    assert conftest.GENERATED_PASSWORDS
    assert conftest.GENERATED_PASSWORDS[-1] in conftest.secrets_to_scan()
