"""A real HTTPS server on loopback, for the mocks of the marketplace's side of the wire.

Each mock is a WSGI callable served in a background thread with a self-signed certificate made at
start; clients trust it through `ca_bundle` rather than by switching certificate checks off.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import ssl
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class LoopbackHttpsServer:
    """Serve `self` (a WSGI callable) on 127.0.0.1 over HTTPS; a context manager."""

    name = "loopback-https"

    def __init__(self, *, port: int = 0, log_requests: bool = False):
        self.port = port
        self.log_requests = log_requests
        self.base_url: str | None = None
        self.ca_bundle: str | None = None
        self._directory: Path | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def __call__(self, environ: dict, start_response):
        raise NotImplementedError

    def start(self):
        """Generate the certificate and serve in a background thread."""
        self._directory = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        certificate_path, key_path = write_self_signed_certificate(self._directory)
        context = server_tls_context(certificate_path, key_path)
        handler = WSGIRequestHandler if self.log_requests else QuietRequestHandler
        self._server = make_server(
            "127.0.0.1",
            self.port,
            self,
            threaded=True,
            request_handler=handler,
            ssl_context=context,
        )
        self.base_url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self.ca_bundle = str(certificate_path)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # shutdown() waits for the loop's next poll: keep stopping a test's mock quick.
            kwargs={"poll_interval": 0.05},
            name=self.name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and delete the certificate files."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def write_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a fresh self-signed certificate for 127.0.0.1 and localhost; return cert, key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_path = directory / "ca.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path = directory / "key.pem"
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key_bytes)
    return certificate_path, key_path


def server_tls_context(certificate_path: Path, key_path: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate_path, key_path)
    return context


class QuietRequestHandler(WSGIRequestHandler):
    """Serve without a log line per request (the mocks record what they saw instead)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass
