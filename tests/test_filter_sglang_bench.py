"""Unit tests of the sglang_bench_runs filter (plugins/filter/sglang_bench.py): profiles -> runs."""
import importlib.util
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("sglang_bench_filter", ROOT / "plugins" / "filter" / "sglang_bench.py")
plugin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(plugin)
runs = plugin.sglang_bench_runs
DEFAULT_PROFILES = yaml.safe_load((ROOT / "roles" / "sglang_bench" / "defaults" / "main.yml").read_text())["sglang_bench_profiles"]


def test_the_lesson_profile_is_one_run_with_the_lessons_flags():
    assert runs(DEFAULT_PROFILES, ["lesson"]) == [{
        "profile": "lesson", "concurrency": 10, "needs_dataset": True,
        "args": {"dataset_name": "sharegpt", "num_prompts": 50, "max_concurrency": 10}}]


def test_a_concurrency_list_is_a_sweep_of_runs_in_order():
    sweep = runs(DEFAULT_PROFILES, ["sweep"])
    assert [r["concurrency"] for r in sweep] == [1, 4, 10, 32]
    assert [r["args"]["max_concurrency"] for r in sweep] == [1, 4, 10, 32]
    assert all(r["profile"] == "sweep" and r["args"]["num_prompts"] == 64 for r in sweep)


def test_generated_datasets_need_no_file_and_profiles_keep_their_order():
    out = runs(DEFAULT_PROFILES, ["shared_prefix", "lesson"])
    assert [(r["profile"], r["needs_dataset"]) for r in out] == [("shared_prefix", False), ("lesson", True)]
    assert out[0]["args"]["gsp_system_prompt_len"] == 1024


def test_no_concurrency_means_unbounded_and_sharegpt_is_the_default_dataset():
    out = runs({"open": {"num_prompts": 5}}, ["open"])
    assert out == [{"profile": "open", "concurrency": None, "needs_dataset": True,
                    "args": {"num_prompts": 5, "dataset_name": "sharegpt"}}]


def test_the_input_profiles_are_not_modified():
    profiles = {"p": {"max_concurrency": [1, 2]}}
    runs(profiles, ["p"])
    assert profiles == {"p": {"max_concurrency": [1, 2]}}


@pytest.mark.parametrize("profiles,names,message", [
    (DEFAULT_PROFILES, ["nope"], "sglang_bench_run: no profile 'nope'"),
    (DEFAULT_PROFILES, [], "sglang_bench_run must be a non-empty list"),
    (DEFAULT_PROFILES, "lesson", "sglang_bench_run must be a non-empty list"),
    (["lesson"], ["lesson"], "sglang_bench_profiles must be a mapping"),
    ({"p": "sharegpt"}, ["p"], "sglang_bench_profiles.p must be a mapping"),
    ({"p": {"port": 1}}, ["p"], "sglang_bench_profiles.p must not set port"),
    ({"p": {"output_file": "x", "host": "h"}}, ["p"], "must not set host, output_file"),
    ({"p": {"dataset_name": "mmlu"}}, ["p"], "sglang_bench_profiles.p.dataset_name must be one of"),
    ({"p": {"num_prompts": 0}}, ["p"], "sglang_bench_profiles.p.num_prompts must be a positive integer"),
    ({"p": {"num_prompts": True}}, ["p"], "num_prompts must be a positive integer"),
    ({"p": {"max_concurrency": [1, 0]}}, ["p"], "sglang_bench_profiles.p.max_concurrency must be a positive integer"),
    ({"p": {"max_concurrency": "10"}}, ["p"], "max_concurrency must be a positive integer"),
    ({"p": {"max_concurrency": []}}, ["p"], "max_concurrency must be a positive integer"),
])
def test_bad_profiles_are_refused_naming_the_variable(profiles, names, message):
    with pytest.raises(AnsibleFilterError) as err:
        runs(profiles, names)
    assert message in str(err.value)


def test_the_filter_is_registered():
    assert plugin.FilterModule().filters() == {"sglang_bench_runs": runs, "sglang_bench_host_meta": plugin.sglang_bench_host_meta}


def test_host_meta_pairs_each_instance_with_its_container_and_lists_each_image_once():
    inspects = [{"stdout": '{"image": "img@sha256:a", "cmd": ["--port", "30000"]}'},
                {"stdout": '{"image": "img@sha256:a", "cmd": ["--port", "30001"]}'}]
    meta = plugin.sglang_bench_host_meta(inspects, "spark-1", [{"name": "main"}, {"name": "second"}],
                                         [{"repo": "org/M", "revision": "abc"}])
    assert meta == {"host": "spark-1", "image": "img@sha256:a", "model_revisions": {"org/M": "abc"},
                    "instances": {"main": {"image": "img@sha256:a", "cmd": ["--port", "30000"]},
                                  "second": {"image": "img@sha256:a", "cmd": ["--port", "30001"]}}}
    assert plugin.sglang_bench_host_meta([], "spark-2", [], [])["image"] == ""
