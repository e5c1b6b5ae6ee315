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
