"""ansible-playbook against the scenario's converged host: bad inputs fail in the preflight,
naming the variable, before the host changes; check mode reports no change; a venv whose
Python is gone is rebuilt. (The last test changes the host and converges it again.)"""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402
PLAYBOOK = REPO / "playbooks" / "sglang.yml"

testinfra_hosts = ["ansible://sparks"]

BAD_INPUTS = [
    ("spark_host_allow_x86_64", "sometimes"),
    ("spark_host_toolkit_default_runtime", "perhaps"),
    ("spark_host_supported_os", {"Ubuntu": ["24"]}),
    ("spark_host_nvidia_smi", "bin/nvidia-smi"),
    ("spark_host_min_driver_version", "999.0"),
    ("spark_host_toolkit_packages", {"not": "a list"}),
    ("spark_host_docker_users", {"not": "a list"}),
    ("spark_host_free_disk_min_gb", 10_000_000),
    ("spark_host_free_disk_path", "var/lib"),
    ("python_venv_owner", "nosuchuser"),
    ("python_venv_owner", ""),
    ("python_venv_path", "venv/relative"),
    ("python_venv_packages", []),
    ("python_venv_wheelhouse", "relative/wheels"),
    ("sglang_verify_max_tokens", 0),
    ("sglang_bench_run", ["nope"]),
    ("sglang_bench_max_throughput_drop", 1.5),
]


def run_playbook(*args, extra=None, playbook=PLAYBOOK):
    return playbook_run.run_playbook(playbook.name, *args, extra=extra)


def recap(output):
    return playbook_run.recap(output)["spark-sim-1"]


@pytest.mark.parametrize("name,value", BAD_INPUTS, ids=[f"{n}={v!r}" for n, v in BAD_INPUTS])
def test_bad_input_fails_in_preflight_without_change(name, value):
    result = run_playbook(extra={name: value})
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    counts = recap(out)
    assert counts["failed"] == 1 and counts["changed"] == 0, counts
    failed_line = [line for line in out.splitlines() if line.startswith("fatal:")]
    assert failed_line, out[-3000:]
    assert name in out[out.index(failed_line[0]):], out[-3000:]
    # It stopped in the preflight play: the host play never started.
    assert "PLAY [Preflight the whole fleet" in out
    assert "PLAY [Prepare the Spark hosts]" not in out


def test_check_mode_on_converged_host_reports_no_change():
    result = run_playbook("--check", "--diff")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert recap(out)["changed"] == 0, out[-3000:]


VENV = "/home/spark/venv/gb10-training"


def test_venv_whose_python_is_gone_is_rebuilt(host):
    # As after an OS upgrade that removed the interpreter the venv was built with.
    host.run(f"ln -sfn /usr/bin/python3.gone {VENV}/bin/python3")
    assert host.run(f"{VENV}/bin/python -c 'import sys'").rc != 0
    result = run_playbook(playbook=REPO / "playbooks" / "host.yml")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert recap(out)["changed"] > 0
    assert "TASK [python_venv : Remove a venv whose Python is gone]" in out
    version = host.run(f"runuser -u spark -- {VENV}/bin/hf version")
    assert version.rc == 0 and "2.4.0" in version.stdout, version.stderr
