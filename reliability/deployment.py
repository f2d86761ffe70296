"""A production-mode gunicorn and `market worker` on loopback, started, killed and restarted."""

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from app.licensing import generate_signing_key_pem
from app.security import generate_private_key, private_key_pem

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Four sync workers on two cores: enough for calls to race in the database, not enough to thrash.
WEB_WORKERS = "4"


def free_port() -> int:
    """Return a loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh_keys() -> dict[str, str]:
    """Return throw-away production secrets for one run; they are never printed."""
    keys = {
        name: secrets.token_hex(32)
        for name in (
            "SECRET_KEY",
            "KOOGALLERY_BASIC_KEY",
            "KOOGALLERY_KIT_KEY",
            "KOOGALLERY_LICENSE_KEY",
            "KOOGALLERY_GENERAL_KEY",
        )
    }
    # Production refuses a kit key without the RSA key that decrypts applicationSync secrets.
    keys["KOOGALLERY_RSA_PRIVATE_KEY"] = private_key_pem(generate_private_key(3072))
    keys["KOOGALLERY_LICENSE_SIGNING_KEY"] = generate_signing_key_pem()
    return keys


class Deployment:
    """One web server and one job worker sharing a database and a SQLite task queue."""

    def __init__(
        self,
        database_url: str,
        directory: Path,
        keys: dict[str, str],
        *,
        web_workers: str = WEB_WORKERS,
        access_log: bool = True,
    ):
        self.port = free_port()
        self.keys = keys
        self.log_path = directory / "server.log"
        # Off for benchmarks: one log line a request would be part of what is measured.
        self.gunicorn_options = () if access_log else ("--access-logfile", "/dev/null")
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("KOOGALLERY_", "SECRET_KEY", "DATABASE_URL", "GUNICORN_"))
        }
        self.environ = {
            **inherited,
            **keys,
            "KOOGALLERY_ENV": "production",
            "DATABASE_URL": database_url,
            "KOOGALLERY_QUEUE": f"sqlite:///{directory}/queue.db",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": web_workers,
        }
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, *command: str) -> subprocess.Popen:
        log = self.log_path.open("a")
        return subprocess.Popen(  # noqa: S603 - our own venv's executables
            [*command], cwd=ROOT, env=self.environ, stdout=log, stderr=subprocess.STDOUT
        )

    def migrate(self) -> None:
        """Bring the fresh database to the latest schema."""
        subprocess.run(  # noqa: S603 - our own venv's flask
            [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=self.environ,
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        """Start the job worker and the web server, and wait for /healthz."""
        self.worker = self._spawn(str(BIN / "flask"), "--app", "wsgi", "market", "worker")
        self.start_web()

    def start_web(self) -> None:
        """Start gunicorn and wait until it answers."""
        self.web = self._spawn(
            str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", *self.gunicorn_options, "wsgi:app"
        )
        self.wait_until_up()

    def wait_until_up(self, seconds: float = 40) -> None:
        """Wait for /healthz; raise if gunicorn exits or stays silent."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError(f"gunicorn exited while starting; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz in {seconds:.0f} s")

    def web_worker_pids(self) -> list[int]:
        """Return the pids of gunicorn's worker processes (the master's children)."""
        path = Path(f"/proc/{self.web.pid}/task/{self.web.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def kill_web_worker(self, pid: int) -> None:
        """SIGKILL one gunicorn worker; the master replaces it."""
        # It may be gone already: the master was replacing it.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def kill_master_and_restart(self) -> float:
        """SIGKILL the master and its workers, as a machine crash would; restart; return seconds."""
        started = time.monotonic()
        children = self.web_worker_pids()
        self.web.send_signal(signal.SIGKILL)
        self.web.wait()
        # Orphaned workers would keep the listening socket until they notice the master is gone.
        for pid in children:
            self.kill_web_worker(pid)
        self.start_web()
        return time.monotonic() - started

    def stop(self) -> None:
        """Stop both processes."""
        for process in (self.web, self.worker):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """Return the end of the server log (one line per call, no secrets)."""
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""
