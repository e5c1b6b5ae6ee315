"""ansible-playbook against the scenario's converged host: check mode reports no change; a venv
whose Python is gone is rebuilt. (The last test changes the host and converges it again.)
Bad inputs: test_bad_inputs.py."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402
PLAYBOOK = REPO / "playbooks" / "sglang.yml"

testinfra_hosts = ["ansible://sparks"]


def run_playbook(*args, extra=None, playbook=PLAYBOOK):
    return playbook_run.run_playbook(playbook.name, *args, extra=extra)


def recap(output):
    return playbook_run.recap(output)[playbook_run.hosts("sparks")[0]]


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
