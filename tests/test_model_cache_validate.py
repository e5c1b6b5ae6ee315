"""The model_cache role's preflight (roles/model_cache/tasks/validate.yml, which the fleet preflight runs) on this
machine: a playbook of those tasks alone against localhost and a SIMULATED hub started here (sim/hub/testhub.py,
loopback) that behaves like the real one (a gated repo's metadata public, its files and auth-check refused
without a token; tree listings in pages). Read-only: the hub serves no file, nothing on the host changes.
The catalogue case `cache-model-gated-without-token` (molecule/shared/data/bad_inputs.yml) is held to what the
molecule default scenario requires of it."""
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from sglang_sim_helpers import start_sim_hub

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "sim" / "hub" / "testhub.py"
CASES = {case["id"]: case for case in yaml.safe_load((ROOT / "molecule/shared/data/bad_inputs.yml").read_text())}
# The sim fleet's hub arguments (its gated repo and test-only token, its small tree pages).
HUB_ARGS = (ROOT / "sim" / "infra" / "hub.args").read_text().split()
TOKEN = HUB_ARGS[HUB_ARGS.index("--token") + 1]
QWEN, GATED = "sim-org/Qwen3-8B-NVFP4-sim", "sim-org/Gated-sim"
FAILED = re.compile(r"^(?:fatal|failed): \[localhost\].*? => (\{.*\})$", re.M)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    proc, url = start_sim_hub(tmp_path_factory.mktemp("cache-hub"), "--host", "127.0.0.1", *HUB_ARGS)
    try:
        yield url
    finally:
        proc.kill()
        proc.wait(10)


def hub_get(url, path, method="GET"):
    with urllib.request.urlopen(urllib.request.Request(url + path, method=method), timeout=10) as r:
        return json.loads(r.read())


def preflight(tmp_path, hub, extra, *args):
    """Run validate.yml with the role's defaults; returns (first failure's msg or None, the plan, the output)."""
    plan = tmp_path / "plan.json"
    playbook = tmp_path / "validate.yml"
    playbook.write_text(yaml.safe_dump([{"name": "model_cache preflight", "hosts": "localhost", "gather_facts": False,
                                         "tasks": [{"name": "Validate", "ansible.builtin.import_role": {
                                             "name": "model_cache", "tasks_from": "validate"}},
                                                   {"name": "Write the plan", "delegate_to": "localhost",
                                                    "check_mode": False, "no_log": True,
                                                    "ansible.builtin.copy": {
                                                        "content": "{{ model_cache_resolved | to_json }}",
                                                        "dest": str(plan), "mode": "0600"}}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_CACHE_PLUGIN="memory",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_LOCAL_TEMP=str(tmp_path), ANSIBLE_NOCOLOR="1")
    hub_get(hub, "/_sim/reset", "POST")
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          str(playbook), *args, "-e", json.dumps({
                              "model_cache_hf_endpoint": hub, "model_cache_models_dir": str(tmp_path / "models"),
                              "model_cache_hf_home": str(tmp_path / "hf"), "ansible_python_interpreter": sys.executable,
                              **extra})],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = run.stdout + run.stderr
    found = FAILED.search(run.stdout)
    assert (run.returncode == 0) == (found is None), output[-3000:]
    assert hub_get(hub, "/_sim/stats")["bytes_served"] == 0  # the preflight fetched no file
    assert not (tmp_path / "models").exists() and not (tmp_path / "hf").exists()
    return (json.loads(found.group(1))["msg"] if found else None,
            json.loads(plan.read_text()) if plan.is_file() else None, output)


def refs(hub, repo):
    return hub_get(hub, "/_sim/manifest")["repos"][repo]


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check-mode"])
def test_gated_model_with_the_token_passes_and_its_tree_is_read_across_pages(tmp_path, hub, check_mode):
    models = [{"repo": QWEN, "revision": refs(hub, QWEN)["branches"]["main"], "local_dir": "Qwen3-8B-NVFP4"},
              {"repo": GATED, "revision": refs(hub, GATED)["branches"]["main"]}]
    message, plan, output = preflight(tmp_path, hub, {"model_cache_models": models, "model_cache_token": TOKEN},
                                      *(["--check"] if check_mode else []))
    assert message is None
    assert TOKEN not in output
    assert "--tree-page-size" in HUB_ARGS
    pages = [e["path"] for e in hub_get(hub, "/_sim/stats")["log"] if "/tree/" in e["path"]]
    for entry, model in zip(plan, models):
        files = refs(hub, model["repo"])["commits"][model["revision"]]
        assert sorted(e["path"] for e in entry["tree"]) == sorted(files), entry["repo"]
        assert len([p for p in pages if f"/{model['repo']}/tree/" in p and "cursor=" in p]) >= 1, pages


def test_catalogue_case_gated_without_token_is_refused_by_the_auth_check(tmp_path, hub):
    case = CASES["cache-model-gated-without-token"]
    # The catalogue's revision is the sim fleet hub's main commit of the gated repo.
    assert case["vars"]["model_cache_models"][0]["revision"] == refs(hub, GATED)["branches"]["main"]
    # The real hub's semantics: the revision is public, only the files are refused.
    assert hub_get(hub, f"/api/models/{GATED}/revision/main")["gated"] == "manual"
    message, _, output = preflight(tmp_path, hub, case["vars"])
    assert message is not None and message.startswith("localhost: "), message
    assert re.search(rf"\b{re.escape(case['names'])}\b", message), message
    assert case["says"] in " ".join(message.split()), message
    assert GATED in message
    assert "TASK [model_cache : Fail on a gated model the token does not open]" in output


def test_wrong_token_is_refused_naming_the_model(tmp_path, hub):
    models = [{"repo": GATED, "revision": refs(hub, GATED)["branches"]["main"]}]
    message, _, output = preflight(tmp_path, hub, {"model_cache_models": models, "model_cache_token": "hf_wrong_x"})
    assert message is not None and message.startswith("localhost: model_cache_models: " + GATED), message
    assert "the hub refused the token (HTTP 401)" in message
    assert "hf_wrong_x" not in output


def test_public_model_without_token_passes(tmp_path, hub):
    models = [{"repo": QWEN, "revision": refs(hub, QWEN)["branches"]["main"]}]
    message, plan, _ = preflight(tmp_path, hub, {"model_cache_models": models})
    assert message is None and len(plan) == 1
