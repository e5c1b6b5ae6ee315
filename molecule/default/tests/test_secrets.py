"""Secrets on one converged SIMULATED Spark: a run of playbooks/sglang.yml at -vvv with a hub token
for the server and a new API key shows neither in its output, in `systemctl cat`, in `docker
inspect`, in any world-readable file on the host, in the journal, in `docker logs`, in Docker's own
files or in the bench results on the host and the controller (the sim logs the key at startup as
SGLang does, docs/upstream.md: the launcher masks it); the key is in force (401 without it, 200 with
it) and the token reaches the server. The counts go to $MOLECULE_EPHEMERAL_DIRECTORY/reliability/
secrets.json. The scenario's own key is put back at the end."""
import json
import os
import secrets
import stat
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402

testinfra_hosts = ["ansible://sparks"]
HOST = playbook_run.hosts("sparks")[0]

INSTANCES = {"main": 30000, "second": 30001}
SCENARIO_KEY = "sim-api-key-not-a-secret"
SUFFIX = secrets.token_hex(8)
HF_TOKEN = f"hf_secretstest_{SUFFIX}"
API_KEY = f"sk-secretstest-{SUFFIX[::-1]}"
SECRETS = {"hf_token": HF_TOKEN, "api_key": API_KEY}
SEARCHED = ["/etc", "/opt", "/home", "/root", "/var", "/tmp", "/srv", "/usr/local"]
# Searched whatever their mode: Docker's logs and state, the bench results.
SEARCHED_ANY_MODE = ["/var/lib/docker/containers", "/var/lib/sglang-bench"]
REPORTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reports"
UNITS = " ".join(f"sglang-{name}" for name in INSTANCES)
CONTAINERS = " ".join(f"sglang-{name}" for name in INSTANCES)


def count(text, secret):
    """Occurrences of the secret, also across the callback's line wrapping (whitespace dropped)."""
    return max(text.count(secret), "".join(text.split()).count(secret))


def files_with(host, paths, secret, world_readable=True):
    perm = "-perm -o=r " if world_readable else ""
    found = host.run(f"find {' '.join(paths)} -xdev -type f {perm}-print0 2>/dev/null "
                     f"| xargs -0 -r grep -s -F -l -e '{secret}' --")
    return [line for line in found.stdout.splitlines() if line]


def controller_files_with(root, secret):
    """Bench results on the controller that hold the secret (read as bytes: the report has a PNG)."""
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def status(host, port, key=None):
    auth = f" -H 'Authorization: Bearer {key}'" if key else ""
    return int(host.check_output(f"curl -sS -o /dev/null -w '%{{http_code}}'{auth} http://127.0.0.1:{port}/v1/models"))


def allow_restarts(host):
    """Each run restarts both instances (their secrets change): clear systemd's start-limit count
    (StartLimitBurst in StartLimitIntervalSec) so that the restarts of the tests before and after
    this one do not add up to a refused start."""
    host.check_output(f"systemctl reset-failed {UNITS}")


@pytest.fixture(scope="module")
def secret_run(host):
    """The -vvv run with the test's secrets; afterwards the scenario's own key again."""
    allow_restarts(host)
    result = playbook_run.run_playbook(
        "sglang.yml", "-vvv", timeout=2400,
        extra={"sglang_server_hf_token": HF_TOKEN, "sglang_server_api_key": API_KEY,
               # The gate compares with earlier runs on a shared, busy machine: not this test's subject.
               "sglang_bench_baseline": "none"})
    try:
        yield result, result.stdout + result.stderr
    finally:
        allow_restarts(host)
        # The secrets live in the servers' files only: the deploy stage puts the scenario's back.
        restored = playbook_run.run_playbook("deploy.yml", timeout=1800)
        allow_restarts(host)
        out = restored.stdout + restored.stderr
        assert restored.returncode == 0, out[-3000:]
        assert all(status(host, port, SCENARIO_KEY) == 200 for port in INSTANCES.values())
        assert not host.file("/etc/sglang/main.secrets").contains(HF_TOKEN)


def test_no_secret_in_output_unit_inspect_or_world_readable_files(host, secret_run, session_summary):
    result, out = secret_run
    units = host.check_output(f"systemctl cat {UNITS}")
    inspect = host.check_output(f"docker inspect {CONTAINERS}")
    # Every process's command line (world-readable in /proc), the servers' included.
    processes = host.check_output("ps -eww -o args")
    journal = host.check_output(f"journalctl --no-pager --output cat {' '.join('--unit ' + u for u in UNITS.split())}")
    docker_logs = "".join(host.check_output(f"docker logs sglang-{name} 2>&1") for name in INSTANCES)
    assert "sglang.launch_server" in processes
    assert len(json.loads(inspect)) == len(INSTANCES)
    # The logs are searched where the server logged the key, masked by the launcher.
    for text in (journal, docker_logs):
        assert "server_args=ServerArgs(" in text and "api_key='<masked>'" in text
    counts, leaked = {}, {}
    for what, secret in SECRETS.items():
        # The search itself works: not limited to world-readable files, it finds the root-only
        # files that hold the secret.
        assert files_with(host, ["/etc/sglang"], secret, world_readable=False), what
        leaked[what] = (files_with(host, SEARCHED, secret) + files_with(host, SEARCHED_ANY_MODE, secret, False)
                        + controller_files_with(REPORTS, secret))
        counts[what] = {"run_output": count(out, secret), "systemctl_cat": count(units, secret),
                        "docker_inspect": count(inspect, secret), "process_list": count(processes, secret),
                        "journal": count(journal, secret), "docker_logs": count(docker_logs, secret),
                        "world_readable_files": len(files_with(host, SEARCHED, secret)),
                        "docker_and_bench_files": len(files_with(host, SEARCHED_ANY_MODE, secret, False)),
                        "controller_bench_files": len(controller_files_with(REPORTS, secret))}

    report = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reliability" / "secrets.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"verbosity": "-vvv", "searched": SEARCHED + SEARCHED_ANY_MODE + [str(REPORTS)],
                                  "counts": counts, "files": leaked}, indent=2) + "\n")
    session_summary("secrets: " + "; ".join(f"{what} " + " ".join(f"{k}={v}" for k, v in c.items())
                                  for what, c in counts.items()) + f" -> {report}")
    # Counts of a run that failed early, or not at -vvv, would prove nothing.
    assert result.returncode == 0 and playbook_run.recap(out)[HOST]["failed"] == 0, out[-3000:]
    assert f"<{playbook_run.address(HOST)}> ESTABLISH" in out, "not a -vvv run"
    assert all(v == 0 for c in counts.values() for v in c.values()), (counts, leaked)


def test_the_secrets_file_is_root_only_and_mounted(host, secret_run):
    for name in INSTANCES:
        mounts = json.loads(host.check_output(f"docker inspect --format '{{{{json .Mounts}}}}' sglang-{name}"))
        assert {"Source": f"/etc/sglang/{name}.secrets", "Destination": "/run/secrets/sglang", "RW": False} in [
            {k: m[k] for k in ("Source", "Destination", "RW")} for m in mounts]
        f = host.file(f"/etc/sglang/{name}.secrets")
        assert f.exists and f.mode == 0o600 and f.user == "root"
        assert f.contains(API_KEY) and f.contains(HF_TOKEN)
        assert host.file(f"/etc/sglang/last-good/{name}.secrets").mode == 0o600
        env = host.file(f"/etc/sglang/{name}.env").content_string
        assert API_KEY not in env and HF_TOKEN not in env
    # The hub token is in the server's own environment (PID 1 of the container: the shell exec'd it).
    found = host.run(f"docker exec sglang-main sh -c \"tr '\\0' '\\n' < /proc/1/environ | grep -cxF 'HF_TOKEN={HF_TOKEN}'\"")
    assert found.stdout.strip() == "1"


def test_the_new_key_is_in_force(host, secret_run):
    for port in INSTANCES.values():
        assert status(host, port) == 401
        assert status(host, port, SCENARIO_KEY) == 401
        assert status(host, port, API_KEY) == 200


def test_bench_results_are_root_only_on_the_host_and_the_controller(host, secret_run):
    """The runner writes its results under umask 077 and the role keeps their copies on the
    controller 0600: 0.5.23's lines would carry the server's settings (docs/upstream.md)."""
    copies = list(REPORTS.rglob("*.jsonl"))
    assert copies and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in copies), copies
    found = host.check_output("find /var/lib/sglang-bench/runs -mindepth 1 -printf '%y %m %u %p\\n'").splitlines()
    assert any(line.endswith(".jsonl") for line in found), found
    assert all(line.split()[1] == ("700" if line.startswith("d") else "600") and line.split()[2] == "root"
               for line in found), found
