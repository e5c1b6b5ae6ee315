"""Run a project playbook against a molecule scenario's converged hosts (for testinfra tests)."""
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def hosts(group):
    """The scenario's hosts in an inventory group, in order: host names come from molecule.yml only
    (each scenario names its own, so scenarios can run side by side)."""
    inventory = yaml.safe_load(Path(os.environ["MOLECULE_INVENTORY_FILE"]).read_text())
    found = list((inventory.get(group) or {}).get("hosts") or {})
    assert found, f"no hosts in group {group} of {os.environ['MOLECULE_INVENTORY_FILE']}"
    return found


def address(host):
    """The address the scenario reaches a host at (its ansible_host in molecule's host_vars), as the roles read it."""
    host_vars = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / "host_vars" / host
    found = yaml.safe_load(host_vars.read_text()) if host_vars.is_file() else None
    return (found or {}).get("ansible_host", host)


def hub_bytes():
    """The bytes the scenario's test hub (on its sim-infra host) has served so far."""
    out = subprocess.run(["docker", "exec", hosts("sim_infra")[0], "curl", "-fsS", "http://127.0.0.1:8081/_sim/stats"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return json.loads(out)["bytes_served"]


def run_playbook(playbook="sglang.yml", *args, extra=None, timeout=900):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(REPO / "playbooks" / playbook), *args]
    if extra is not None:
        cmd += ["-e", json.dumps(extra)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_PIPELINING="True",
               ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_LIBRARY=str(REPO / "library"), ANSIBLE_MODULE_UTILS=str(REPO / "module_utils"),
               ANSIBLE_FILTER_PLUGINS=str(REPO / "plugins" / "filter"),
               # Facts cached per scenario: another scenario's host of the same name has another address.
               ANSIBLE_CACHE_PLUGIN_CONNECTION=os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "facts"))
    for name in ("ANSIBLE_FORCE_COLOR", "PY_COLORS"):  # molecule forces colour; the recap is parsed
        env.pop(name, None)
    began = time.monotonic()
    result, cpu = _run(cmd, env, timeout)
    _log_run(cmd, result, time.monotonic() - began, cpu)
    return result


def _run(cmd, env, timeout):
    """As subprocess.run(capture_output=True, text=True), and the CPU time of this run's own processes: os.wait4
    gives it per child, where the runs a test makes side by side would each count the others' in RUSAGE_CHILDREN."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise subprocess.TimeoutExpired(cmd, timeout)
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
        text = [f.seek(0) or f.read().decode(errors="replace") for f in (out, err)]
    return subprocess.CompletedProcess(cmd, proc.returncode, *text), usage.ru_utime + usage.ru_stime


def _log_run(cmd, result, seconds, cpu):
    """One line per run in reports/test/playbook-runs.jsonl: which test ran which playbook, and what it cost
    (wall, and the controller's CPU: ansible-playbook and its workers), to find where the suite's time goes."""
    tasks = sum(c["ok"] + c["failed"] for c in _counts(result.stdout).values())
    line = {"scenario": os.environ.get("MOLECULE_SCENARIO_NAME"),
            "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0],
            "playbook": Path(cmd[3]).name, "args": cmd[4:], "rc": result.returncode,
            "seconds": round(seconds, 1), "controller_cpu": round(cpu, 1), "task_results": tasks}
    log = REPO / "reports" / "test" / "playbook-runs.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(json.dumps(line) + "\n")


def play(playbook, *args, extra=None):
    """run_playbook, returning (result, stdout + stderr)."""
    result = run_playbook(playbook, *args, extra=extra)
    return result, result.stdout + result.stderr


def flat(output):
    """The output with the callback's line wrapping undone, to find a message it wrapped."""
    return " ".join(output.split())


def _counts(output):
    counts = {}
    for host, *numbers in re.findall(
            r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M):
        counts[host] = dict(zip(("ok", "changed", "unreachable", "failed"), map(int, numbers)))
    return counts


def recap(output):
    """{host: {ok, changed, unreachable, failed}} from a run's PLAY RECAP."""
    counts = _counts(output)
    assert counts, output[-3000:]
    return counts
