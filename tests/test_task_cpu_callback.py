"""scripts/callback_plugins/task_cpu.py: each task's line carries the machine CPU spent while it ran."""
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_a_busy_task_is_charged_its_cpu_and_a_cheap_one_is_not(tmp_path):
    # About 0.6 s of CPU in a child of the host's module, then a task that only prints.
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass"
    playbook = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Burn CPU", "ansible.builtin.command": {"argv": [sys.executable, "-c", busy]}},
        {"name": "Say something", "ansible.builtin.debug": {"msg": "hello"}}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook))
    out = tmp_path / "cpu.jsonl"
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_CALLBACK_PLUGINS=str(REPO / "scripts" / "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="task_cpu",
               TASK_CPU=str(out), ANSIBLE_CACHE_PLUGIN="ansible.builtin.memory")
    run = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          "-e", f"ansible_python_interpreter={sys.executable}", str(tmp_path / "play.yml")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["task"], line["action"], line["hosts"]) for line in lines] == [
        ("Burn CPU", "ansible.builtin.command", 1), ("Say something", "ansible.builtin.debug", 1)]
    burn, say = lines
    assert burn["cpu"] >= 0.5 and burn["wall"] >= 0.5, burn
    assert say["cpu"] < burn["cpu"] / 2, lines
