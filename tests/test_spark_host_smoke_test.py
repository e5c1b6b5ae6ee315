"""spark_host's GPU smoke test names the layer that fails (roles/spark_host/tasks/smoke_test.yml): the toolkit's
runtime hook, the nvidia runtime in daemon.json, the image, or the container itself, in the order the chain runs.

One ansible-playbook run over five local hosts, one per case, each with a `docker` stand-in on PATH that answers as
a host without a working GPU chain would (the smoke test itself needs a GPU; molecule's sim hosts pass it)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = """#!/bin/sh
case "$*" in
  "run "*gpu-image*) echo "GPU 0: NVIDIA GB10 (UUID: GPU-00000000-0000-0000-0000-000000000000)" ;;
  "run "*) echo "docker: Error response from daemon: could not select device driver" >&2; exit 125 ;;
  "image inspect missing-image") exit 1 ;;
esac
"""
FAILS = "docker run --gpus all {image} nvidia-smi -L gave rc=125: docker: Error response from daemon: could not select device driver"


def run_cases(tmp_path):
    bin_dir, hook = tmp_path / "bin", tmp_path / "nvidia-container-runtime-hook"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(DOCKER)
    (bin_dir / "docker").chmod(0o755)
    hook.write_text("")
    plain, nvidia = tmp_path / "plain.json", tmp_path / "nvidia.json"
    plain.write_text("{}")
    nvidia.write_text(json.dumps({"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}))
    cases = {
        "toolkit": {"spark_host_runtime_hook": str(tmp_path / "missing-hook"), "spark_host_docker_daemon_json": str(nvidia),
                    "spark_host_smoke_image": "some-image"},
        "runtime": {"spark_host_runtime_hook": str(hook), "spark_host_docker_daemon_json": str(plain),
                    "spark_host_smoke_image": "some-image"},
        "image": {"spark_host_runtime_hook": str(hook), "spark_host_docker_daemon_json": str(nvidia),
                  "spark_host_smoke_image": "missing-image"},
        "container": {"spark_host_runtime_hook": str(hook), "spark_host_docker_daemon_json": str(nvidia),
                      "spark_host_smoke_image": "some-image"},
        "working": {"spark_host_runtime_hook": str(hook), "spark_host_docker_daemon_json": str(plain),
                    "spark_host_smoke_image": "gpu-image"},
    }
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {
        name: dict(vars, ansible_connection="local", ansible_python_interpreter=sys.executable)
        for name, vars in cases.items()}}}))
    playbook = tmp_path / "smoke.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Smoke test", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "The smoke test", "ansible.builtin.include_role": {"name": "spark_host", "tasks_from": "smoke_test"}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_CALLBACK_RESULT_FORMAT="json",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_CACHE_PLUGIN="memory",
               PATH=f"{bin_dir}:{os.environ['PATH']}")
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(playbook)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    failures = {host: json.loads(result)["msg"]
                for host, result in re.findall(r"^fatal: \[(\S+)\]: FAILED! => (\{.*\})$", run.stdout, re.M)}
    return run, failures


def test_each_layer_is_named_in_the_order_the_chain_runs(tmp_path):
    run, failures = run_cases(tmp_path)
    assert run.returncode != 0 and set(failures) == {"toolkit", "runtime", "image", "container"}, run.stdout[-3000:]
    missing_hook, plain = tmp_path / "missing-hook", tmp_path / "plain.json"
    assert failures["toolkit"] == (f"toolkit: GPU smoke test failed in the toolkit layer: {missing_hook} is missing. "
                                   + FAILS.format(image="some-image"))
    assert failures["runtime"] == (f"runtime: GPU smoke test failed in the runtime config layer: {plain} has no "
                                   "nvidia runtime. " + FAILS.format(image="some-image"))
    assert failures["image"] == ("image: GPU smoke test failed in the image layer: missing-image is not on the host "
                                 "and could not be pulled. " + FAILS.format(image="missing-image"))
    assert failures["container"] == ("container: GPU smoke test failed in the container layer: the GPU is not "
                                     "visible inside the container (driver or hook). " + FAILS.format(image="some-image"))
    # A chain that works reports the GPU and looks at no layer.
    assert re.search(r'ok: \[working\] => \{\s*"msg": "working: --gpus all container sees GPU 0: NVIDIA GB10', run.stdout), \
        run.stdout[-3000:]
    assert "working: GPU smoke test failed" not in run.stdout
