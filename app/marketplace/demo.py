"""`make demo`: the server and a mock marketplace on this machine, and every lifecycle run once.

Starts the mock marketplace (open API and login), migrates a throw-away SQLite database, starts
gunicorn with the development keys and the job worker, runs `lifecycle` for every protocol
generation against them, prints each step and a summary, and stops everything it started. Exit
status 1 if any step failed.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent

# Which production address each generation is registered at.
PATHS = {
    "v1": "/saas",
    "v2": "/saas",
    "license-v1": "/license",
    "license": "/license",
    "kit-v1": "/saas",
    "kit-v2": "/saas",
    "notify": "/notify",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server stopped while starting; see its output above")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server did not answer {url} in {seconds:.0f} s")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    slow = "--slow-provisioner" in (argv if argv is not None else sys.argv[1:])
    load_dotenv(ROOT / ".env")  # as wsgi.py does, so that both sides use the same keys
    from app import create_app
    from app.marketplace.lifecycle import PASS, run_lifecycle, summary
    from app.marketplace.mock_marketplace import MockMarketplace
    from app.marketplace.simulator import Keys
    from app.security import load_private_key

    with tempfile.TemporaryDirectory(prefix="koogallery-demo-") as directory:
        database = f"sqlite:///{directory}/demo.db"
        app = create_app(environ={**os.environ, "DATABASE_URL": database})
        keys = Keys(app.config)
        rsa_key = app.config.get("KOOGALLERY_RSA_PRIVATE_KEY")
        rsa_public_key = load_private_key(rsa_key).public_key() if rsa_key else None
        port = free_port()
        totals: list = []
        base = f"http://127.0.0.1:{port}"
        with MockMarketplace(usage_key=keys.first("KOOGALLERY_BASIC_KEY")) as mock:
            environ = {
                **os.environ,
                "DATABASE_URL": database,
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "KOOGALLERY_AK": mock.open_api.ak,
                "KOOGALLERY_SK": mock.open_api.sk,
                "KOOGALLERY_API_BASE": mock.base_url,
                "KOOGALLERY_API_CA_BUNDLE": mock.ca_bundle,
                "KOOGALLERY_IDP_CA_BUNDLE": mock.ca_bundle,
                "KOOGALLERY_QUEUE": f"sqlite:///{directory}/queue.db",
            }
            if slow:
                # Each purchase takes 8 s in the worker; the calls must still answer at once.
                environ["KOOGALLERY_PROVISIONER"] = "app.provisioning:SlowDemoProvisioner"
                print("provisioner: 8 s per purchase, in the job worker")
            print(f"mock marketplace: {mock.base_url}")
            subprocess.run(  # noqa: S603 - our own venv's flask
                [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
                cwd=ROOT,
                env=environ,
                check=True,
                capture_output=True,
            )
            # The server's own log (one line per call) goes to a file, shown if anything fails.
            server_log = Path(directory) / "server.log"
            server = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
                [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=environ,
                stdout=server_log.open("w"),
                stderr=subprocess.STDOUT,
            )
            worker = subprocess.Popen(  # noqa: S603 - our own venv's flask
                [str(BIN / "flask"), "--app", "wsgi", "market", "worker"],
                cwd=ROOT,
                env=environ,
                stdout=server_log.open("a"),
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until_up(f"{base}/healthz", server)
                print(f"merchant server: {base}\n")
                for protocol, path in PATHS.items():
                    results = run_lifecycle(
                        protocol, base + path, keys, rsa_public_key=rsa_public_key
                    )
                    for result in results:
                        print(result.line())
                    print(f"{protocol}: {summary(results)}\n", flush=True)
                    totals.append((protocol, results))
            finally:
                for process in (server, worker):
                    process.terminate()
                    process.wait(timeout=15)
            failed = any(r.status != PASS for _, results in totals for r in results)
            if failed:
                print("server log (last 40 lines):")
                print("\n".join(server_log.read_text().splitlines()[-40:]))
    print("summary")
    for protocol, results in totals:
        ok = all(result.status == PASS for result in results)
        print(f"  {'PASS' if ok else 'FAIL'}  {protocol:<11} {summary(results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
