"""Faults on the converged SIMULATED Spark, with no Ansible run afterwards: the container killed,
Docker restarted, the host restarted; each time both instances serve again within a stated bound.
A server that crashes at every start is stopped by systemd's start limit, not restarted forever.
Measured times go to $MOLECULE_EPHEMERAL_DIRECTORY/reliability/faults.json (docs/reliability.md)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import _SUMMARY

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import playbook_run  # noqa: E402

testinfra_hosts = ["ansible://sparks"]
HOST = playbook_run.hosts("sparks")[0]
PORTS = {"main": 30000, "second": 30001}
# RestartSec (10 s) + the simulated load (2 s) + container start, with room for a busy 2-core machine.
BOUND_S = {"kill": 60, "docker_restart": 90, "host_restart": 180}
RESULTS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp")) / "reliability" / "faults.json"


def healthy(host, port):
    return host.run(f"curl -s -o /dev/null -m 2 -w '%{{http_code}}' http://127.0.0.1:{port}/health").stdout == "200"


def wait_all_healthy(host, bound):
    start = time.monotonic()
    while time.monotonic() - start < bound:
        try:
            if all(healthy(host, port) for port in PORTS.values()):
                return round(time.monotonic() - start, 1)
        except Exception:  # noqa: BLE001 - the host itself may be rebooting
            pass
        time.sleep(1)
    return None


def record(name, value, unit="s"):
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = {"value": value, "unit": unit, "bound_s": BOUND_S.get(name)}
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    _SUMMARY.append(f"fault {name}: {value} {unit} (bound {BOUND_S.get(name)} s) -> {RESULTS}")


def started_at(host, instance):
    return host.check_output(f"docker inspect --format '{{{{.State.StartedAt}}}}' sglang-{instance}")


def test_killed_container_comes_back(host):
    assert wait_all_healthy(host, 30) is not None
    before = started_at(host, "main")
    host.check_output("docker kill sglang-main")
    seconds = wait_all_healthy(host, BOUND_S["kill"])
    record("kill", seconds)
    assert seconds is not None, host.run("systemctl status sglang-main --no-pager").stdout
    assert started_at(host, "main") != before  # a new container, started by systemd


def test_docker_restart_brings_both_instances_back(host):
    before = {name: started_at(host, name) for name in PORTS}
    host.check_output("systemctl restart docker")
    seconds = wait_all_healthy(host, BOUND_S["docker_restart"])
    record("docker_restart", seconds)
    assert seconds is not None, host.run("systemctl status sglang-main sglang-second --no-pager").stdout
    assert all(started_at(host, name) != before[name] for name in PORTS)


def test_host_restart_brings_both_instances_back(host):
    boot_before = host.check_output("ps -o lstart= -p 1")
    start = time.monotonic()
    subprocess.run(["docker", "restart", HOST], check=True, capture_output=True, timeout=120)
    left = BOUND_S["host_restart"] - (time.monotonic() - start)
    seconds = wait_all_healthy(host, left)
    seconds = None if seconds is None else round(time.monotonic() - start, 1)
    record("host_restart", seconds)
    assert seconds is not None, host.run("systemctl --failed --no-pager").stdout
    assert host.check_output("ps -o lstart= -p 1") != boot_before  # systemd really booted again
    assert all(host.service(f"sglang-{name}").is_running for name in PORTS)


@pytest.fixture()
def crashing_second(host):
    """The second instance crashes at every start (simulated OOM while loading weights)."""
    env = "/etc/sglang/second.env"
    host.check_output(f"cp -p {env} {env}.keep && echo SGLANG_SIM_FAIL=crash_on_start >> {env}")
    yield "sglang-second.service"
    host.check_output(f"mv {env}.keep {env} && systemctl reset-failed sglang-second.service && "
                      "systemctl start sglang-second.service")
    assert wait_all_healthy(host, 60) is not None


def test_crash_loop_is_stopped_by_the_start_limit(host, crashing_second):
    since = host.check_output("date +%s")
    # Starts earlier in the session (the host restart) count against the limit: begin from zero.
    host.check_output(f"systemctl reset-failed {crashing_second}; systemctl restart {crashing_second}")
    burst = int(host.check_output(f"systemctl show -p StartLimitBurst --value {crashing_second}"))
    restart_sec = 10
    deadline = time.monotonic() + burst * (restart_sec + 15)
    while time.monotonic() < deadline:
        state = host.check_output(f"systemctl show -p ActiveState --value {crashing_second}")
        if state == "failed":
            break
        time.sleep(2)
    assert state == "failed", state
    # systemd 252 keeps Result=exit-code and says why in the journal.
    journal = host.check_output(f"journalctl -u {crashing_second} --since @{since} --no-pager")
    assert "Start request repeated too quickly" in journal, journal[-2000:]
    restarts = int(host.check_output(f"systemctl show -p NRestarts --value {crashing_second}"))
    assert restarts == burst
    # It stays down: no further attempt after the limit was hit.
    time.sleep(restart_sec + 5)
    assert host.check_output(f"systemctl show -p ActiveState --value {crashing_second}") == "failed"
    assert int(host.check_output(f"systemctl show -p NRestarts --value {crashing_second}")) == restarts
    record("crash_loop", restarts, "automatic restarts, then stopped")
    assert healthy(host, PORTS["main"])  # the other instance is unaffected
