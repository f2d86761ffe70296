"""Signatures, tokens and encryption of the KooGallery protocol (spec: security.md §1–§9).

Pure functions over strings and bytes: no Flask, stdlib plus `cryptography`. Untrusted input that
fails a check raises `SecurityError` with a `Reason`; misconfiguration raises `ValueError`.
"""

from app.security.aes import (
    decrypt_field,
    derive_aes_key,
    encrypt_field,
    encryption_bits,
    sha1prng_bytes,
)
from app.security.apig import canonical_request, sign_apig_request, string_to_sign
from app.security.body_sign import (
    BODY_SIGN_HEADER,
    body_sign_header,
    compute_body_signature,
    parse_body_sign_header,
    verify_body_sign_header,
)
from app.security.errors import Reason, SecurityError
from app.security.rsa import (
    decrypt_oaep,
    generate_private_key,
    load_private_key,
    private_key_pem,
    public_key_base64,
)
from app.security.usage import canonical_usage_body, compute_usage_signature
from app.security.v1 import (
    V1Query,
    compute_v1_token,
    decode_v1_query,
    kit_v1_string_to_sign,
    parse_raw_query,
    v1_string_to_sign,
    verify_v1_body,
    verify_v1_query,
)
from app.security.v2 import (
    canonical_payload,
    check_timestamp,
    compute_kit_signature,
    compute_v2_inner_digest,
    compute_v2_signature,
    parse_json_object,
    verify_kit_signature,
    verify_v2_signature,
)

__all__ = [
    "BODY_SIGN_HEADER",
    "Reason",
    "SecurityError",
    "V1Query",
    "body_sign_header",
    "canonical_payload",
    "canonical_request",
    "canonical_usage_body",
    "check_timestamp",
    "compute_body_signature",
    "compute_kit_signature",
    "compute_usage_signature",
    "compute_v1_token",
    "compute_v2_inner_digest",
    "compute_v2_signature",
    "decode_v1_query",
    "decrypt_field",
    "decrypt_oaep",
    "derive_aes_key",
    "encrypt_field",
    "encryption_bits",
    "generate_private_key",
    "kit_v1_string_to_sign",
    "load_private_key",
    "parse_body_sign_header",
    "parse_json_object",
    "parse_raw_query",
    "private_key_pem",
    "public_key_base64",
    "sha1prng_bytes",
    "sign_apig_request",
    "string_to_sign",
    "v1_string_to_sign",
    "verify_body_sign_header",
    "verify_kit_signature",
    "verify_v1_body",
    "verify_v1_query",
    "verify_v2_signature",
]
