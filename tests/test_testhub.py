"""Tests for sim/hub/testhub.py, the SIMULATED Hugging Face hub, driven by the REAL `hf` CLI.

What it follows: docs/upstream.md, "Hugging Face hub" (paths: tests/test_upstream_contract.py).

Everything runs on loopback; each hub is a subprocess on an OS-chosen port and is always killed.
"""

import hashlib
import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "sim" / "hub" / "testhub.py"
HF = str(Path(sys.executable).parent / "hf")
REPO = "sim-org/Qwen3-8B-NVFP4-sim"
TOKEN = "sim-secret-token"


# --------------------------------------------------------------------------- helpers

class Hub:
    def __init__(self, proc, url, data_dir, logdir):
        self.proc, self.url, self.data_dir, self.logdir = proc, url, data_dir, logdir

    def get(self, path, headers=None, method="GET"):
        req = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path, headers=None):
        status, _, body = self.get(path, headers)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def stats(self):
        return self.json("/_sim/stats")

    def reset(self):
        status, _, _ = self.get("/_sim/reset", method="POST")
        assert status == 200

    def manifest(self):
        return self.json("/_sim/manifest")


def start_hub(tmp, *args):
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    data_dir = tmp / "data"
    out = open(tmp / "hub.out", "w")
    err = open(tmp / "hub.err", "w")
    proc = subprocess.Popen(
        [sys.executable, str(HUB), "--host", "127.0.0.1", "--port", "0",
         "--data-dir", str(data_dir), "--quiet", *args],
        stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    out.close()
    err.close()
    deadline = time.monotonic() + 20
    url = None
    while time.monotonic() < deadline:
        text = (tmp / "hub.out").read_text()
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text)
        if m:
            url = m.group(1)
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if url is None:
        proc.kill()
        proc.wait(5)
        raise AssertionError("hub did not start: %s %s" % (
            (tmp / "hub.out").read_text(), (tmp / "hub.err").read_text()))
    return Hub(proc, url, data_dir, tmp)


def stop_hub(hub):
    hub.proc.kill()
    hub.proc.wait(10)


def run_hf(hub, home, *args, token=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", NO_COLOR="1")
    if token is not None:
        env["HF_TOKEN"] = token
    return subprocess.run([HF, *args], env=env, capture_output=True, text=True, timeout=timeout)


def blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def files_in(d):
    d = Path(d)
    return sorted(str(p.relative_to(d)) for p in d.rglob("*")
                  if p.is_file() and ".cache" not in p.relative_to(d).parts)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = start_hub(tmp_path_factory.mktemp("hub"), "--model", "sim-org/Tiny-Extra-sim")
    yield h
    stop_hub(h)


@pytest.fixture(scope="module")
def token_hub(tmp_path_factory):
    h = start_hub(tmp_path_factory.mktemp("tokenhub"), "--token", TOKEN)
    yield h
    stop_hub(h)


@pytest.fixture(scope="module")
def shas(hub):
    refs = hub.data_dir / "sim-org" / "Qwen3-8B-NVFP4-sim" / "refs"
    return {"main": (refs / "main").read_text().strip(), "v2": (refs / "v2").read_text().strip()}


# --------------------------------------------------------------------------- tests

def test_banner_and_manifest(hub, shas):
    out = (hub.logdir / "hub.out").read_text()
    assert "SIMULATED Hugging Face hub (test double)" in out
    man = hub.manifest()
    assert man["simulated"] is True
    assert set(man["repos"]) == {REPO, "sim-org/Tiny-Extra-sim"}
    assert man["repos"][REPO]["branches"] == shas
    assert re.fullmatch(r"[0-9a-f]{40}", shas["main"]) and shas["main"] != shas["v2"]
    # the data dir holds exactly what the manifest says
    for sha, files in man["repos"][REPO]["commits"].items():
        for path, meta in files.items():
            data = (hub.data_dir / REPO / sha / path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == meta["sha256"]
            assert len(data) == meta["size"]


def test_generation_is_deterministic(hub, shas):
    spec = importlib.util.spec_from_file_location("testhub_mod", HUB)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    a = mod.manifest(mod.build_repos(["sim-org/Tiny-Extra-sim"], mod.DEFAULT_WEIGHTS_SIZE))
    b = mod.manifest(mod.build_repos(["sim-org/Tiny-Extra-sim"], mod.DEFAULT_WEIGHTS_SIZE))
    assert a == b == hub.manifest()
    # commit sha = sha1 over the file contents: other weights size -> other sha
    c = mod.build_repos([], 1024)
    assert c[REPO].branches["main"] != shas["main"]


def test_generated_files_look_like_a_qwen3_model(hub, shas):
    snap = hub.data_dir / REPO / shas["main"]
    cfg = json.loads((snap / "config.json").read_text())
    assert cfg["simulated"] is True and cfg["model_type"] == "qwen3"
    assert cfg["architectures"] == ["Qwen3ForCausalLM"]
    assert cfg["quantization_config"]["quant_algo"] == "NVFP4"
    assert "SIMULATED" in (snap / "README.md").read_text()
    tok = json.loads((snap / "tokenizer.json").read_text())
    assert tok["model"]["type"] == "WordLevel" and len(tok["model"]["vocab"]) > 5
    json.loads((snap / "generation_config.json").read_text())
    json.loads((snap / "tokenizer_config.json").read_text())
    st = (snap / "model.safetensors").read_bytes()
    assert 1_000_000 < len(st) < 10_000_000
    (hlen,) = struct.unpack("<Q", st[:8])
    header = json.loads(st[8:8 + hlen])
    assert header["__metadata__"]["simulated"] == "true"
    end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    assert 8 + hlen + end == len(st)
    v2cfg = json.loads((hub.data_dir / REPO / shas["v2"] / "config.json").read_text())
    assert v2cfg != cfg and v2cfg["sim_revision"] == 2


def test_api_shapes(hub, shas):
    info = hub.json("/api/models/%s/revision/main" % REPO)
    assert info["id"] == REPO and info["sha"] == shas["main"]
    names = {s["rfilename"] for s in info["siblings"]}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert hub.json("/api/models/%s" % REPO)["sha"] == shas["main"]
    tree = hub.json("/api/models/%s/tree/%s?recursive=true" % (REPO, shas["main"]))
    by_path = {e["path"]: e for e in tree}
    assert set(by_path) == names
    st = by_path["model.safetensors"]
    assert st["type"] == "file" and st["lfs"]["size"] == st["size"] and st["lfs"]["pointerSize"] > 0
    data = (hub.data_dir / REPO / shas["main"] / "config.json").read_bytes()
    assert by_path["config.json"]["oid"] == blob_sha1(data) and "lfs" not in by_path["config.json"]


def test_resolve_headers_and_ranges(hub, shas):
    base = "/%s/resolve/%s/" % (REPO, shas["main"])
    weights = (hub.data_dir / REPO / shas["main"] / "model.safetensors").read_bytes()
    status, h, body = hub.get(base + "model.safetensors", method="HEAD")
    assert status == 200 and body == b""
    sha256 = hashlib.sha256(weights).hexdigest()
    assert h["X-Repo-Commit"] == shas["main"]
    assert h["ETag"] == '"%s"' % sha256 and h["X-Linked-Etag"] == '"%s"' % sha256
    assert int(h["X-Linked-Size"]) == len(weights) == int(h["Content-Length"])
    status, h, body = hub.get(base + "config.json", method="HEAD")
    cfg = (hub.data_dir / REPO / shas["main"] / "config.json").read_bytes()
    assert h["ETag"] == '"%s"' % blob_sha1(cfg) and "X-Linked-Etag" not in h
    # Range -> 206
    hub.reset()
    status, h, body = hub.get(base + "model.safetensors", {"Range": "bytes=100-199"})
    assert status == 206 and body == weights[100:200]
    assert h["Content-Range"] == "bytes 100-199/%d" % len(weights)
    status, h, body = hub.get(base + "model.safetensors", {"Range": "bytes=%d-" % (len(weights) - 10)})
    assert status == 206 and body == weights[-10:]
    status, h, body = hub.get(base + "model.safetensors", {"Range": "bytes=-5"})
    assert status == 206 and body == weights[-5:]
    status, h, _ = hub.get(base + "model.safetensors", {"Range": "bytes=%d-" % len(weights)})
    assert status == 416 and h["Content-Range"] == "bytes */%d" % len(weights)
    st = hub.stats()
    assert st["bytes_served"] == 115 and st["files"] == {REPO + "/model.safetensors": 115}
    # branch names resolve too
    status, h, body = hub.get("/%s/resolve/v2/config.json" % REPO)
    assert status == 200 and h["X-Repo-Commit"] == shas["v2"] and json.loads(body)["sim_revision"] == 2


def test_error_codes(hub, shas):
    status, h, _ = hub.get("/api/models/sim-org/nope/revision/main")
    assert status == 404 and h["X-Error-Code"] == "RepoNotFound"
    status, h, _ = hub.get("/api/models/%s/revision/nope" % REPO)
    assert status == 404 and h["X-Error-Code"] == "RevisionNotFound"
    status, h, _ = hub.get("/api/models/%s/tree/%s" % (REPO, "0" * 40))
    assert status == 404 and h["X-Error-Code"] == "RevisionNotFound"
    status, h, _ = hub.get("/%s/resolve/main/missing.bin" % REPO, method="HEAD")
    assert status == 404 and h["X-Error-Code"] == "EntryNotFound"
    assert h["X-Repo-Commit"] == shas["main"]


def test_download_by_sha_to_local_dir_is_byte_identical(hub, shas, tmp_path):
    hub.reset()
    dest = tmp_path / "model"
    r = run_hf(hub, tmp_path / "home", "download", REPO, "--revision", shas["main"],
               "--local-dir", str(dest))
    assert r.returncode == 0, r.stderr + r.stdout
    src = hub.data_dir / REPO / shas["main"]
    assert files_in(dest) == files_in(src)
    tree = {e["path"]: e for e in hub.json("/api/models/%s/tree/%s?recursive=true" % (REPO, shas["main"]))}
    total = 0
    for name in files_in(src):
        data = (dest / name).read_bytes()
        assert data == (src / name).read_bytes(), name
        entry = tree[name]
        if "lfs" in entry:
            assert hashlib.sha256(data).hexdigest() == entry["lfs"]["oid"]
        else:
            assert blob_sha1(data) == entry["oid"]
        total += len(data)
    st = hub.stats()
    assert st["bytes_served"] == total
    assert st["files"][REPO + "/model.safetensors"] == (src / "model.safetensors").stat().st_size
    # a revision pinned by sha needs no /revision/ call
    paths = [e["path"] for e in st["log"]]
    assert not any("/revision/" in p for p in paths)
    assert any(p.startswith("/api/models/%s/tree/%s" % (REPO, shas["main"])) for p in paths)
    # again into the same dir: nothing is re-downloaded
    hub.reset()
    r = run_hf(hub, tmp_path / "home", "download", REPO, "--revision", shas["main"],
               "--local-dir", str(dest))
    assert r.returncode == 0, r.stderr
    assert hub.stats()["bytes_served"] == 0


def test_download_into_cache_layout_and_second_run_serves_nothing(hub, shas, tmp_path):
    home = tmp_path / "home"
    hub.reset()
    r = run_hf(hub, home, "download", REPO, "--revision", shas["main"])
    assert r.returncode == 0, r.stderr + r.stdout
    snap = home / "hub" / "models--sim-org--Qwen3-8B-NVFP4-sim" / "snapshots" / shas["main"]
    assert str(snap) in r.stdout
    assert files_in(snap) == files_in(hub.data_dir / REPO / shas["main"])
    weights = (snap / "model.safetensors").read_bytes()
    sha256 = hashlib.sha256(weights).hexdigest()
    # LFS blobs are stored under their sha256, like with the real hub
    assert (home / "hub" / "models--sim-org--Qwen3-8B-NVFP4-sim" / "blobs" / sha256).is_file()
    first = hub.stats()["bytes_served"]
    assert first >= len(weights)
    hub.reset()
    r = run_hf(hub, home, "download", REPO, "--revision", shas["main"])
    assert r.returncode == 0, r.stderr
    st = hub.stats()
    assert st["bytes_served"] == 0 and st["files"] == {}
    assert all(e["method"] == "HEAD" for e in st["log"] if "/resolve/" in e["path"])


def test_branch_name_resolves_to_sha(hub, shas, tmp_path):
    home = tmp_path / "home"
    r = run_hf(hub, home, "download", REPO, "--revision", "v2", "--include", "config.json")
    assert r.returncode == 0, r.stderr
    repo_dir = home / "hub" / "models--sim-org--Qwen3-8B-NVFP4-sim"
    assert (repo_dir / "refs" / "v2").read_text() == shas["v2"]
    cfg = json.loads((repo_dir / "snapshots" / shas["v2"] / "config.json").read_text())
    assert cfg["sim_revision"] == 2
    r = run_hf(hub, home, "download", REPO, "--include", "config.json")  # default: main
    assert r.returncode == 0, r.stderr
    assert (repo_dir / "refs" / "main").read_text() == shas["main"]
    assert json.loads((repo_dir / "snapshots" / shas["main"] / "config.json").read_text())["sim_revision"] == 1


def test_include_json_only(hub, shas, tmp_path):
    hub.reset()
    dest = tmp_path / "json-only"
    r = run_hf(hub, tmp_path / "home", "download", REPO, "--revision", shas["main"],
               "--include", "*.json", "--local-dir", str(dest))
    assert r.returncode == 0, r.stderr
    got = files_in(dest)
    assert got and all(n.endswith(".json") for n in got)
    assert "config.json" in got and "tokenizer.json" in got
    assert set(hub.stats()["files"]) == {REPO + "/" + n for n in got}


def test_wrong_revision_and_wrong_repo_fail(hub, tmp_path):
    for rev in ("no-such-branch", "0123456789abcdef0123456789abcdef01234567"):
        r = run_hf(hub, tmp_path / "home", "download", REPO, "--revision", rev,
                   "--local-dir", str(tmp_path / "x"))
        assert r.returncode != 0
        assert "Revision not found" in r.stderr + r.stdout
    r = run_hf(hub, tmp_path / "home", "download", "sim-org/does-not-exist",
               "--local-dir", str(tmp_path / "y"))
    assert r.returncode != 0
    assert "not found" in (r.stderr + r.stdout).lower()
    assert not (tmp_path / "y").exists() or not any((tmp_path / "y").iterdir())


GATED_METADATA = ["/api/models/%s" % REPO, "/api/models/%s/revision/main" % REPO,
                  "/api/models/%s/tree/main?recursive=true" % REPO, "/api/models/%s/refs" % REPO]
GATED_REFUSED = ["/api/models/%s/auth-check" % REPO, "/%s/resolve/main/config.json" % REPO]


def test_gated_metadata_is_public_files_and_auth_check_are_not(token_hub):
    # As the real hub (docs/upstream.md, "Hugging Face hub"): info, revision, tree and refs of a gated
    # repo to anyone; its files and auth-check 401 GatedRepo without a token; a wrong token refused everywhere.
    assert [token_hub.get(path)[0] for path in GATED_METADATA] == [200] * 4
    assert token_hub.json("/api/models/%s" % REPO)["gated"] == "manual"
    for path in GATED_REFUSED:
        status, h, _ = token_hub.get(path)
        assert (status, h.get("X-Error-Code")) == (401, "GatedRepo"), path
        status, h, _ = token_hub.get(path, method="HEAD")
        assert (status, h.get("X-Error-Code")) == (401, "GatedRepo"), path
    for path in GATED_METADATA + GATED_REFUSED:
        status, h, _ = token_hub.get(path, {"Authorization": "Bearer wrong-token"})
        assert (status, h.get("X-Error-Message")) == (401, "Invalid credentials in Authorization header"), path
        assert token_hub.get(path, {"Authorization": "Bearer " + TOKEN})[0] == 200, path
    status, h, _ = token_hub.get("/api/whoami-v2")
    assert status == 401


def test_token_required(token_hub, tmp_path):
    r = run_hf(token_hub, tmp_path / "h1", "download", REPO, "--local-dir", str(tmp_path / "a"))
    assert r.returncode != 0
    r = run_hf(token_hub, tmp_path / "h2", "download", REPO, "--local-dir", str(tmp_path / "b"),
               token="wrong-token")
    assert r.returncode != 0
    token_hub.reset()
    r = run_hf(token_hub, tmp_path / "h3", "download", REPO, "--local-dir", str(tmp_path / "c"),
               token=TOKEN)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c" / "model.safetensors").is_file()
    log = token_hub.stats()["log"]
    assert log and all(e["auth"] for e in log if e["path"].startswith(("/api/models", "/sim-org")))


def test_interrupted_download_resumes_with_range(tmp_path):
    # hf 2.4.0 reads in 10 MiB chunks, so it can only resume past a 10 MiB boundary.
    size, cut = 12 * 1024 * 1024, 11 * 1024 * 1024
    h = start_hub(tmp_path / "resume-hub", "--weights-size", str(size), "--interrupt-once", str(cut))
    try:
        man = h.manifest()["repos"][REPO]
        sha = man["branches"]["main"]
        meta = man["commits"][sha]["model.safetensors"]
        dest = tmp_path / "d"
        r = run_hf(h, tmp_path / "home", "download", REPO, "--revision", sha,
                   "--include", "*.safetensors", "--local-dir", str(dest))
        assert r.returncode == 0, r.stderr
        data = (dest / "model.safetensors").read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"]
        st = h.stats()
        assert st["interrupted"] == 1
        gets = [e for e in st["log"] if e["method"] == "GET" and e["path"].endswith("model.safetensors")]
        assert [g["status"] for g in gets] == [200, 206]
        assert gets[1]["range"] == "bytes=%d-" % (10 * 1024 * 1024)
        assert st["bytes_served"] == cut + meta["size"] - 10 * 1024 * 1024
    finally:
        stop_hub(h)


def test_gated_repo_needs_the_token_others_do_not(tmp_path):
    gated = "sim-org/Gated-sim"
    h = start_hub(tmp_path / "gated-hub", "--model", gated, "--token", TOKEN, "--gated", gated)
    try:
        status, _, _ = h.get("/api/models/%s/revision/main" % gated)
        assert status == 200
        status, headers, _ = h.get("/api/models/%s/auth-check" % gated)
        assert status == 401 and headers["X-Error-Code"] == "GatedRepo"
        status, headers, _ = h.get("/%s/resolve/main/config.json" % gated)
        assert status == 401 and headers["X-Error-Code"] == "GatedRepo"
        assert h.get("/api/models/%s/auth-check" % gated, {"Authorization": "Bearer " + TOKEN})[0] == 200
        for path in ("/api/models/%s/revision/main" % REPO, "/api/models/%s/auth-check" % REPO):
            assert h.get(path)[0] == 200, path
        r = run_hf(h, tmp_path / "h1", "download", gated, "--local-dir", str(tmp_path / "a"))
        assert r.returncode != 0
        r = run_hf(h, tmp_path / "h2", "download", gated, "--local-dir", str(tmp_path / "b"), token=TOKEN)
        assert r.returncode == 0, r.stderr
        r = run_hf(h, tmp_path / "h3", "download", REPO, "--include", "*.json", "--local-dir", str(tmp_path / "c"))
        assert r.returncode == 0, r.stderr
    finally:
        stop_hub(h)


def tree_pages(hub, path, headers=None):
    """Every page of a tree listing, following `Link: <url>; rel="next"` as huggingface_hub does."""
    pages, url = [], hub.url + path
    while url:
        req = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(req, timeout=10) as r:
            pages.append(json.loads(r.read()))
            link = r.headers.get("Link")
        url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else None
    return pages


def test_tree_pages_with_link_next_keeping_the_query(tmp_path):
    h = start_hub(tmp_path / "paging-hub", "--tree-page-size", "3")
    try:
        sha = h.manifest()["repos"][REPO]["branches"]["main"]
        files = h.manifest()["repos"][REPO]["commits"][sha]
        pages = tree_pages(h, "/api/models/%s/tree/%s?recursive=true" % (REPO, sha))
        assert [len(p) for p in pages] == [3] * (len(files) // 3) + ([len(files) % 3] if len(files) % 3 else [])
        assert sorted(e["path"] for p in pages for e in p) == sorted(files)
        tree_gets = [e["path"] for e in h.stats()["log"] if "/tree/" in e["path"]]
        assert len(tree_gets) == len(pages) and all("recursive=true" in p for p in tree_gets)
        assert all("cursor=" in p for p in tree_gets[1:])
        # A cursor the hub did not make is refused.
        status, _, _ = h.get("/api/models/%s/tree/%s?recursive=true&cursor=bogus" % (REPO, sha))
        assert status == 400
        # The real hf follows the pages: every file is downloaded.
        r = run_hf(h, tmp_path / "home", "download", REPO, "--revision", sha, "--local-dir", str(tmp_path / "d"))
        assert r.returncode == 0, r.stderr
        assert files_in(tmp_path / "d") == sorted(files)
    finally:
        stop_hub(h)


def test_tree_page_size_must_be_positive(tmp_path):
    r = subprocess.run([sys.executable, str(HUB), "--port", "0", "--tree-page-size", "0"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "--tree-page-size" in r.stderr


def test_gated_needs_token_and_a_served_repo(tmp_path):
    r = subprocess.run([sys.executable, str(HUB), "--port", "0", "--gated", REPO],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "--gated" in r.stderr


def test_show_refs_matches_what_the_hub_serves(hub):
    r = subprocess.run([sys.executable, str(HUB), "--show-refs", "--model", "sim-org/Tiny-Extra-sim"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    refs = json.loads(r.stdout)
    for repo_id in (REPO, "sim-org/Tiny-Extra-sim"):
        status, _, body = hub.get("/api/models/%s/revision/main" % repo_id)
        assert status == 200 and refs[repo_id]["main"] == json.loads(body)["sha"]
