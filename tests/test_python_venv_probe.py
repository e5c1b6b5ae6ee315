"""python_venv's probe (roles/python_venv/tasks/validate.yml) against localhost, on the project's own venv: it says
whether every requirement is installed at a version it allows, which is what lets a run skip the wheelhouse and
pip where the venv already holds its pins. Read-only: the venv is looked at, not changed."""
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
PIP = version("pip")


def found(tmp_path, requirements, path=VENV):
    """python_venv_found after the role's validate tasks, with python_venv_path (the project's venv by default)."""
    out = tmp_path / "found.json"
    playbook = tmp_path / "probe.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "python_venv probe", "hosts": "localhost", "gather_facts": False,
        "vars": {"python_venv_owner": "root", "python_venv_path": str(path), "python_venv_packages": requirements},
        "tasks": [{"name": "Validate", "ansible.builtin.import_role": {"name": "python_venv", "tasks_from": "validate"}},
                  {"name": "Write what was found", "check_mode": False,
                   "ansible.builtin.copy": {"content": "{{ python_venv_found | to_json }}", "dest": str(out), "mode": "0600"}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_CACHE_PLUGIN="memory",
               ANSIBLE_LOCAL_TEMP=str(tmp_path), ANSIBLE_NOCOLOR="1")
    run = subprocess.run([str(VENV / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          "-e", json.dumps({"ansible_python_interpreter": sys.executable}), str(playbook)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return json.loads(out.read_text())


def test_a_venv_that_holds_every_pin_is_current(tmp_path):
    got = found(tmp_path, [f"pip=={PIP}", f"PyYAML=={version('PyYAML')}", "pip>=1"])
    assert got == {"parent": True, "dir": True, "venv": True, "ours": False, "python": True, "current": True}


@pytest.mark.parametrize("requirement", ["pip==0.0.1", "no-such-distribution-here==1.0", "pip<1"])
def test_a_missing_or_other_version_is_not_current(tmp_path, requirement):
    got = found(tmp_path, [f"pip=={PIP}", requirement])
    assert got["python"] and not got["current"], got


def test_a_path_without_a_venv_is_not_current(tmp_path):
    """As on a bare host: nothing at the path, so nothing is skipped."""
    got = found(tmp_path, [f"pip=={PIP}"], path=tmp_path / "no-venv-here")
    assert got == {"parent": True, "dir": False, "venv": False, "ours": False, "python": False, "current": False}
