"""`make demo`: the whole local marketplace, run as a merchant would run it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_every_lifecycle_and_exits_zero():
    finished = subprocess.run(
        [sys.executable, "-m", "app.marketplace.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    summary = finished.stdout.split("summary\n", 1)[1].splitlines()
    protocols = [line.split()[1] for line in summary if line.strip()]
    assert protocols == ["v1", "v2", "license-v1", "license", "kit-v1", "kit-v2", "notify"]
    assert all(line.strip().startswith("PASS") for line in summary if line.strip())
    assert "FAIL" not in finished.stdout
