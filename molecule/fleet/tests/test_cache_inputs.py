"""A gated model without a token fails before any download, saying a token is needed: the hub (like the real one)
shows its revision and tree to anyone, so the refusal comes from its auth-check; the hub token never
shows, even at -vvv. Runs ansible-playbook against the converged scenario. (The other bad cache inputs are in
the catalogue, molecule/shared/data/bad_inputs.yml, run by the default scenario with the same hub check.)"""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402
from playbook_run import flat, hub_bytes, run_playbook  # noqa: E402

REFS = json.loads((REPO / ".sim" / "hub-refs.json").read_text())
TOKEN = "hf_SIMULATED_test_token_not_a_secret"
GATED_CACHE = "/home/spark/.cache/huggingface/hub/models--sim-org--Gated-sim"
SPARKS = playbook_run.hosts("sparks")


def test_gated_without_token_fails_before_any_download_saying_a_token_is_needed():
    before = hub_bytes()
    result = run_playbook("sglang.yml", extra={"model_cache_token": "",
                                 "model_cache_models": [{"repo": "sim-org/Gated-sim",
                                                         "revision": REFS["sim-org/Gated-sim"]["main"]}]})
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert "sim-org/Gated-sim" in out, out[-3000:]
    # The revision check passes (a gated repo's metadata is public); the auth-check's assert refuses.
    assert "TASK [model_cache : Fail on a gated model the token does not open]" in out, out[-3000:]
    assert "gated: the hub wants a token (model_cache_token or model_cache_token_file)" in flat(out), out[-3000:]
    assert "PLAY [Cache the image and the models]" not in out
    counts = playbook_run.recap(out)
    assert all(counts[spark]["changed"] == 0 for spark in SPARKS), counts
    assert hub_bytes() == before


def test_token_never_appears_at_vvv_even_while_downloading():
    # The gated model gone from every host: the seed downloads it again, with the token. Only model_cache reads
    # model_cache_token (its hub queries and its download), so its stage alone is run, at -vvv.
    for host in SPARKS:
        subprocess.run(["docker", "exec", host, "rm", "-rf", GATED_CACHE], check=True, timeout=60)
    before = hub_bytes()
    result = run_playbook("cache.yml", "-vvv")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "TASK [model_cache : Download with hf]" in out and hub_bytes() > before
    assert TOKEN not in out and TOKEN[-12:] not in out and TOKEN not in "".join(out.split())
    # The seed's token file is gone, and no file in the owner's home holds the token.
    leftover = subprocess.run(["docker", "exec", SPARKS[0], "grep", "-rlF", TOKEN, "/home/spark"],
                              capture_output=True, text=True, timeout=60)
    assert leftover.returncode == 1 and leftover.stdout == "", leftover.stdout + leftover.stderr
