"""Three converged SIMULATED Sparks: the model and the image were fetched from outside once
(test hub and upstream registry counters), copied over the LAN, and verified everywhere."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402
SPARKS = playbook_run.hosts("sparks")
INFRA = playbook_run.hosts("sim_infra")[0]
REFS = json.loads((REPO / ".sim" / "hub-refs.json").read_text())
DIGEST = (REPO / ".sim" / "images" / "sglang-sim-0.5.23.digest").read_text().strip()  # this scenario's (molecule.yml)
IMAGE = f"lmsysorg/sglang@{DIGEST}"
TOKEN = "hf_SIMULATED_test_token_not_a_secret"
QWEN = "sim-org/Qwen3-8B-NVFP4-sim"
GATED = "sim-org/Gated-sim"
LOCAL_DIR = "/home/spark/gb10/models/Qwen3-8B-NVFP4"
GATED_SNAPSHOT = f"/home/spark/.cache/huggingface/hub/models--sim-org--Gated-sim/snapshots/{REFS[GATED]['main']}"


def infra(*cmd):
    return subprocess.run(["docker", "exec", INFRA, *cmd], capture_output=True, text=True, timeout=30,
                          check=True).stdout


def hub_json(path):
    return json.loads(infra("curl", "-fsS", "-H", f"Authorization: Bearer {TOKEN}", f"http://127.0.0.1:8081{path}"))


def tree(repo):
    """The files of the hub's tree listing at main, every page of it (Link rel="next", sim/infra/hub.args pages
    it by 3), as huggingface_hub reads it."""
    url, entries = f"http://127.0.0.1:8081/api/models/{repo}/tree/{REFS[repo]['main']}?recursive=true", []
    while url:
        # infra() reads text, so the header block's CRLFs arrive as newlines.
        head, _, body = infra("curl", "-fsS", "-D", "-", "-H", f"Authorization: Bearer {TOKEN}", url).partition("\n\n")
        entries += json.loads(body)
        link = re.search(r'^link:\s*<([^>]+)>\s*;\s*rel="?next"?', head, re.I | re.M)
        url = link.group(1) if link else None
    return {e["path"]: e for e in entries if e["type"] == "file"}


def hosts():
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return [testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}") for name in SPARKS]


def sha256s(host, directory):
    out = host.check_output(f"cd {directory} && find -L . -type f ! -name '.spark-sglang-manifest.json' "
                            "! -path './.cache/*' -exec sha256sum {} +")
    return {line.split()[1][2:]: line.split()[0] for line in out.splitlines()}


def expected_sha256(entry):
    return entry["lfs"]["oid"] if entry.get("lfs") else None


@pytest.mark.parametrize("repo,directory,patterns", [
    (QWEN, LOCAL_DIR, None),
    (GATED, GATED_SNAPSHOT, (".json", ".safetensors")),
])
def test_every_host_has_the_same_verified_model(repo, directory, patterns):
    files = tree(repo)
    if patterns:
        files = {p: e for p, e in files.items() if p.endswith(patterns)}
    copies = [sha256s(h, directory) for h in hosts()]
    assert set(copies[0]) == set(files), (sorted(copies[0]), sorted(files))
    assert copies[0] == copies[1] == copies[2]
    for path, entry in files.items():
        if expected_sha256(entry):
            assert copies[0][path] == expected_sha256(entry), path
    for h in hosts():
        manifest = json.loads(h.file(f"{directory}/.spark-sglang-manifest.json").content_string)
        assert manifest["repo"] == repo and manifest["revision"] == REFS[repo]["main"]
        assert h.file(directory).user == "spark"


def test_the_hub_served_each_model_file_once(noop_run):
    """After converge AND the run without change: each file's bytes equal its size, not 3x or 6x."""
    stats = hub_json("/_sim/stats")
    expected = {f"{QWEN}/{p}": e["size"] for p, e in tree(QWEN).items()}
    expected.update({f"{GATED}/{p}": e["size"] for p, e in tree(GATED).items() if p.endswith((".json", ".safetensors"))})
    assert stats["files"] == expected
    assert stats["bytes_served"] == sum(expected.values())


def test_every_host_has_the_image_by_digest():
    for h in hosts():
        result = h.run(f"docker image inspect --format '{{{{json .RepoDigests}}}}' {IMAGE}")
        assert result.rc == 0, result.stderr
        assert DIGEST in result.stdout


def test_the_upstream_registry_served_each_blob_once(noop_run):
    logs = subprocess.run(["docker", "logs", INFRA], capture_output=True, text=True, timeout=30)
    gets = re.findall(r'"GET /v2/lmsysorg/sglang/blobs/(sha256:[0-9a-f]{64}) HTTP/1\.1" 200', logs.stdout + logs.stderr)
    assert gets, "the upstream registry served no blob"
    assert len(gets) == len(set(gets)), sorted(gets)
    manifest = json.loads(infra("curl", "-fsS", "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json",
                                f"http://127.0.0.1:5000/v2/lmsysorg/sglang/manifests/{DIGEST}"))
    blobs = {manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}
    assert set(gets) == blobs


def test_the_mirror_is_a_pull_through_cache_on_the_named_host():
    mirror = hosts()[0]
    assert mirror.service("docker-registry").is_running
    assert "remoteurl: http://sim-infra:5000" in mirror.file("/etc/docker/registry/config.yml").content_string
    for h in hosts():
        daemon = json.loads(h.file("/etc/docker/daemon.json").content_string)
        assert daemon["registry-mirrors"] == [f"http://{playbook_run.address(SPARKS[0])}:5001"]   # its ansible_host
        assert daemon["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"   # the toolkit's entry kept


def test_no_seed_daemon_left_running():
    for h in hosts():
        assert not h.service("spark-sglang-model-seed").is_running
