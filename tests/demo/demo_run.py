"""Shared by the demo tests: where their logs go, and how they run commands and read Docker."""
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / "reports" / "demo-test"
BEFORE = LOGS / "before.json"  # Docker's volumes and networks before make demo (test_demo.py writes it)


def run(name, cmd, timeout, **kw):
    """Run a command, keep its output in reports/demo-test/<name>.log, return the CompletedProcess."""
    LOGS.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, **kw)
    (LOGS / f"{name}.log").write_text(f"$ {cmd}\nexit {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}")
    return p


def tail(p, n=40):
    return "\n".join((p.stdout + p.stderr).splitlines()[-n:])


def docker_lines(*args):
    return set(subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.split())
