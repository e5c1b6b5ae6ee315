"""The sglang_server role's input checks (roles/sglang_server/tasks/validate.yml, which the fleet preflight runs) on
this machine: a playbook of those tasks alone against localhost (asserts and set_fact only: nothing changes), with
the cases of molecule/shared/data/bad_inputs.yml they were written for held to what the molecule default scenario
requires of them (a failed task whose message names the variable as a word and holds the case's `says`)."""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CASES = {case["id"]: case for case in yaml.safe_load((ROOT / "molecule/shared/data/bad_inputs.yml").read_text())}
# An image reference the checks accept; nothing is pulled.
IMAGE = "lmsysorg/sglang@sha256:" + "0" * 64
GOOD_ARGS = {"model_path": "/models/Qwen3-8B-NVFP4"}
# The first failed task's result, one JSON line (callback_result_format json).
FAILED = re.compile(r"^(?:fatal|failed): \[localhost\].*? => (\{.*\})$", re.M)


def preflight(tmp_path, extra):
    """Run validate.yml with the role's defaults and extra vars; returns the first failure's msg, or None."""
    playbook = tmp_path / "validate.yml"
    playbook.write_text(yaml.safe_dump([{"name": "sglang_server inputs", "hosts": "localhost", "gather_facts": False,
                                         "tasks": [{"name": "Validate", "ansible.builtin.import_role": {
                                             "name": "sglang_server", "tasks_from": "validate"}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_CACHE_PLUGIN="memory",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_LOCAL_TEMP=str(tmp_path), ANSIBLE_NOCOLOR="1")
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          str(playbook), "-e", json.dumps({"sglang_server_image": IMAGE, **extra})],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
    found = FAILED.search(run.stdout)
    assert (run.returncode == 0) == (found is None), run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(found.group(1))["msg"] if found else None


@pytest.mark.parametrize("extra", [
    {"sglang_server_args": GOOD_ARGS},
    {"sglang_server_args": dict(GOOD_ARGS, tp_size=2, pp_size=1, dp_size=2, enable_dp_attention=True)},
    # The server may fetch a hub id when it is not offline.
    {"sglang_server_args": {"model_path": "Qwen/Qwen3-8B"}, "sglang_server_offline": False},
], ids=["cached-path", "parallelism-by-its-names", "hub-id-online"])
def test_valid_inputs_pass(tmp_path, extra):
    assert preflight(tmp_path, extra) is None


@pytest.mark.parametrize("case_id", [
    "server-args-tp-abbreviation", "server-args-tensor-parallel-size-alias",
    "server-args-model-path-hub-id", "server-args-model-path-relative",
])
def test_catalogue_case_is_refused_naming_its_variable(tmp_path, case_id):
    case = CASES[case_id]
    message = preflight(tmp_path, case["vars"])
    assert message is not None, case_id
    assert message.startswith("localhost: "), message
    assert re.search(rf"\b{re.escape(case['names'])}\b", message), message
    assert case["says"] in " ".join(message.split()), message


def test_every_other_spelling_is_named_with_the_key_to_write(tmp_path):
    message = preflight(tmp_path, {"sglang_server_args": dict(GOOD_ARGS, dp=2, pipeline_parallel_size=2)})
    assert "sglang_server_args.dp, sglang_server_args.pipeline_parallel_size: write dp_size, pp_size instead" in message


def test_a_non_integer_pp_size_is_refused(tmp_path):
    # sglang_server_gpus_needed (checks.yml) multiplies pp_size: the preflight refuses what it cannot count.
    message = preflight(tmp_path, {"sglang_server_args": dict(GOOD_ARGS, pp_size="two")})
    assert "sglang_server_args.tp_size, pp_size and dp_size must be integers" in message
