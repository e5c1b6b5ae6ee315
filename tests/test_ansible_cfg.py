"""The project's ansible.cfg names no inventory: a run without -i reaches no host (not the simulated fleet, not a
fleet someone's default config points at)."""
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_without_an_inventory_lists_no_host(tmp_path):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    env.pop("ANSIBLE_INVENTORY", None)
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "--list-hosts", "playbooks/sglang.yml"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    counts = re.findall(r"hosts \((\d+)\):", run.stdout)
    assert len(counts) > 5 and set(counts) == {"0"}, run.stdout
