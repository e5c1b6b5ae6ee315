"""library/sglang_host_state.py: what sglang_server's checks read from a host before any restart, in one module
run. Against stand-ins for nvidia-smi, ss, systemctl and docker on PATH (the molecule scenarios run it against the
simulated Sparks' own)."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sglang_sim_helpers import REPO, run_ansible_module  # noqa: E402

MODULE = REPO / "library" / "sglang_host_state.py"
SS = "LISTEN 0 4096 0.0.0.0:30000 0.0.0.0:*\nLISTEN 0 128 127.0.0.1:22 0.0.0.0:*\n"


def stand_ins(tmp_path, monkeypatch, gpus="1", gpu_rc=0):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "nvidia-smi": f'[ "$*" = "--query-gpu=count --format=csv,noheader" ] || exit 9\necho "{gpus}"\nexit {gpu_rc}',
        "ss": f'[ "$*" = "-Hltn" ] || exit 9\nprintf "{SS.encode("unicode_escape").decode()}"',
        "systemctl": ('[ "$1 $2" = "is-active sglang-main.service" ] && { echo active; exit 0; }\n'
                      '[ "$1 $2" = "is-enabled sglang-main.service" ] && { echo enabled; exit 0; }\n'
                      '[ "$1" = is-active ] && { echo inactive; exit 3; }\necho not-found\nexit 4'),
        "docker": '[ "$1 $2 $3" = "image inspect img:here" ]',
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    units = tmp_path / "units"
    units.mkdir()
    (units / "sglang-main.service").write_text("[Service]\nExecStart=/usr/bin/docker run ... --port 30000\n")
    return units


def test_it_reads_gpus_ports_units_and_image_in_one_run(tmp_path, monkeypatch):
    units = stand_ins(tmp_path, monkeypatch)
    result, _ = run_ansible_module(MODULE, {"units": ["sglang-main.service", "sglang-second.service"],
                                            "unit_dir": str(units), "image": "img:here"}, tmp_path, check_mode=True)
    assert result["changed"] is False and result["gpu_count"] == 1
    assert result["listening"] == SS.splitlines()
    assert result["units"] == {
        "sglang-main.service": {"active": "active", "enabled": "enabled", "content": (units / "sglang-main.service").read_text()},
        "sglang-second.service": {"active": "inactive", "enabled": "not-found", "content": ""}}
    assert result["image_present"] is True and result["rdma"] == os.path.exists("/dev/infiniband")


def test_a_missing_image_and_an_empty_count(tmp_path, monkeypatch):
    units = stand_ins(tmp_path, monkeypatch, gpus="")
    result, _ = run_ansible_module(MODULE, {"unit_dir": str(units), "image": "img:gone"}, tmp_path)
    assert result["image_present"] is False and result["gpu_count"] == 0 and result["units"] == {}


def test_a_failing_nvidia_smi_fails_the_module_with_its_output(tmp_path, monkeypatch):
    units = stand_ins(tmp_path, monkeypatch, gpus="NVIDIA-SMI has failed", gpu_rc=9)
    result, _ = run_ansible_module(MODULE, {"unit_dir": str(units)}, tmp_path)
    assert result["failed"] and result["msg"] == "nvidia-smi --query-gpu=count failed (rc=9): NVIDIA-SMI has failed"


def test_the_kept_help_is_returned_only_for_the_image_it_was_kept_for(tmp_path, monkeypatch):
    units = stand_ins(tmp_path, monkeypatch)
    cache = tmp_path / "image-flags"
    args = {"unit_dir": str(units), "image": "img:here", "help_cache": str(cache)}
    assert run_ansible_module(MODULE, args, tmp_path)[0]["help"] is None  # no file yet
    cache.write_text("img:here\nusage: launch_server [--model-path MODEL_PATH]\n  --port PORT\n")
    assert run_ansible_module(MODULE, args, tmp_path)[0]["help"] == "usage: launch_server [--model-path MODEL_PATH]\n  --port PORT\n"
    # Kept for another image (the inventory moved to a new digest): read again.
    assert run_ansible_module(MODULE, dict(args, image="img:new"), tmp_path)[0]["help"] is None
    cache.write_text("img:here\n")  # a reference without text (a write cut short): read again, refuse no flag
    assert run_ansible_module(MODULE, args, tmp_path)[0]["help"] is None
    assert run_ansible_module(MODULE, dict(args, help_cache=""), tmp_path)[0]["help"] is None
