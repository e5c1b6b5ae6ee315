"""Bad inputs fail before any download, with a clear message; the hub token never shows,
even at -vvv. Runs ansible-playbook against the converged scenario."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402
REFS = json.loads((REPO / ".sim" / "hub-refs.json").read_text())
TOKEN = "hf_SIMULATED_test_token_not_a_secret"
GATED_CACHE = "/home/spark/.cache/huggingface/hub/models--sim-org--Gated-sim"


def run_playbook(*args, extra=None):
    return playbook_run.run_playbook("sglang.yml", *args, extra=extra)


def hub_bytes():
    out = subprocess.run(["docker", "exec", "sim-infra", "curl", "-fsS", "http://127.0.0.1:8081/_sim/stats"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return json.loads(out)["bytes_served"]


def changed_counts(out):
    return [int(n) for n in re.findall(r"spark-sim-\d\s*:\s*ok=\d+\s+changed=(\d+)", out)]


QWEN = {"repo": "sim-org/Qwen3-8B-NVFP4-sim", "local_dir": "Qwen3-8B-NVFP4"}
CASES = {
    "branch-as-revision": ({"model_cache_models": [dict(QWEN, revision="main")]},
                           "model_cache_models[].revision must be a commit sha"),
    "tag-only-image": ({"registry_mirror_images": ["lmsysorg/sglang:spark"]},
                       "registry_mirror_images: not pinned by digest"),
    "gated-without-token": ({"model_cache_token": "",
                             "model_cache_models": [{"repo": "sim-org/Gated-sim",
                                                     "revision": REFS["sim-org/Gated-sim"]["main"]}]},
                            "sim-org/Gated-sim"),
    "too-little-disk": ({"model_cache_free_margin_gb": 10_000_000}, "model_cache_models need"),
    "unknown-model": ({"model_cache_models": [dict(QWEN, repo="sim-org/nope", revision="0" * 40)]},
                      "not found"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_before_any_download(case):
    extra, message = CASES[case]
    before = hub_bytes()
    result = run_playbook(extra=extra)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert message in out, out[-3000:]
    assert "PLAY [Cache the image and the models]" not in out
    assert set(changed_counts(out)) == {0}, out[-2000:]
    assert hub_bytes() == before


def test_gated_without_token_says_a_token_is_needed():
    extra, _ = CASES["gated-without-token"]
    out = run_playbook(extra=extra).stdout
    assert "wants a token (model_cache_token or model_cache_token_file)" in out


def test_token_never_appears_at_vvv_even_while_downloading():
    # The gated model gone from every host: the seed downloads it again, with the token.
    for host in ("spark-sim-1", "spark-sim-2", "spark-sim-3"):
        subprocess.run(["docker", "exec", host, "rm", "-rf", GATED_CACHE], check=True, timeout=60)
    before = hub_bytes()
    result = run_playbook("-vvv")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "TASK [model_cache : Download with hf]" in out and hub_bytes() > before
    assert TOKEN not in out and TOKEN[-12:] not in out and TOKEN not in "".join(out.split())
    # The seed's token file is gone, and no file in the owner's home holds the token.
    leftover = subprocess.run(["docker", "exec", "spark-sim-1", "grep", "-rlF", TOKEN, "/home/spark"],
                              capture_output=True, text=True, timeout=60)
    assert leftover.returncode == 1 and leftover.stdout == "", leftover.stdout + leftover.stderr
