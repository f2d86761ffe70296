"""License upload (字符串/文件流上传) against the mock gateway: real HTTPS, real signatures."""

import hashlib
import json
import socket

import pytest
import requests
from werkzeug.wrappers import Request

from app.marketplace.client import (
    CHARACTERS_FILE_NAME,
    LICENSE_UPLOAD_PATH,
    MarketplaceClient,
    MarketplaceError,
    license_upload_body,
)
from app.marketplace.mock_api import MOCK_AK, MOCK_SK, MockOpenApi
from app.security import sign_apig_request

# The eventId getLicenseAsync hands out; the License is delivered against it.
EVENT_ID = "4f2c1a9e-7b3d-4c6e-9a10-8d5e2f7b6c01"
LICENSE_TEXT = "LICENSE-V2:机器码=ABCD-1234;到期=2025-12-31"
# Every byte value, so a text-mode or re-encoding mistake anywhere would show.
LICENSE_FILE = bytes(range(256)) * 4 + b"\r\n--not-a-boundary--\r\n"


@pytest.fixture
def mock_api():
    with MockOpenApi() as mock:
        yield mock


@pytest.fixture
def open_api(mock_api):
    return client_for(mock_api)


def client_for(mock, **overrides) -> MarketplaceClient:
    settings = {"ak": MOCK_AK, "sk": MOCK_SK, "base_url": mock.base_url, **overrides}
    return MarketplaceClient(
        settings.pop("ak"), settings.pop("sk"), ca_bundle=mock.ca_bundle, **settings
    )


def unused_port() -> int:
    """Return a loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def upload_path(event_id: str = EVENT_ID) -> str:
    return LICENSE_UPLOAD_PATH.format(event_id=event_id)


def parts_of(seen) -> tuple[dict, bytes, str | None]:
    """Split a recorded upload into its isvUpdateFileReq JSON, file bytes and file name."""
    form = Request.from_values(
        method="POST", data=seen.body, content_type=seen.headers["Content-Type"]
    )
    file_part = form.files["file"]
    return json.loads(form.form["isvUpdateFileReq"]), file_part.read(), file_part.filename


def send_signed_upload(mock, body: bytes, content_type: str, event_id: str = EVENT_ID):
    """Send a correctly signed upload of any body, for what the client will not send."""
    url = mock.base_url + upload_path(event_id)
    signed = sign_apig_request("POST", url, {"Content-Type": content_type}, body, MOCK_AK, MOCK_SK)
    return requests.post(url, data=body, headers=signed, verify=mock.ca_bundle, timeout=5)


# --- what the client sends ----------------------------------------------------------------------


def test_characters_upload_is_stored_with_its_sha256(open_api, mock_api):
    answer = open_api.upload_license(EVENT_ID, characters=LICENSE_TEXT)

    assert answer == {"error_code": "CBC.0000", "error_msg": "success"}
    assert mock_api.uploads == [
        {
            "event_id": EVENT_ID,
            "type": "CHARACTERS",
            "file_name": CHARACTERS_FILE_NAME,
            "content": LICENSE_TEXT.encode("utf-8"),
            "characters": LICENSE_TEXT,
        }
    ]
    [seen] = mock_api.requests
    upload_request, file_bytes, file_name = parts_of(seen)
    assert upload_request == {
        "type": "CHARACTERS",
        "file_name": CHARACTERS_FILE_NAME,
        "sha256": hashlib.sha256(LICENSE_TEXT.encode("utf-8")).hexdigest(),
        "characters": LICENSE_TEXT,
    }
    assert (file_bytes, file_name) == (LICENSE_TEXT.encode("utf-8"), CHARACTERS_FILE_NAME)


def test_file_upload_is_stored_byte_exact(open_api, mock_api):
    open_api.upload_license(EVENT_ID, file_name="license.lic", content=LICENSE_FILE)

    [upload] = mock_api.uploads
    assert upload["content"] == LICENSE_FILE
    assert (upload["type"], upload["file_name"], upload["characters"]) == (
        "FILE",
        "license.lic",
        None,
    )
    upload_request, _, _ = parts_of(mock_api.requests[0])
    assert upload_request == {
        "type": "FILE",
        "file_name": "license.lic",
        "sha256": hashlib.sha256(LICENSE_FILE).hexdigest(),
    }


def test_upload_is_a_signed_multipart_post(open_api, mock_api):
    open_api.upload_license(EVENT_ID, characters=LICENSE_TEXT)

    [seen] = mock_api.requests
    assert (seen.method, seen.path) == ("POST", upload_path())
    # The boundary is part of the signed Content-Type, so it cannot be swapped in transit.
    assert seen.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert "SignedHeaders=content-type;host;x-sdk-date," in seen.headers["Authorization"]


def test_event_id_is_percent_encoded_as_one_path_segment(open_api, mock_api):
    event_id = "event/42 ü"

    open_api.upload_license(event_id, characters=LICENSE_TEXT)

    [upload] = mock_api.uploads
    # Sent as event%2F42%20%C3%BC: the "/" does not split the path, the gateway decodes it.
    assert upload["event_id"] == event_id
    assert mock_api.requests[0].path == upload_path(event_id)


def test_upload_falls_back_to_the_second_host(mock_api):
    unreachable = f"https://127.0.0.1:{unused_port()}"
    client = client_for(mock_api, base_url=unreachable, fallback_url=mock_api.base_url)

    client.upload_license(EVENT_ID, characters=LICENSE_TEXT)

    assert len(mock_api.uploads) == 1


# --- refusals -------------------------------------------------------------------------------------


def test_wrong_sk_fails_with_apig_0303(mock_api):
    with pytest.raises(MarketplaceError) as failure:
        client_for(mock_api, sk="not-the-sk").upload_license(EVENT_ID, characters=LICENSE_TEXT)

    assert (failure.value.code, failure.value.status) == ("APIG.0303", 401)
    assert mock_api.uploads == []


def test_unknown_event_fails_with_91381033(open_api, mock_api):
    mock_api.unknown_events.add(EVENT_ID)

    with pytest.raises(MarketplaceError) as failure:
        open_api.upload_license(EVENT_ID, file_name="license.lic", content=LICENSE_FILE)

    assert (failure.value.code, failure.value.status) == ("91381033", 400)
    assert mock_api.uploads == []


def test_wrong_declared_sha256_fails_with_91381037(mock_api):
    body, content_type = license_upload_body("FILE", "license.lic", LICENSE_FILE)
    # Declare the hash of other bytes, then sign: the gateway passes it, the API must not.
    declared = hashlib.sha256(LICENSE_FILE).hexdigest().encode()
    tampered = body.replace(declared, hashlib.sha256(b"other bytes").hexdigest().encode())
    assert tampered != body

    response = send_signed_upload(mock_api, tampered, content_type)

    assert (response.status_code, response.json()["error_code"]) == (400, "91381037")
    assert "sha256" in response.json()["error_msg"]
    assert mock_api.uploads == []


def test_characters_unlike_the_file_fail_with_91381037(mock_api):
    body, content_type = license_upload_body(
        "CHARACTERS", CHARACTERS_FILE_NAME, LICENSE_TEXT.encode(), characters="another License"
    )

    response = send_signed_upload(mock_api, body, content_type)

    assert (response.status_code, response.json()["error_code"]) == (400, "91381037")
    assert mock_api.uploads == []


def test_unknown_upload_type_fails_with_91381037(mock_api):
    body, content_type = license_upload_body("TEXT", "license.lic", LICENSE_FILE)

    response = send_signed_upload(mock_api, body, content_type)

    assert (response.status_code, response.json()["error_code"]) == (400, "91381037")


def test_body_without_the_file_part_fails_with_91381037(mock_api):
    response = send_signed_upload(mock_api, b'{"type": "FILE"}', "application/json")

    assert (response.status_code, response.json()["error_code"]) == (400, "91381037")


def test_body_changed_after_signing_fails_at_the_gateway(mock_api):
    body, content_type = license_upload_body("FILE", "license.lic", LICENSE_FILE)
    url = mock_api.base_url + upload_path()
    signed = sign_apig_request("POST", url, {"Content-Type": content_type}, body, MOCK_AK, MOCK_SK)

    response = requests.post(
        url, data=body + b"x", headers=signed, verify=mock_api.ca_bundle, timeout=5
    )

    assert (response.status_code, response.json()["error_code"]) == (401, "APIG.0303")
    assert mock_api.uploads == []


# --- checked before sending -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"characters": LICENSE_TEXT, "file_name": "license.lic", "content": LICENSE_FILE},
        {"characters": LICENSE_TEXT, "content": LICENSE_FILE},
        {"file_name": "license.lic"},
        {"content": LICENSE_FILE},
        {"characters": ""},
        {"file_name": "license.lic", "content": "text, not bytes"},
    ],
    ids=["neither", "both", "characters-and-content", "no-content", "no-name", "empty", "str"],
)
def test_not_exactly_one_form_is_refused_before_sending(open_api, mock_api, arguments):
    with pytest.raises(ValueError):
        open_api.upload_license(EVENT_ID, **arguments)

    assert mock_api.requests == []


@pytest.mark.parametrize("event_id", ["", "E" * 65])
def test_event_id_outside_1_to_64_characters_is_refused_before_sending(
    open_api, mock_api, event_id
):
    with pytest.raises(ValueError):
        open_api.upload_license(event_id, characters=LICENSE_TEXT)

    assert mock_api.requests == []
