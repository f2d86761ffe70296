"""Rules about the source itself that a review could miss."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [*sorted((ROOT / "app").rglob("*.py")), ROOT / "config.py", ROOT / "wsgi.py"]

# A secret-bearing name on either side of == or != : tokens and signatures are compared with
# hmac.compare_digest, which takes the same time however many leading characters match.
# (Body-Sign's sign_type is the public algorithm name, not a secret. Keys are never compared: a
# key ring is tried by computing with each key.)
SECRET_NAME = r"(token|sign(?!_type)|secret|digest|password)"
PLAIN_COMPARISON = re.compile(rf"{SECRET_NAME}\w*\s*[!=]=|[!=]=\s*\w*{SECRET_NAME}", re.IGNORECASE)
ROUTE = re.compile(r"^@\w+\.(route|get|post|put|delete)\(")


def test_no_token_or_signature_is_compared_with_equals():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in SOURCES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PLAIN_COMPARISON.search(line.split("#")[0])
    ]
    assert offenders == []


def test_the_check_finds_a_plain_comparison():
    assert PLAIN_COMPARISON.search("if expected_signature == signature:")
    assert PLAIN_COMPARISON.search("return token != given")
    assert PLAIN_COMPARISON.search("if password == stored_password:")
    assert not PLAIN_COMPARISON.search("if result_code == '000000':")
    assert not PLAIN_COMPARISON.search("if sign_type != SIGN_TYPE:")


def test_every_route_names_its_documentation_section():
    missing = []
    for path in SOURCES:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if ROUTE.match(line) and not any(
                previous.startswith("# Docs:") for previous in lines[max(0, number - 3) : number]
            ):
                missing.append(f"{path.relative_to(ROOT)}:{number + 1}")
    assert missing == []
