"""Unit tests of the Prometheus scrape config filters (plugins/filter/sglang_metrics.py)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("sglang_metrics_filter", ROOT / "plugins" / "filter" / "sglang_metrics.py")
plugin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(plugin)

HOSTVARS = {
    "spark-01": {
        "sglang_server_serving_plan": [{"name": "main", "args": {"port": 30000, "enable_metrics": True}},
                                       {"name": "small", "args": {"port": 30001}}],
        "sglang_server_worker_urls": ["http://10.0.0.11:30000", "http://10.0.0.11:30001"],
    },
    # A multi-node worker (rank > 0) serves no API (only a dummy /health).
    "spark-02": {"sglang_server_serving_plan": [], "sglang_server_worker_urls": []},
    "spark-03": {
        "sglang_server_serving_plan": [{"name": "main", "args": {"port": 30000, "enable_metrics": "true"}}],
        "sglang_server_worker_urls": ["http://spark-03:30000"],
    },
    "gateway-01": {"sglang_router_metrics_address": "10.0.0.10:29000"},
}


def test_every_instance_with_metrics_is_a_target_labelled_with_host_and_instance():
    configs = plugin.sglang_metrics_scrape_configs(HOSTVARS, ["spark-01", "spark-02", "spark-03"], ["gateway-01"], "5s")
    assert configs == [
        {"job_name": "sglang", "scrape_interval": "5s", "static_configs": [
            {"targets": ["10.0.0.11:30000"], "labels": {"host": "spark-01", "sglang_instance": "main"}},
            {"targets": ["spark-03:30000"], "labels": {"host": "spark-03", "sglang_instance": "main"}},
        ]},
        {"job_name": "sglang-router", "scrape_interval": "5s", "static_configs": [
            {"targets": ["10.0.0.10:29000"], "labels": {"host": "gateway-01"}},
        ]},
    ]


def test_no_router_and_no_metrics_give_no_empty_jobs():
    hostvars = {"a": {"sglang_server_serving_plan": [{"name": "main", "args": {"port": 30000}}],
                      "sglang_server_worker_urls": ["http://a:30000"]}}
    assert plugin.sglang_metrics_scrape_configs(hostvars, ["a"], []) == []


def test_instances_without_metrics_are_named():
    assert plugin.sglang_metrics_unscraped(HOSTVARS, ["spark-01", "spark-02", "spark-03"]) == ["spark-01/small"]
