"""Tests for library/model_manifest.py, the module that verifies a model copy against the hub's tree.

The module is run for real, the way Ansible runs it: `python library/model_manifest.py args.json`
with `{"ANSIBLE_MODULE_ARGS": {...}}`, and the JSON it prints is parsed. One test also runs the
real `hf download` against the SIMULATED hub (sim/hub/testhub.py, loopback only) and verifies
both download layouts (a --local-dir and the cache's symlinked snapshot).
"""

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from huggingface_hub.utils import filter_repo_objects

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "library" / "model_manifest.py"
ANSIBLE_DOC = Path(sys.executable).parent / "ansible-doc"
HF = Path(sys.executable).parent / "hf"
HUB = ROOT / "sim" / "hub" / "testhub.py"
MANIFEST = ".spark-sglang-manifest.json"
REPO = "sim-org/Unit-Model-sim"
REV = "0123456789abcdef0123456789abcdef01234567"

# A small model: LFS-style files (sha256) and plain git files (blob sha1), one in a subdirectory.
# The big weight spans several 1 MiB read chunks.
CONTENTS = {
    "config.json": b'{"architectures": ["SimForCausalLM"], "simulated": true}\n',
    "generation_config.json": b'{"max_new_tokens": 16}\n',
    "tokenizer.json": b'{"version": "1.0", "model": {"type": "BPE"}}\n',
    "README.md": b"# simulated unit-test model\n",
    "model.safetensors": bytes(range(256)) * (10 * 1024 + 3),  # ~2.5 MiB
    "extra/adapter.bin": b"\x00\x01\x02adapter-weights" * 100,
    "extra/notes.txt": b"not a weight\n",
}
LFS_FILES = {"model.safetensors", "extra/adapter.bin"}


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def tree_for(contents):
    tree = [{"type": "directory", "path": "extra", "size": 0, "oid": "f" * 40}]
    for path, data in sorted(contents.items()):
        if path in LFS_FILES:
            pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
                hashlib.sha256(data).hexdigest().encode(), len(data))
            tree.append({"type": "file", "path": path, "size": len(data), "oid": git_sha1(pointer),
                         "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                 "pointerSize": len(pointer)}})
        else:
            tree.append({"type": "file", "path": path, "size": len(data), "oid": git_sha1(data)})
    return tree


TREE = tree_for(CONTENTS)


def write_model(root, contents=CONTENTS):
    root = Path(root)
    for path, data in contents.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


@pytest.fixture
def model(tmp_path):
    return write_model(tmp_path / "models" / "Unit-Model-sim")


def run_module(tmp_path, check_mode=False, **params):
    args = {"repo": REPO, "revision": REV, "tree": TREE}
    args.update(params)
    args = {k: (str(v) if isinstance(v, Path) else v) for k, v in args.items()}
    if check_mode:
        args["_ansible_check_mode"] = True
    argfile = tmp_path / ("args-%d.json" % time.monotonic_ns())
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc = subprocess.run([sys.executable, str(MODULE), str(argfile)], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    argfile.unlink()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, "no JSON from the module (rc=%d): %s %s" % (proc.returncode, proc.stdout, proc.stderr)
    result = json.loads(lines[-1])
    assert (proc.returncode != 0) == bool(result.get("failed")), (proc.returncode, result)
    return result


def snapshot(directory):
    """Every entry under directory with its content and mtime: proves nothing was written."""
    out = {}
    for p in sorted(Path(directory).rglob("*")):
        st = p.lstat()
        out[str(p)] = (st.st_mtime_ns, st.st_size, p.read_bytes() if p.is_file() else None)
    return out


def manifest_of(directory):
    return json.loads((Path(directory) / MANIFEST).read_text())


# --------------------------------------------------------------------------- state=verified

def test_all_good_writes_manifest_then_is_idempotent(tmp_path, model):
    r = run_module(tmp_path, path=model)
    assert not r.get("failed"), r
    assert r["changed"] is True and r["complete"] is True
    assert r["files"] == len(CONTENTS)
    assert r["bytes"] == sum(len(d) for d in CONTENTS.values())
    assert r["missing"] == [] and r["mismatched"] == []
    assert r["manifest"] == str(model / MANIFEST)

    path = model / MANIFEST
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    man = manifest_of(model)
    assert set(man) == {"repo", "revision", "files", "verified_at"}
    assert man["repo"] == REPO and man["revision"] == REV
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", man["verified_at"])
    assert man["files"]["model.safetensors"] == {
        "size": len(CONTENTS["model.safetensors"]),
        "sha256": hashlib.sha256(CONTENTS["model.safetensors"]).hexdigest()}
    assert man["files"]["extra/notes.txt"] == {
        "size": len(CONTENTS["extra/notes.txt"]), "git_sha1": git_sha1(CONTENTS["extra/notes.txt"])}
    assert set(man["files"]) == set(CONTENTS)
    # atomic write leaves no temporary file behind
    assert sorted(p.name for p in model.iterdir() if p.name.startswith(".")) == [MANIFEST]

    before = snapshot(model)
    r2 = run_module(tmp_path, path=model)
    assert r2["changed"] is False and r2["complete"] is True, r2
    assert snapshot(model) == before


def test_manifest_rewritten_when_it_differs(tmp_path, model):
    assert run_module(tmp_path, path=model)["changed"] is True
    man = manifest_of(model)
    man["files"]["config.json"]["size"] += 1
    (model / MANIFEST).write_text(json.dumps(man))
    r = run_module(tmp_path, path=model)
    assert r["changed"] is True, r
    assert manifest_of(model)["files"]["config.json"]["size"] == len(CONTENTS["config.json"])

    (model / MANIFEST).write_text("not json{")
    r = run_module(tmp_path, path=model)
    assert r["changed"] is True and manifest_of(model)["repo"] == REPO


def test_missing_file_fails_naming_it(tmp_path, model):
    (model / "config.json").unlink()
    (model / "extra" / "notes.txt").unlink()
    r = run_module(tmp_path, path=model)
    assert r["failed"] is True and r["complete"] is False
    assert r["missing"] == ["config.json", "extra/notes.txt"]
    assert r["mismatched"] == []
    assert "2 file(s) missing (config.json, extra/notes.txt)" in r["msg"]
    assert REPO in r["msg"] and REV in r["msg"]
    assert r["msg"].startswith("model %s@%s: " % (REPO, REV))
    assert not (model / MANIFEST).exists()


def test_wrong_size_fails_naming_it(tmp_path, model):
    with open(model / "model.safetensors", "ab") as f:
        f.write(b"x")
    r = run_module(tmp_path, path=model)
    assert r["failed"] is True
    assert r["mismatched"] == [{"path": "model.safetensors", "what": "size",
                                "expected": len(CONTENTS["model.safetensors"]),
                                "actual": len(CONTENTS["model.safetensors"]) + 1}]
    assert "1 mismatched (model.safetensors: size" in r["msg"]
    assert REPO in r["msg"] and REV in r["msg"]
    assert not (model / MANIFEST).exists()


@pytest.mark.parametrize("path,what", [("model.safetensors", "sha256"), ("tokenizer.json", "git_sha1")])
def test_corrupted_byte_same_size_fails(tmp_path, model, path, what):
    data = bytearray(CONTENTS[path])
    data[len(data) - 7] ^= 0x01  # in the last read chunk for the big file
    (model / path).write_bytes(bytes(data))
    r = run_module(tmp_path, path=model)
    assert r["failed"] is True and r["missing"] == []
    [m] = r["mismatched"]
    assert m["path"] == path and m["what"] == what
    if what == "sha256":
        assert m["expected"] == hashlib.sha256(CONTENTS[path]).hexdigest()
        assert m["actual"] == hashlib.sha256(bytes(data)).hexdigest()
    else:
        assert m["expected"] == git_sha1(CONTENTS[path])
        assert m["actual"] == git_sha1(bytes(data))
    assert "1 mismatched (%s: %s expected" % (path, what) in r["msg"]
    assert "model %s@%s" % (REPO, REV) in r["msg"]
    assert not (model / MANIFEST).exists()


def test_problem_message_is_bounded(tmp_path):
    many = {"file%02d.json" % i: b"{}\n" for i in range(12)}
    d = tmp_path / "empty"
    d.mkdir()
    r = run_module(tmp_path, path=d, tree=tree_for(many))
    assert r["failed"] is True and len(r["missing"]) == 12
    assert "12 file(s) missing (file00.json, file01.json, file02.json, file03.json, file04.json, " \
           "... (7 more))" in r["msg"]


# --------------------------------------------------------------------------- include / exclude

def test_include_only_json_is_expected(tmp_path, model):
    for path in CONTENTS:
        if not path.endswith(".json"):
            (model / path).unlink()
    r = run_module(tmp_path, path=model, include=["*.json"])
    assert not r.get("failed"), r
    json_files = sorted(p for p in CONTENTS if p.endswith(".json"))
    assert r["files"] == len(json_files) == 3
    assert sorted(manifest_of(model)["files"]) == json_files
    # without the filter the deleted files are expected again
    r = run_module(tmp_path, path=model)
    assert r["failed"] is True
    assert r["missing"] == sorted(p for p in CONTENTS if not p.endswith(".json"))


def test_exclude_and_directory_patterns(tmp_path, model):
    (model / "model.safetensors").unlink()
    shutil.rmtree(model / "extra")
    r = run_module(tmp_path, path=model, exclude=["*.safetensors", "extra/"])
    assert not r.get("failed"), r
    assert sorted(manifest_of(model)["files"]) == ["README.md", "config.json",
                                                  "generation_config.json", "tokenizer.json"]
    r = run_module(tmp_path, path=model, exclude=["*.safetensors"])
    assert r["failed"] is True and r["missing"] == ["extra/adapter.bin", "extra/notes.txt"]


@pytest.mark.parametrize("include,exclude", [
    ([], []),
    (["*.json"], []),
    ([], ["*.json"]),
    (["extra/"], []),
    (["*.json", "extra/*.bin"], ["generation_*"]),
    (["*.txt"], []),  # "*" crosses "/" like hf download's fnmatch
    (["*"], ["*.md", "extra/"]),
    (["config.json", "*.safetensors"], ["*.bin"]),
    (["EXTRA/"], []),  # case-sensitive: matches nothing -> rejected as empty
])
def test_filters_match_huggingface_hub(tmp_path, model, include, exclude):
    real = sorted(filter_repo_objects(list(CONTENTS), allow_patterns=include or None,
                                      ignore_patterns=exclude or None))
    r = run_module(tmp_path, path=model, include=include, exclude=exclude)
    if not real:
        assert r["failed"] is True and "no file in the tree listing matches" in r["msg"]
        return
    assert not r.get("failed"), r
    assert sorted(manifest_of(model)["files"]) == real
    check = run_module(tmp_path, path=model, include=include, exclude=exclude, state="check_manifest")
    assert check["complete"] is True and check["files"] == len(real)


# --------------------------------------------------------------------------- HF cache snapshot

def make_snapshot(tmp_path, contents=CONTENTS):
    repo_dir = tmp_path / "hub" / "models--sim-org--Unit-Model-sim"
    blobs = repo_dir / "blobs"
    snap = repo_dir / "snapshots" / REV
    blobs.mkdir(parents=True)
    for path, data in contents.items():
        etag = hashlib.sha256(data).hexdigest() if path in LFS_FILES else git_sha1(data)
        (blobs / etag).write_bytes(data)
        link = snap / path
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blobs / etag, link.parent), link)
    return snap, blobs


def test_symlinked_snapshot_is_followed(tmp_path):
    snap, blobs = make_snapshot(tmp_path)
    assert os.readlink(snap / "extra" / "notes.txt").startswith("../../../blobs/")
    assert all((snap / p).is_symlink() for p in CONTENTS)
    r = run_module(tmp_path, path=snap)
    assert not r.get("failed"), r
    assert r["changed"] is True and r["files"] == len(CONTENTS)
    assert (snap / MANIFEST).is_file() and not (snap / MANIFEST).is_symlink()
    assert run_module(tmp_path, path=snap, state="check_manifest")["complete"] is True

    # a corrupted blob is found through the link
    blob = blobs / hashlib.sha256(CONTENTS["model.safetensors"]).hexdigest()
    data = bytearray(blob.read_bytes())
    data[0] ^= 0xFF
    blob.write_bytes(bytes(data))
    r = run_module(tmp_path, path=snap)
    assert r["failed"] is True and [m["path"] for m in r["mismatched"]] == ["model.safetensors"]
    assert r["mismatched"][0]["what"] == "sha256"

    # a dangling link is a missing file
    (blobs / git_sha1(CONTENTS["config.json"])).unlink()
    r = run_module(tmp_path, path=snap)
    assert r["failed"] is True and r["missing"] == ["config.json"]


# --------------------------------------------------------------------------- check mode

def test_check_mode_writes_nothing_but_reports_change(tmp_path, model):
    before = snapshot(model)
    r = run_module(tmp_path, check_mode=True, path=model)
    assert not r.get("failed"), r
    assert r["changed"] is True and r["complete"] is True
    assert snapshot(model) == before
    assert not (model / MANIFEST).exists()

    # check mode still verifies
    (model / "README.md").write_bytes(b"# tampered simulated model\n")
    r = run_module(tmp_path, check_mode=True, path=model)
    assert r["failed"] is True and r["mismatched"][0]["path"] == "README.md"
    (model / "README.md").write_bytes(CONTENTS["README.md"])

    assert run_module(tmp_path, path=model)["changed"] is True
    r = run_module(tmp_path, check_mode=True, path=model)
    assert r["changed"] is False, r

    # an outdated manifest would be rewritten: changed, but untouched on disk
    r = run_module(tmp_path, check_mode=True, path=model, exclude=["README.md"])
    assert r["changed"] is True and "README.md" in manifest_of(model)["files"]


# --------------------------------------------------------------------------- state=check_manifest

def test_check_manifest(tmp_path, model):
    before = snapshot(model)
    r = run_module(tmp_path, path=model, state="check_manifest")
    assert not r.get("failed") and r["changed"] is False and r["complete"] is False, r
    assert snapshot(model) == before  # never writes, even with no manifest

    assert run_module(tmp_path, path=model)["changed"] is True
    before = snapshot(model)
    r = run_module(tmp_path, path=model, state="check_manifest")
    assert r["complete"] is True and r["changed"] is False, r
    assert r["files"] == len(CONTENTS) and r["missing"] == [] and r["mismatched"] == []
    assert r["verified_at"] == manifest_of(model)["verified_at"]

    # another revision (or repo, or file list) than the manifest's
    r = run_module(tmp_path, path=model, state="check_manifest", revision="f" * 40)
    assert r["complete"] is False and not r.get("failed")
    assert REV in r["msg"] and "f" * 40 in r["msg"]
    r = run_module(tmp_path, path=model, state="check_manifest", repo="sim-org/Other-sim")
    assert r["complete"] is False
    other = dict(CONTENTS, **{"config.json": b'{"simulated": "v2"}\n'})
    r = run_module(tmp_path, path=model, state="check_manifest", tree=tree_for(other))
    assert r["complete"] is False and "file list differs" in r["msg"]
    assert snapshot(model) == before

    # no hashing: a same-size change is not seen (that is state=verified's job) ...
    (model / "config.json").write_bytes(CONTENTS["config.json"].replace(b"true", b"TRUE"))
    assert run_module(tmp_path, path=model, state="check_manifest")["complete"] is True
    # ... but a size change is
    (model / "tokenizer.json").write_bytes(CONTENTS["tokenizer.json"] + b" ")
    r = run_module(tmp_path, path=model, state="check_manifest")
    assert r["complete"] is False and not r.get("failed")
    assert [m["path"] for m in r["mismatched"]] == ["tokenizer.json"]
    # and a deleted file
    (model / "tokenizer.json").unlink()
    (model / "model.safetensors").unlink()
    before = snapshot(model)
    r = run_module(tmp_path, path=model, state="check_manifest")
    assert r["complete"] is False and r["changed"] is False and not r.get("failed")
    assert r["missing"] == ["model.safetensors", "tokenizer.json"]
    assert snapshot(model) == before


def test_check_manifest_on_absent_directory(tmp_path):
    r = run_module(tmp_path, path=tmp_path / "nope", state="check_manifest")
    assert not r.get("failed") and r["complete"] is False and r["changed"] is False
    assert not (tmp_path / "nope").exists()
    r = run_module(tmp_path, path=tmp_path / "nope")
    assert r["failed"] is True and "is not a directory" in r["msg"] and REPO in r["msg"]


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("entry,needle", [
    ({"type": "file", "path": "../escape.json", "size": 3, "oid": "a" * 40}, "unsafe path"),
    ({"type": "file", "path": "/etc/passwd", "size": 3, "oid": "a" * 40}, "unsafe path"),
    ({"type": "file", "path": "x.json", "size": 3}, "needs a git sha1 oid"),
    ({"type": "file", "path": "x.bin", "size": 3, "oid": "a" * 40, "lfs": {"oid": "abc", "size": 3}},
     "invalid lfs record"),
    ({"type": "symlink", "path": "x", "size": 0, "oid": "a" * 40}, "has type"),
])
def test_invalid_tree_entries_are_rejected(tmp_path, model, entry, needle):
    r = run_module(tmp_path, path=model, tree=TREE + [entry])
    assert r["failed"] is True and needle in r["msg"] and "invalid tree listing" in r["msg"], r
    assert not (model / MANIFEST).exists()


def test_manifest_name_must_be_a_plain_name(tmp_path, model):
    r = run_module(tmp_path, path=model, manifest_name="../outside.json")
    assert r["failed"] is True and "plain file name" in r["msg"]
    assert not (model.parent / "outside.json").exists()
    r = run_module(tmp_path, path=model, manifest_name="custom.json")
    assert r["changed"] is True and (model / "custom.json").is_file() and not (model / MANIFEST).exists()


# --------------------------------------------------------------------------- docs

def test_documentation_renders_with_ansible_doc():
    proc = subprocess.run([str(ANSIBLE_DOC), "-M", "library", "model_manifest"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "model_manifest" in proc.stdout and "check_manifest" in proc.stdout
    proc = subprocess.run([str(ANSIBLE_DOC), "-M", "library", "--json", "model_manifest"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["model_manifest"]
    assert set(doc["doc"]["options"]) == {"path", "tree", "include", "exclude", "repo", "revision",
                                          "manifest_name", "state"}
    assert {"changed", "complete", "files", "bytes", "missing", "mismatched", "manifest"} <= set(doc["return"])
    assert yaml.safe_load(doc["examples"])


# --------------------------------------------------------------------------- against real `hf download`

def test_real_hf_download_from_sim_hub_verifies(tmp_path):
    """The real `hf download` (local dir and cache) against the SIMULATED hub, then the module."""
    out = tmp_path / "hub.out"
    with open(out, "w") as stdout, open(tmp_path / "hub.err", "w") as stderr:
        proc = subprocess.Popen([sys.executable, str(HUB), "--host", "127.0.0.1", "--port", "0",
                                 "--quiet", "--weights-size", str(1536 * 1024)],
                                stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    try:
        url = None
        deadline = time.monotonic() + 20
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", out.read_text())
            if m:
                url = m.group(1)
            else:
                time.sleep(0.05)
        assert url, (out.read_text(), (tmp_path / "hub.err").read_text())
        repo = "sim-org/Qwen3-8B-NVFP4-sim"
        with urllib.request.urlopen("%s/api/models/%s/revision/main" % (url, repo), timeout=10) as resp:
            sha = json.load(resp)["sha"]
        with urllib.request.urlopen("%s/api/models/%s/tree/%s?recursive=true" % (url, repo, sha),
                                    timeout=10) as resp:
            tree = json.load(resp)
        assert any("lfs" in e for e in tree) and any("lfs" not in e for e in tree)

        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=url, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1",
                   HF_HUB_DISABLE_PROGRESS_BARS="1", NO_COLOR="1")
        local = tmp_path / "models" / "Qwen3-8B-NVFP4-sim"
        dl = subprocess.run([str(HF), "download", repo, "--revision", sha, "--local-dir", str(local)],
                            env=env, capture_output=True, text=True, timeout=60)
        assert dl.returncode == 0, dl.stderr
        dl = subprocess.run([str(HF), "download", repo, "--revision", sha, "--include", "*.json"],
                            env=env, capture_output=True, text=True, timeout=60)
        assert dl.returncode == 0, dl.stderr
    finally:
        proc.kill()
        proc.wait(10)

    r = run_module(tmp_path, path=local, repo=repo, revision=sha, tree=tree)
    assert not r.get("failed") and r["changed"] is True, r
    assert r["files"] == sum(1 for e in tree if e["type"] == "file")
    snap = tmp_path / "hf-home" / "hub" / "models--sim-org--Qwen3-8B-NVFP4-sim" / "snapshots" / sha
    assert (snap / "config.json").is_symlink()
    r = run_module(tmp_path, path=snap, repo=repo, revision=sha, tree=tree, include=["*.json"])
    assert not r.get("failed") and r["changed"] is True, r
    r = run_module(tmp_path, path=snap, repo=repo, revision=sha, tree=tree)  # weights were not fetched
    assert r["failed"] is True and "model.safetensors" in r["missing"] and sha in r["msg"]
