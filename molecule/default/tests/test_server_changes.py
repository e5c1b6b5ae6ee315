"""sglang_server behaviour on the converged host, through real playbook runs: a flag change
restarts only its instance, a never-healthy configuration is rolled back, bad inputs fail
before any restart. (Docker and host restarts: test_faults.py.)"""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402

testinfra_hosts = ["ansible://sparks"]

SECOND = {"port": 30001, "mem_fraction_static": 0.4, "served_model_name": "qwen3-8b-second"}
CONVERGED = [{"name": "main"}, {"name": "second", "args": SECOND}]
HOST = playbook_run.hosts("sparks")[0]


def started_at(host, name):
    return host.check_output(f"docker inspect --format '{{{{.State.StartedAt}}}}' sglang-{name}")


def healthy(host, port):
    return host.run(f"curl -fsS -o /dev/null http://127.0.0.1:{port}/health").rc == 0


def deploy(extra=None, *args):
    result = playbook_run.run_playbook("deploy.yml", *args, extra=extra)
    return result, result.stdout + result.stderr


def test_a_changed_flag_restarts_only_its_instance(host):
    before = {n: started_at(host, n) for n in ("main", "second")}
    result, out = deploy({"sglang_server_instances": [
        {"name": "main"}, {"name": "second", "args": dict(SECOND, mem_fraction_static=0.35)}]})
    assert result.returncode == 0, out[-3000:]
    assert started_at(host, "main") == before["main"]
    assert started_at(host, "second") != before["second"]
    assert "--mem-fraction-static 0.35" in host.check_output("systemctl cat sglang-second")
    # Back to the converged flags (restarts `second` once more), then a no-op run changes nothing.
    result, out = deploy({"sglang_server_instances": CONVERGED})
    assert result.returncode == 0, out[-3000:]
    result, out = deploy()
    assert result.returncode == 0 and playbook_run.recap(out)[HOST]["changed"] == 0, out[-3000:]


def test_an_image_that_never_gets_healthy_is_rolled_back(host):
    # A "bad release": the same server, but it never finishes warming up (sim failure mode).
    good = host.check_output("docker inspect --format '{{.Config.Image}}' sglang-main")
    bad = "lmsysorg/sglang@" + (REPO / ".sim" / "images" / "sglang-sim-never-healthy.digest").read_text().strip()
    second_before = started_at(host, "second")
    result, out = deploy({"sglang_server_image": bad, "sglang_server_ready_timeout": 8})
    assert result.returncode != 0, out[-3000:]
    assert "instance main was not healthy" in out
    assert "Rolled back to the last good configuration, which is healthy again" in out
    assert healthy(host, 30000) and healthy(host, 30001)
    assert host.check_output("docker inspect --format '{{.Config.Image}}' sglang-main") == good
    assert bad not in host.file("/etc/systemd/system/sglang-main.service").content_string
    # The run stopped at the first failing instance: the other one was never touched.
    assert started_at(host, "second") == second_before
    result, out = deploy()
    assert result.returncode == 0 and playbook_run.recap(out)[HOST]["changed"] == 0, out[-3000:]


BAD = {
    "unknown-flag": ({"sglang_server_args": {"model_path": "/models/Qwen3-8B-NVFP4", "bogus_flag": 1}},
                     "does not accept: --bogus-flag"),
    "tp-too-large": ({"sglang_server_args": {"model_path": "/models/Qwen3-8B-NVFP4", "tp_size": 2}},
                     "sglang_server_args need 2 GPUs on this node, the host has 1"),
    "missing-model": ({"sglang_server_args": {"model_path": "/models/Not-There"}},
                      "sglang_server_args.model_path /models/Not-There is not in the cache"),
    "port-taken": ({"sglang_server_instances": [{"name": "main", "args": {"port": 22}}]},
                   "sglang_server_args.port 22 is taken by another program"),
    "bad-flag-key": ({"sglang_server_args": {"model_path": "/models/Qwen3-8B-NVFP4", "Bad-Key": 1}}, "Bad-Key"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_before_any_restart(host, case):
    extra, message = BAD[case]
    before = {n: started_at(host, n) for n in ("main", "second")}
    result, out = deploy(extra)
    assert result.returncode != 0, out[-3000:]
    assert message in out, out[-3000:]
    assert playbook_run.recap(out)[HOST]["changed"] == 0, out[-3000:]
    assert {n: started_at(host, n) for n in ("main", "second")} == before

