"""Unit tests of the sglang_rollout_summary filter (plugins/filter/sglang_rollout.py)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("sglang_rollout_filter", ROOT / "plugins" / "filter" / "sglang_rollout.py")
plugin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(plugin)
summary = plugin.sglang_rollout_summary


def test_each_host_gets_one_line_in_inventory_order():
    hostvars = {
        "canary": {"sglang_rollout_state": "failed", "sglang_server_rolled_back": ["main"]},
        "b": {"sglang_rollout_state": "reached", "sglang_server_replaced": ["main", "second"]},
        "c": {"sglang_rollout_state": "reached"},
        "d": {},
    }
    assert summary(hostvars, ["canary", "b", "c", "d"]) == [
        "canary: ROLLED BACK main (the new configuration never got healthy)",
        "b: changed (main, second replaced)",
        "c: unchanged",
        "d: untouched (its batch never started)",
    ]


def test_a_failure_without_rollback_says_what_was_replaced_before():
    hostvars = {"a": {"sglang_rollout_state": "failed", "sglang_server_replaced": ["main"]}, "b": {"sglang_rollout_state": "failed"}}
    assert summary(hostvars, ["a", "b"]) == ["a: FAILED after replacing main", "b: FAILED"]


def test_a_rollback_is_reported_even_when_other_instances_were_replaced():
    hostvars = {"a": {"sglang_rollout_state": "failed", "sglang_server_replaced": ["main"], "sglang_server_rolled_back": ["second"]}}
    assert summary(hostvars, ["a"]) == ["a: ROLLED BACK second (the new configuration never got healthy)"]


def test_the_filter_is_registered():
    assert plugin.FilterModule().filters() == {"sglang_rollout_summary": summary}
