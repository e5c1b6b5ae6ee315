"""Tests for sim/toolkit: the SIMULATED NVIDIA Container Toolkit stub and its signed apt repo."""

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TK = ROOT / "sim" / "toolkit"
CTK = TK / "nvidia-ctk"
RUNTIME = TK / "nvidia-container-runtime"
HOOK = TK / "nvidia-container-runtime-hook"
BUILD = TK / "build-repo.sh"
DEB = "nvidia-container-toolkit_1.17.8-1~sim_all.deb"
BINARIES = ("nvidia-ctk", "nvidia-container-runtime", "nvidia-container-runtime-hook")


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run([str(c) for c in cmd], **kw)


def ctk(*args, **kw):
    return run([CTK, *args], **kw)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- nvidia-ctk

def test_ctk_version_says_simulated():
    r = ctk("--version")
    assert r.returncode == 0
    assert "1.17.8" in r.stdout and "simulated" in r.stdout.lower()


def test_configure_keeps_keys_and_is_idempotent(tmp_path):
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({
        "log-driver": "json-file",
        "insecure-registries": ["10.0.0.1:5000"],
        "runtimes": {"runsc": {"path": "/usr/bin/runsc"}},
    }))
    r = ctk("runtime", "configure", "--runtime=docker", "--config=%s" % cfg)
    assert r.returncode == 0, r.stderr
    assert "Wrote updated config to %s" % cfg in r.stderr
    assert "It is recommended that docker daemon be restarted." in r.stderr
    data = json.loads(cfg.read_text())
    assert data["log-driver"] == "json-file"
    assert data["insecure-registries"] == ["10.0.0.1:5000"]
    assert data["runtimes"]["runsc"] == {"path": "/usr/bin/runsc"}
    assert data["runtimes"]["nvidia"] == {"args": [], "path": "nvidia-container-runtime"}
    assert "default-runtime" not in data
    text = cfg.read_text()
    assert text.startswith('{\n    "insecure-registries"')  # 4 spaces, sorted keys (Go style)
    assert not text.endswith("\n")
    first = cfg.read_bytes()
    r = ctk("runtime", "configure", "--runtime=docker", "--config=%s" % cfg)
    assert r.returncode == 0
    assert cfg.read_bytes() == first


def test_configure_set_as_default_and_space_separated_flags(tmp_path):
    cfg = tmp_path / "etc" / "docker" / "daemon.json"  # missing file and dir
    r = ctk("runtime", "configure", "--runtime", "docker", "--set-as-default", "--config", cfg)
    assert r.returncode == 0, r.stderr
    data = json.loads(cfg.read_text())
    assert data == {"default-runtime": "nvidia",
                    "runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
    before = cfg.read_bytes()
    assert ctk("runtime", "configure", "--runtime=docker", "--set-as-default",
               "--config=%s" % cfg).returncode == 0
    assert cfg.read_bytes() == before


def test_configure_empty_file_is_empty_config(tmp_path):
    cfg = tmp_path / "daemon.json"
    cfg.write_text("")
    assert ctk("runtime", "configure", "--config=%s" % cfg).returncode == 0  # docker is the default
    assert json.loads(cfg.read_text())["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"


def test_configure_dry_run_changes_nothing(tmp_path):
    cfg = tmp_path / "daemon.json"
    cfg.write_text('{"log-level": "warn"}\n')
    st = cfg.stat()
    r = ctk("runtime", "configure", "--runtime=docker", "--set-as-default", "--dry-run",
            "--config=%s" % cfg)
    assert r.returncode == 0
    assert cfg.read_text() == '{"log-level": "warn"}\n'
    assert cfg.stat().st_mtime_ns == st.st_mtime_ns
    out = json.loads(r.stdout)
    assert out["default-runtime"] == "nvidia" and out["log-level"] == "warn"
    assert "Wrote updated config" not in r.stderr
    missing = tmp_path / "nope.json"
    assert ctk("runtime", "configure", "--dry-run", "--config=%s" % missing).returncode == 0
    assert not missing.exists()


def test_configure_errors(tmp_path):
    cfg = tmp_path / "daemon.json"
    cfg.write_text("{}")
    r = ctk("runtime", "configure", "--runtime=podman", "--config=%s" % cfg)
    assert r.returncode == 1 and "unrecognized runtime 'podman'" in r.stderr
    assert cfg.read_text() == "{}"
    cfg.write_text("{not json")
    r = ctk("runtime", "configure", "--config=%s" % cfg)
    assert r.returncode == 1
    assert cfg.read_text() == "{not json"
    r = ctk("runtime", "configure", "--bogus-flag")
    assert r.returncode == 1 and "not defined" in r.stderr
    r = ctk("config", "--in-place")
    assert r.returncode == 1 and "SIMULATED" in r.stderr
    assert ctk("hook", "print-ldcache-update").returncode == 1


def test_cdi_generate_and_list(tmp_path):
    out = tmp_path / "cdi" / "nvidia.yaml"
    r = ctk("cdi", "generate", "--output=%s" % out)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "SIMULATED" in text
    spec = yaml.safe_load(text)
    assert spec["kind"] == "nvidia.com/gpu" and spec["cdiVersion"]
    assert [d["name"] for d in spec["devices"]] == ["0", "all"]
    mounts = [m for d in spec["devices"] for m in d["containerEdits"]["mounts"]]
    assert all(m["hostPath"] == "/usr/bin/nvidia-smi" for m in mounts) and mounts
    r = ctk("cdi", "generate")
    assert r.returncode == 0 and yaml.safe_load(r.stdout) == spec
    r = ctk("cdi", "list")
    assert r.returncode == 0
    assert r.stdout.split() == ["nvidia.com/gpu=0", "nvidia.com/gpu=all"]


# --------------------------------------------------------------------------- runtime + hook

def test_runtime_execs_runc_with_all_args(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "runc").write_text('#!/bin/sh\necho "fake-runc $*"\nexit 7\n')
    (fake / "runc").chmod(0o755)
    env = dict(os.environ, PATH="%s:%s" % (fake, os.environ["PATH"]))
    r = run([RUNTIME, "--root", "/run/x", "create", "--bundle", "/b", "ctr id"], env=env)
    assert r.returncode == 7
    assert r.stdout.strip() == "fake-runc --root /run/x create --bundle /b ctr id"


def make_bundle(tmp_path, env_list, root_path="rootfs"):
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    spec = {"ociVersion": "1.0.2", "root": {"path": root_path},
            "process": {"env": env_list, "args": ["sh"]}}
    (bundle / "config.json").write_text(json.dumps(spec))
    state = json.dumps({"ociVersion": "1.0.2", "id": "abc", "status": "creating", "pid": 1,
                        "bundle": str(bundle)})
    return bundle, state


def hook(args, state, tmp_path, smi=None):
    env = dict(os.environ)
    src = smi or (tmp_path / "host-nvidia-smi")
    if smi is None:
        src.write_text("#!/bin/sh\necho simulated smi\n")
    env["NVIDIA_SIM_SMI_SOURCE"] = str(src)
    env["NVIDIA_SIM_HOOK_LOG"] = str(tmp_path / "hook.log")
    return run([HOOK, *args], input=state, env=env), src


@pytest.mark.parametrize("value", ["all", "0", "GPU-1234"])
def test_hook_copies_smi_when_gpus_requested(tmp_path, value):
    bundle, state = make_bundle(tmp_path, ["PATH=/usr/bin", "NVIDIA_VISIBLE_DEVICES=%s" % value])
    r, src = hook(["prestart"], state, tmp_path)
    assert r.returncode == 0, r.stderr
    dest = bundle / "rootfs" / "usr" / "bin" / "nvidia-smi"
    assert dest.read_bytes() == src.read_bytes()
    assert dest.stat().st_mode & 0o777 == 0o755
    assert "copied" in (tmp_path / "hook.log").read_text()


def test_hook_absolute_root_path(tmp_path):
    other = tmp_path / "merged"
    other.mkdir()
    bundle, state = make_bundle(tmp_path, ["NVIDIA_VISIBLE_DEVICES=all"], root_path=str(other))
    r, _ = hook(["prestart"], state, tmp_path)
    assert r.returncode == 0
    assert (other / "usr" / "bin" / "nvidia-smi").is_file()
    assert not (bundle / "rootfs" / "usr").exists()


@pytest.mark.parametrize("env_list", [[], ["NVIDIA_VISIBLE_DEVICES="], ["NVIDIA_VISIBLE_DEVICES=void"],
                                      ["NVIDIA_VISIBLE_DEVICES=none"]])
def test_hook_does_nothing_without_gpus(tmp_path, env_list):
    bundle, state = make_bundle(tmp_path, ["PATH=/bin"] + env_list)
    r, _ = hook(["prestart"], state, tmp_path)
    assert r.returncode == 0
    assert not (bundle / "rootfs" / "usr").exists()


def test_hook_other_stages_and_failures(tmp_path):
    bundle, state = make_bundle(tmp_path, ["NVIDIA_VISIBLE_DEVICES=all"])
    r, _ = hook(["poststart"], state + " " * 200000, tmp_path)
    assert r.returncode == 0
    assert not (bundle / "rootfs" / "usr").exists()
    r, _ = hook(["prestart"], state, tmp_path, smi=tmp_path / "missing-smi")
    assert r.returncode == 1
    assert "missing-smi" in r.stderr and "SIMULATED" in r.stderr
    r, _ = hook(["prestart"], "not json", tmp_path)
    assert r.returncode == 1


# --------------------------------------------------------------------------- build-repo.sh

@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    out = tmp_path_factory.mktemp("ctk-repo")
    r = run(["bash", BUILD, out, "http://sim-repo.invalid:8080"])
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def dearmored(repo, tmp_path):
    key = tmp_path / "keyring.gpg"
    with open(repo / "gpgkey", "rb") as fh, open(key, "wb") as outfh:
        subprocess.run(["gpg", "--batch", "--dearmor"], stdin=fh, stdout=outfh, check=True, timeout=30)
    return key


def test_repo_layout_and_package(repo, tmp_path):
    assert (repo / "gpgkey").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert (repo / "stable/deb/nvidia-container-toolkit.list").read_text() == \
        "deb http://sim-repo.invalid:8080/stable/deb/$(ARCH) /\n"
    for arch in ("amd64", "arm64"):
        d = repo / "stable" / "deb" / arch
        for f in (DEB, "Packages", "Packages.gz", "Release", "InRelease", "Release.gpg"):
            assert (d / f).is_file(), (arch, f)
    deb = repo / "stable/deb/amd64" / DEB
    fields = run(["dpkg-deb", "-f", deb]).stdout
    assert re.search(r"^Package: nvidia-container-toolkit$", fields, re.M)
    assert re.search(r"^Version: 1\.17\.8-1~sim$", fields, re.M)
    assert re.search(r"^Depends: python3$", fields, re.M)
    assert "nvidia-container-toolkit-base" in fields and "libnvidia-container-tools" in fields
    assert "SIMULATED" in fields
    listing = run(["dpkg-deb", "-c", deb]).stdout
    for b in BINARIES:
        m = re.search(r"^(\S+) root/root .* \./usr/bin/%s$" % re.escape(b), listing, re.M)
        assert m and m.group(1) == "-rwxr-xr-x", b
    # the packaged files are these sources, and they run
    x = tmp_path / "x"
    run(["dpkg-deb", "-x", deb, x], check=True)
    for b in BINARIES:
        assert (x / "usr/bin" / b).read_bytes() == (TK / b).read_bytes()
    r = run([x / "usr/bin/nvidia-ctk", "--version"])
    assert r.returncode == 0 and "simulated" in r.stdout.lower()


def test_repo_signatures_and_hashes(repo, tmp_path):
    key = dearmored(repo, tmp_path)
    for arch in ("amd64", "arm64"):
        d = repo / "stable" / "deb" / arch
        r = run(["gpgv", "--keyring", key, d / "InRelease"])
        assert r.returncode == 0, r.stderr
        r = run(["gpgv", "--keyring", key, d / "Release.gpg", d / "Release"])
        assert r.returncode == 0, r.stderr
        packages = (d / "Packages").read_text()
        assert gzip.decompress((d / "Packages.gz").read_bytes()).decode() == packages
        assert re.search(r"^Filename: \./%s$" % re.escape(DEB), packages, re.M)
        assert re.search(r"^SHA256: (\w+)$", packages, re.M).group(1) == sha256(d / DEB)
        assert re.search(r"^Size: (\d+)$", packages, re.M).group(1) == str((d / DEB).stat().st_size)
        release = (d / "Release").read_text()
        assert re.search(r"^Architectures: %s$" % arch, release, re.M)
        assert re.search(r"^Date: ", release, re.M)
        sums = release.split("SHA256:\n", 1)[1]
        for name in ("Packages", "Packages.gz"):
            m = re.search(r"^ (\w{64})\s+(\d+) %s$" % re.escape(name), sums, re.M)
            assert m and m.group(1) == sha256(d / name) and int(m.group(2)) == (d / name).stat().st_size
        assert release in (d / "InRelease").read_text()
    # a tampered InRelease does not verify
    bad = tmp_path / "InRelease.bad"
    bad.write_text((repo / "stable/deb/amd64/InRelease").read_text().replace("Packages", "Packagez", 1))
    assert run(["gpgv", "--keyring", key, bad]).returncode != 0


def snapshot(d):
    return {str(p.relative_to(d)): (p.stat().st_mtime_ns, sha256(p))
            for p in sorted(Path(d).rglob("*")) if p.is_file() and p.name != ".build.lock"}


def test_second_build_changes_nothing(repo):
    before = snapshot(repo)
    r = run(["bash", BUILD, repo, "http://sim-repo.invalid:8080"])
    assert r.returncode == 0 and "up to date" in r.stdout
    assert snapshot(repo) == before


def test_changed_sources_rebuild_with_the_same_key(repo, tmp_path):
    src = tmp_path / "toolkit"
    shutil.copytree(TK, src)
    out = tmp_path / "repo"
    shutil.copytree(repo, out)
    key_before = (out / "gpgkey").read_bytes()
    deb_before = sha256(out / "stable/deb/amd64" / DEB)
    with open(src / "nvidia-ctk", "a") as fh:
        fh.write("# changed\n")
    r = run(["bash", src / "build-repo.sh", out])
    assert r.returncode == 0, r.stderr
    assert "up to date" not in r.stdout and "generating" not in r.stdout
    assert (out / "gpgkey").read_bytes() == key_before
    assert sha256(out / "stable/deb/amd64" / DEB) != deb_before
    key = dearmored(out, tmp_path)
    assert run(["gpgv", "--keyring", key, out / "stable/deb/arm64/InRelease"]).returncode == 0


def test_apt_reads_the_repo_without_touching_machine_state(repo, tmp_path):
    key = dearmored(repo, tmp_path)
    etc = tmp_path / "etc"
    for sub in ("sources.list.d", "preferences.d", "trusted.gpg.d", "apt.conf.d"):
        (etc / sub).mkdir(parents=True)
    state = tmp_path / "state"
    (state / "lists" / "partial").mkdir(parents=True)
    (tmp_path / "cache" / "archives" / "partial").mkdir(parents=True)
    (tmp_path / "status").write_text("")
    (etc / "sources.list").write_text(
        "deb [signed-by=%s] file:%s/stable/deb/$(ARCH) /\n" % (key, repo))
    opts = []
    for k, v in {"Dir::Etc": etc, "Dir::Etc::sourcelist": etc / "sources.list",
                 "Dir::Etc::sourceparts": etc / "sources.list.d",
                 "Dir::Etc::preferencesparts": etc / "preferences.d",
                 "Dir::Etc::trustedparts": etc / "trusted.gpg.d",
                 "Dir::Etc::parts": etc / "apt.conf.d",
                 "Dir::State": state, "Dir::State::lists": state / "lists",
                 "Dir::State::status": tmp_path / "status", "Dir::Cache": tmp_path / "cache",
                 "Debug::NoLocking": "1", "APT::Sandbox::User": "root"}.items():
        opts += ["-o", "%s=%s" % (k, v)]
    machine_lists = sorted(os.listdir("/var/lib/apt/lists")) if os.path.isdir("/var/lib/apt/lists") else []
    for arch in ("arm64", "amd64"):  # amd64 last: `download` below uses the native arch
        r = run(["apt-get", *opts, "-o", "APT::Architecture=%s" % arch, "update"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert "/stable/deb/%s" % arch in r.stdout
        assert not re.search(r"^(W|E):", r.stdout + r.stderr, re.M), r.stdout + r.stderr
        r = run(["apt-cache", *opts, "-o", "APT::Architecture=%s" % arch, "policy", "nvidia-container-toolkit"])
        assert "Candidate: 1.17.8-1~sim" in r.stdout, r.stdout + r.stderr
    dl = tmp_path / "dl"
    dl.mkdir()
    r = run(["apt-get", *opts, "download", "nvidia-container-toolkit"], cwd=dl)
    assert r.returncode == 0, r.stderr
    assert sha256(dl / DEB) == sha256(repo / "stable/deb/amd64" / DEB)
    # with a keyring that lacks the repo key, apt refuses the signature
    (tmp_path / "empty.gpg").write_bytes(b"")
    (etc / "sources.list").write_text(
        "deb [signed-by=%s] file:%s/stable/deb/$(ARCH) /\n" % (tmp_path / "empty.gpg", repo))
    r = run(["apt-get", *opts, "update"])
    assert "NO_PUBKEY" in r.stdout + r.stderr, r.stdout + r.stderr
    now = sorted(os.listdir("/var/lib/apt/lists")) if os.path.isdir("/var/lib/apt/lists") else []
    assert now == machine_lists
