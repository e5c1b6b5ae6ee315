"""Metrics of the converged fleet (three SIMULATED Sparks, the real router on the gateway): the scrape
configs sglang_metrics wrote on the controller list every instance and the router, and each target
answers with its metrics from the gateway (where the router, or an operator's Prometheus, sits)."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import playbook_run  # noqa: E402

SPARKS = playbook_run.hosts("sparks")
GATEWAY = playbook_run.hosts("gateway")[0]

EXPORT = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "prometheus" / "sglang-scrape-configs.yml"


def fetch_from_gateway(target):
    r = subprocess.run(["docker", "exec", GATEWAY, "curl", "-fsS", "--max-time", "5", f"http://{target}/metrics"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{target}: {r.stderr}"
    return r.stdout


def test_scrape_configs_list_every_instance_and_the_router():
    jobs = {c["job_name"]: c for c in yaml.safe_load(EXPORT.read_text())}
    assert sorted(jobs) == ["sglang", "sglang-router"]
    servers = jobs["sglang"]["static_configs"]
    assert sorted((g["labels"]["host"], g["labels"]["sglang_instance"], g["targets"][0]) for g in servers) == [
        (spark, "main", f"{spark}:30000") for spark in SPARKS]
    router = jobs["sglang-router"]["static_configs"]
    assert [(g["labels"]["host"], g["targets"][0].rsplit(":", 1)[1]) for g in router] == [(GATEWAY, "29000")]


def test_every_target_serves_its_metrics():
    jobs = {c["job_name"]: c for c in yaml.safe_load(EXPORT.read_text())}
    for group in jobs["sglang"]["static_configs"]:
        assert "sglang:num_requests_total" in fetch_from_gateway(group["targets"][0])
    for group in jobs["sglang-router"]["static_configs"]:
        assert "smg_" in fetch_from_gateway(group["targets"][0])
