"""The one exception type raised when an untrusted request, token or ciphertext is rejected."""

import enum


class Reason(enum.StrEnum):
    """Why verification or decryption failed; the caller maps it to a marketplace result code."""

    MISSING_TIMESTAMP = "missing_timestamp"
    BAD_TIMESTAMP = "bad_timestamp"  # present but not a decimal number
    STALE_TIMESTAMP = "stale_timestamp"  # older than the accepted window
    FUTURE_TIMESTAMP = "future_timestamp"  # further ahead than the accepted window
    MISSING_NONCE = "missing_nonce"
    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"  # no configured key produced the received value
    MALFORMED_BODY = "malformed_body"  # the body is not a JSON object
    DECRYPT_FAILED = "decrypt_failed"  # AES, RSA, Base64, padding or UTF-8 problems
    NO_KEY = "no_key"  # an empty key ring was given, so nothing can verify


class SecurityError(Exception):
    """Reject untrusted input; `detail` is for the call log and never contains key material."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail
