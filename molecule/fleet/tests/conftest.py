"""Shared by the fleet scenario's tests: the router's address, and the second run of sglang.yml right after
converge (molecule's own idempotence step is left out of this scenario's sequence: this run is it), with the
router's worker list read every 0.2 s while it runs."""
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from playbook_run import hosts, play  # noqa: E402


def router():
    """The router's URL from this machine (the gateway container's address)."""
    address = subprocess.run(["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                              hosts("gateway")[0]], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    return f"http://{address}:30080"


def workers():
    return requests.get(router() + "/workers", timeout=10).json()["workers"]


@pytest.fixture(scope="session")
def noop_run():
    """The run without change: (result, output, every worker list seen while it ran)."""
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(sorted(w["url"] for w in workers()))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result, out = play("sglang.yml")
    finally:
        stop.set()
        watcher.join(timeout=10)
    return result, out, seen
