"""python_venv's probe (roles/python_venv/tasks/validate.yml) against localhost, on the project's own venv: it says
whether every requirement is installed at a version it allows, which is what lets a run skip the wheelhouse and
pip where the venv already holds its pins, and whether dpkg has every OS package (no apt run then). Read-only: the
venv is looked at, not changed."""
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


def found(tmp_path, requirements, path=VENV, os_packages=("dpkg", "apt"), tasks_from="validate"):
    """python_venv_found after the role's validate tasks (or its whole main), with python_venv_path (the project's
    venv by default)."""
    out = tmp_path / "found.json"
    playbook = tmp_path / "probe.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "python_venv probe", "hosts": "localhost", "gather_facts": False,
        "vars": {"python_venv_owner": "root", "python_venv_path": str(path), "python_venv_packages": requirements,
                 "python_venv_os_packages": list(os_packages)},
        "tasks": [{"name": "Validate", "ansible.builtin.import_role": {"name": "python_venv", "tasks_from": tasks_from}},
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
    assert got == {"parent": True, "dir": True, "venv": True, "ours": False, "python": True, "current": True,
                   "os_packages": True}


@pytest.mark.parametrize("requirement", ["pip==0.0.1", "no-such-distribution-here==1.0", "pip<1"])
def test_a_missing_or_other_version_is_not_current(tmp_path, requirement):
    got = found(tmp_path, [f"pip=={PIP}", requirement])
    assert got["python"] and not got["current"], got


def test_a_path_without_a_venv_is_not_current(tmp_path):
    """As on a bare host: nothing at the path, so nothing is skipped."""
    got = found(tmp_path, [f"pip=={PIP}"], path=tmp_path / "no-venv-here")
    assert got == {"parent": True, "dir": False, "venv": False, "ours": False, "python": False, "current": False,
                   "os_packages": True}


@pytest.mark.parametrize("os_packages", [["dpkg", "no-such-package-here"], ["no-such-package-here"]])
def test_an_os_package_dpkg_lacks_is_found_missing(tmp_path, os_packages):
    got = found(tmp_path, [f"pip=={PIP}"], os_packages=os_packages)
    assert got["current"] and got["os_packages"] is False, got


def test_a_users_own_venv_gets_no_mark_that_would_let_the_role_remove_it(tmp_path):
    """The whole role on a working venv it did not make, which already holds the pins: nothing to install, and no
    mark (only a venv with the role's mark is ever removed, when its Python is gone)."""
    venv = tmp_path / "users-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('pip'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    before = sorted(p.name for p in venv.iterdir())
    got = found(tmp_path, [f"pip=={pip}"], path=venv, os_packages=["dpkg"], tasks_from="main")
    assert got["venv"] and got["python"] and not got["ours"], got
    assert sorted(p.name for p in venv.iterdir()) == before
