"""`Body-Sign` response signatures, pinned to security.md §3 vectors."""

import pytest

from app.security import (
    BODY_SIGN_HEADER,
    Reason,
    SecurityError,
    body_sign_header,
    compute_body_signature,
    parse_body_sign_header,
    verify_body_sign_header,
)

B1_KEY = "xxxxxxx"
B1_BODY = b'{"resultCode":"000000","resultMsg":"success."}'
B1_SIGNATURE = "YB9MRaDz8ENM8JzoKzW8YT4yUrcMdby3kM31MTz8tO4="

B2_KEY = "ebf72724-bacc-414b-a86b-fda5bcc8153c"
B2_BODY = (
    b'{"resultCode":"000000","resultMsg":"success.",'
    b'"instanceId":"8a2c4e6f-405a-4f8d-8e24-f41090522646"}'
)
B2_SIGNATURE = "2LDdhkEvp/JUxUk+hDE57bIb3k7bm1opkfkTr/2PsG4="


def test_vector_b1_success_answer():
    assert compute_body_signature(B1_KEY, B1_BODY) == B1_SIGNATURE


def test_vector_b2_answer_with_instance_id():
    assert compute_body_signature(B2_KEY, B2_BODY) == B2_SIGNATURE


def test_vector_b1_header_value_is_quoted():
    assert body_sign_header(B1_KEY, B1_BODY) == (
        f'sign_type="HMAC-SHA256", signature="{B1_SIGNATURE}"'
    )


def test_header_name_has_the_exact_case_the_checker_wants():
    assert BODY_SIGN_HEADER == "Body-Sign"


def test_parse_returns_sign_type_and_signature():
    assert parse_body_sign_header(body_sign_header(B2_KEY, B2_BODY)) == (
        "HMAC-SHA256",
        B2_SIGNATURE,
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        f"sign_type=HMAC-SHA256, signature={B1_SIGNATURE}",
        f'sign_type="HMAC-SHA256", signature={B1_SIGNATURE}',
        'sign_type="HMAC-SHA256", signature=""',
        f'signature="{B1_SIGNATURE}"',
    ],
    ids=["absent", "empty", "unquoted", "half-quoted", "empty-signature", "no-sign-type"],
)
def test_parse_rejects_anything_but_the_quoted_form(value):
    with pytest.raises(SecurityError) as excinfo:
        parse_body_sign_header(value)
    assert excinfo.value.reason is Reason.MISSING_SIGNATURE


def test_verify_accepts_vector_b1():
    verify_body_sign_header(B1_KEY, B1_BODY, body_sign_header(B1_KEY, B1_BODY))


def test_tampered_body_fails():
    header = body_sign_header(B1_KEY, B1_BODY)
    with pytest.raises(SecurityError) as excinfo:
        verify_body_sign_header(B1_KEY, B1_BODY + b"\n", header)
    assert excinfo.value.reason is Reason.BAD_SIGNATURE


def test_wrong_key_fails():
    header = body_sign_header(B2_KEY, B1_BODY)
    with pytest.raises(SecurityError) as excinfo:
        verify_body_sign_header(B1_KEY, B1_BODY, header)
    assert excinfo.value.reason is Reason.BAD_SIGNATURE


def test_other_sign_type_fails():
    header = f'sign_type="HMAC-SHA1", signature="{B1_SIGNATURE}"'
    with pytest.raises(SecurityError) as excinfo:
        verify_body_sign_header(B1_KEY, B1_BODY, header)
    assert excinfo.value.reason is Reason.BAD_SIGNATURE
