"""sglang_verify and sglang_bench on the converged host, through real playbook runs: every
instance verified end to end, a failure named by host, instance and endpoint; bench results and
the fleet report on the controller; a slowed instance fails the regression gate by name."""
import json
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402
from playbook_run import flat, play  # noqa: E402

testinfra_hosts = ["ansible://sparks"]

HOST = playbook_run.hosts("sparks")[0]
API_KEY = "sim-api-key-not-a-secret"  # molecule.yml's (simulated) key
SECOND = {"port": 30001, "mem_fraction_static": 0.4, "served_model_name": "qwen3-8b-second"}
CONVERGED = [{"name": "main"}, {"name": "second", "args": SECOND}]
REPORTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reports"
PNG = b"\x89PNG\r\n\x1a\n"


def run_dirs():
    return {p for p in REPORTS.iterdir() if p.is_dir()} if REPORTS.is_dir() else set()


def bench(*args, extra=None):
    """One bench.yml run; returns (result, output, the run directory it made or None)."""
    before = run_dirs()
    result, out = play("bench.yml", *args, extra=extra)
    made = run_dirs() - before
    assert len(made) <= 1, made
    return result, out, (made.pop() if made else None)


def wait_healthy(host, port, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if host.run(f"curl -fsS -o /dev/null http://127.0.0.1:{port}/health").rc == 0:
            return True
        time.sleep(1)
    return False


def jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_verify_passes_on_every_instance_with_latency():
    result, out = play("verify.yml")
    assert result.returncode == 0, out[-3000:]
    assert playbook_run.recap(out)[HOST]["changed"] == 0
    for name, model in (("main", "qwen3-8b"), ("second", "qwen3-8b-second")):
        assert f"{name}: health ok, model {model} listed, 401 without key, chat " in out, out[-3000:]
    assert out.count("stream ttft") == 2 and out.count("metrics ") >= 2
    assert API_KEY not in out


def test_verify_names_host_instance_and_endpoint_when_a_key_is_wrong():
    result, out = play("verify.yml", extra={"sglang_verify_api_key": "wrong-key"})
    assert result.returncode != 0
    assert f"failed: [{HOST}] (item=main)" in out, out[-3000:]
    assert "instance main: GET /v1/models: HTTP 401" in flat(out) and "the API key was refused" in flat(out)


def test_verify_names_the_instance_that_is_down(host):
    host.run("systemctl stop sglang-second")
    try:
        result, out = play("verify.yml")
        assert result.returncode != 0
        assert f"failed: [{HOST}] (item=second)" in out, out[-3000:]
        assert "instance second: GET /health: connection refused" in flat(out), out[-3000:]
    finally:
        host.run("systemctl start sglang-second")
        assert wait_healthy(host, 30001)


def test_converge_benched_the_fleet():
    # converge and idempotence ran sglang.yml, whose last stage is the bench
    complete = [d for d in run_dirs() if (d / "report.md").is_file()
                and (d / HOST / "main" / "lesson.jsonl").is_file() and (d / HOST / "second" / "lesson.jsonl").is_file()]
    assert len(complete) >= 2, sorted(run_dirs())


@pytest.fixture(scope="module")
def benched():
    """One bench.yml run without a baseline: the results test reads it, the gate test compares with it."""
    return bench(extra={"sglang_bench_baseline": "none"})


def test_bench_brings_results_home_with_one_fleet_report(host, benched):
    result, out, run = benched
    assert result.returncode == 0, out[-3000:]
    assert run is not None and playbook_run.recap(out)[HOST]["changed"] == 0
    for name in ("main", "second"):
        lines = jsonl(run / HOST / name / "lesson.jsonl")
        assert len(lines) == 1 and lines[0]["completed"] == 50 and lines[0]["max_concurrency"] == 10
        assert lines[0]["dataset_name"] == "sharegpt" and lines[0]["simulated"] is True
    rows = (run / "report.csv").read_text().splitlines()
    assert len(rows) == 3 and all(HOST in r for r in rows[1:]), rows
    md = (run / "report.md").read_text()
    assert md.startswith("# SIMULATED") and f"## {HOST}" in md
    assert "instance `second` flags: `--enable-metrics --host 0.0.0.0 --mem-fraction-static 0.4" in md
    image = host.check_output("docker inspect --format '{{.Config.Image}}' sglang-main")
    meta = json.loads((run / HOST / "meta.json").read_text())
    assert meta["image"] == image and image in md
    refs = json.loads((REPO / ".sim" / "hub-refs.json").read_text())
    assert meta["model_revisions"] == {"sim-org/Qwen3-8B-NVFP4-sim": refs["sim-org/Qwen3-8B-NVFP4-sim"]["main"]}
    assert refs["sim-org/Qwen3-8B-NVFP4-sim"]["main"] in md
    for plot in ("throughput.png", "latency.png"):
        data = (run / "plots" / plot).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    assert json.loads((run / "summary.json").read_text())["run"] == run.name
    # The API key went to bench_serving through the environment only.
    assert API_KEY not in out
    assert not [p for p in run.rglob("*") if p.is_file() and API_KEY.encode() in p.read_bytes()]
    assert host.run(f"grep -rl {API_KEY} /var/lib/sglang-bench").rc == 1


def test_a_slowed_instance_fails_the_gate_naming_host_instance_and_profile(host, benched):
    result, out, baseline = benched
    assert result.returncode == 0 and baseline is not None, out[-3000:]
    slow = [{"name": "main", "env": {"SGLANG_SIM_TOKENS_PER_SEC": "40"}}, CONVERGED[1]]
    try:
        result, out = play("deploy.yml", extra={"sglang_server_instances": slow})
        assert result.returncode == 0, out[-3000:]
        result, out, run = bench()  # baseline: previous
        assert result.returncode != 0, out[-3000:]
        assert f"REGRESSION {HOST} instance=main profile=lesson concurrency=10: total token throughput" in flat(out)
        assert "instance=second" not in out
        assert f"{run}/report.md" in flat(out)
        gate = json.loads((run / "gate.json").read_text())
        assert {(r["host"], r["instance"], r["profile"]) for r in gate["regressions"]} == {(HOST, "main", "lesson")}
    finally:
        result, out = play("deploy.yml", extra={"sglang_server_instances": CONVERGED})
        assert result.returncode == 0, out[-3000:]
    # Restored: the gate passes against the run before the slowdown, given as a path.
    result, out, run = bench(extra={"sglang_bench_baseline": str(baseline)})
    assert result.returncode == 0, out[-3000:]
    assert "gate: PASS" in out


def test_bench_is_skipped_by_tag_or_variable(host):
    for args, extra in ((["--skip-tags", "bench"], None), ([], {"sglang_bench_enabled": False})):
        before = host.check_output("ls /var/lib/sglang-bench/runs")
        result, out, run = bench(*args, extra=extra)
        assert result.returncode == 0 and run is None, out[-3000:]
        assert host.check_output("ls /var/lib/sglang-bench/runs") == before


def test_the_venv_runner_benches_from_the_host(host):
    # The operator venv of a real fleet would hold SGLang; here the host's python3 runs the
    # simulated package copied out of the image. A container run would fail: its python is bogus.
    host.run_expect([0], "docker cp sglang-main:/opt/sglang-sim /opt/")
    result, out, run = bench(extra={
        "sglang_bench_runner": "venv", "sglang_bench_venv_python": "/usr/bin/python3",
        "sglang_bench_tokenizer": "/home/spark/gb10/models/Qwen3-8B-NVFP4",
        "sglang_bench_environment": {"PYTHONPATH": "/opt/sglang-sim"},
        "sglang_bench_container_python": "/nonexistent/python", "sglang_bench_instances": ["main"],
        "sglang_bench_baseline": "none"})
    assert result.returncode == 0, out[-3000:]
    assert [p.name for p in (run / HOST).iterdir() if p.is_dir()] == ["main"]
    assert jsonl(run / HOST / "main" / "lesson.jsonl")[0]["completed"] == 50


def test_a_bad_bench_input_fails_bench_yml_before_any_load():
    # bench.yml alone checks its inputs first. (The other bad bench inputs are in the catalogue,
    # molecule/shared/data/bad_inputs.yml, refused by the same checks in the preflight.)
    result, out, run = bench(extra={"sglang_bench_dataset": "/nonexistent/sharegpt.json"})
    assert result.returncode != 0 and run is None
    assert "sglang_bench_dataset /nonexistent/sharegpt.json is not a file" in flat(out), out[-3000:]
    assert "sglang_bench : Run bench_serving" not in out
    assert playbook_run.recap(out)[HOST]["changed"] == 0
