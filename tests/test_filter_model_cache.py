"""Unit tests of the model_cache_plan filter (plugins/filter/model_cache.py)."""
import importlib.util
from pathlib import Path

SPEC = importlib.util.spec_from_file_location(
    "model_cache_filter", Path(__file__).resolve().parents[1] / "plugins" / "filter" / "model_cache.py")
plugin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(plugin)

SHA = "a" * 40
TREE = [{"type": "file", "path": "config.json", "size": 2, "oid": "b" * 40}]


def result(model):
    return {"item": {"item": model, "json": {"sha": SHA}}, "tree": TREE}


def test_local_dir_model_lands_under_the_models_dir():
    [entry] = plugin.model_cache_plan([result({"repo": "org/M", "revision": "main", "local_dir": "M-fp4"})],
                                      "/home/u/gb10/models", "/home/u/.cache/huggingface")
    assert entry == {"repo": "org/M", "sha": SHA, "tree": TREE, "include": [], "exclude": [], "local_dir": "M-fp4",
                     "path": "/home/u/gb10/models/M-fp4", "sync_src": "models/M-fp4",
                     "sync_dest": "/home/u/gb10/models/M-fp4"}


def test_cache_layout_model_verifies_its_snapshot_and_copies_the_repo_folder():
    [entry] = plugin.model_cache_plan([result({"repo": "org/M", "revision": SHA, "include": ["*.json"]})],
                                      "/m", "/h")
    assert entry["path"] == f"/h/hub/models--org--M/snapshots/{SHA}"
    assert entry["sync_src"] == "hub/models--org--M"
    assert entry["sync_dest"] == "/h/hub/models--org--M"
    assert entry["include"] == ["*.json"] and entry["exclude"] == [] and entry["local_dir"] == ""


def test_order_is_kept_and_empty_input_gives_an_empty_plan():
    models = [result({"repo": f"org/M{i}", "revision": SHA}) for i in range(3)]
    assert [e["repo"] for e in plugin.model_cache_plan(models, "/m", "/h")] == ["org/M0", "org/M1", "org/M2"]
    assert plugin.model_cache_plan([], "/m", "/h") == []


def test_filter_is_registered():
    assert plugin.FilterModule().filters()["model_cache_plan"] is plugin.model_cache_plan


def uri(status, repo="org/M", revision="main", **extra):
    return {"status": status, "item": {"repo": repo, "revision": revision}, **extra}


def test_revision_problems_name_each_model_and_say_why():
    results = [uri(200), uri(401, "org/P"), uri(404, "org/Gone", "v1", x_error_code="RepoNotFound"), uri(404, "org/X")]
    assert plugin.model_cache_revision_problems(results, False, "http://hub") == [
        "model_cache_models: org/P@main: private or missing: the hub wants a token (model_cache_token or model_cache_token_file)",
        "model_cache_models: org/Gone@v1: not found on http://hub (RepoNotFound)",
        "model_cache_models: org/X@main: not found on http://hub (HTTP 404)",
    ]
    assert plugin.model_cache_revision_problems([uri(403)], True, "http://hub") == [
        "model_cache_models: org/M@main: the hub refused the token (HTTP 403)"]
    assert plugin.model_cache_revision_problems([uri(200)], True, "http://hub") == []


def test_access_problems_say_whether_a_token_is_missing_or_refused():
    # A 404 is a mirror without auth-check: the download itself is the check, so it is no problem here.
    results = [uri(200), uri(404), uri(401, "org/G")]
    assert plugin.model_cache_access_problems(results, False) == [
        "model_cache_models: org/G: gated: the hub wants a token (model_cache_token or model_cache_token_file) to download it"]
    assert plugin.model_cache_access_problems([uri(403, "org/G")], True) == [
        "model_cache_models: org/G: gated: the hub refuses the token (model_cache_token or model_cache_token_file) for it"
        " (HTTP 403); ask for access on the hub"]


def test_download_argv_pins_the_commit_and_passes_each_pattern_as_one_argument():
    [local] = plugin.model_cache_plan([result({"repo": "org/M", "revision": "main", "local_dir": "M-fp4",
                                               "include": ["*.json", "a b.safetensors"], "exclude": ["*.bin"]})],
                                      "/m", "/h")
    assert plugin.model_cache_download_argv(local, "/v/bin/hf") == [
        "/v/bin/hf", "download", "org/M", "--revision", SHA, "--include=*.json", "--include=a b.safetensors",
        "--exclude=*.bin", "--local-dir", "/m/M-fp4"]
    [cached] = plugin.model_cache_plan([result({"repo": "org/M", "revision": SHA})], "/m", "/h")
    assert plugin.model_cache_download_argv(cached, "hf") == ["hf", "download", "org/M", "--revision", SHA]
