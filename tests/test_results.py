"""The one answer path: serialised once, signed with Body-Sign, HTTP 200."""

from flask import g

from app.results import ResultCode, marketplace_answer, serialise_answer
from app.security import compute_body_signature


def answer_in_request(app, key, *args, **kwargs):
    with app.test_request_context("/saas", method="POST"):
        g.answer_key = key
        return marketplace_answer(*args, **kwargs)


def test_vector_b1_success_answer_bytes_and_body_sign(app):
    response = answer_in_request(app, "xxxxxxx", ResultCode.SUCCESS)
    assert response.get_data() == b'{"resultCode":"000000","resultMsg":"success."}'
    assert response.headers["Body-Sign"] == (
        'sign_type="HMAC-SHA256", signature="YB9MRaDz8ENM8JzoKzW8YT4yUrcMdby3kM31MTz8tO4="'
    )


def test_vector_b2_answer_with_instance_id(app):
    key = "ebf72724-bacc-414b-a86b-fda5bcc8153c"
    response = answer_in_request(
        app, key, ResultCode.SUCCESS, instanceId="8a2c4e6f-405a-4f8d-8e24-f41090522646"
    )
    assert response.get_data() == (
        b'{"resultCode":"000000","resultMsg":"success.",'
        b'"instanceId":"8a2c4e6f-405a-4f8d-8e24-f41090522646"}'
    )
    assert response.headers["Body-Sign"].endswith(
        'signature="2LDdhkEvp/JUxUk+hDE57bIb3k7bm1opkfkTr/2PsG4="'
    )


def test_failure_answers_are_http_200(app):
    response = answer_in_request(app, "k", ResultCode.AUTH_FAILED, reason="bad_signature")
    assert response.status_code == 200
    assert response.json == {
        "resultCode": "000001",
        "resultMsg": "authentication failed: bad_signature.",
    }


def test_non_ascii_is_sent_as_unicode_escapes_and_signed_as_sent(app):
    response = answer_in_request(app, "k", ResultCode.SUCCESS, appInfo={"memo": "开通成功"})
    body = response.get_data()
    assert b"\\u5f00\\u901a\\u6210\\u529f" in body
    assert body.isascii()
    assert response.headers["Body-Sign"].endswith(
        f'signature="{compute_body_signature("k", body)}"'
    )


def test_answer_has_no_trailing_newline(app):
    assert not answer_in_request(app, "k", ResultCode.SUCCESS).get_data().endswith(b"\n")


def test_result_message_is_cut_to_255_characters(app):
    response = answer_in_request(app, "k", ResultCode.INTERNAL_ERROR, "x" * 300)
    assert len(response.json["resultMsg"]) == 255


def test_answer_without_a_key_has_no_body_sign(app):
    assert "Body-Sign" not in answer_in_request(app, None, ResultCode.SUCCESS).headers


def test_every_documented_result_code_is_six_digits():
    codes = [code.value for code in ResultCode]
    assert len(codes) == len(set(codes)) == 18
    assert all(len(code) == 6 and code.isdigit() for code in codes)


def test_serialisation_is_compact():
    assert serialise_answer({"a": 1, "b": [1, 2]}) == b'{"a":1,"b":[1,2]}'
