"""The rollout through the real SGLang router on the converged fleet (three SIMULATED Sparks and a
gateway): every instance a healthy worker; a flag change rolled through the fleet while a
bounded load runs through the router without one failed request; a canary that never gets
healthy is rolled back and stops the rollout; a run without change changes nothing and no
worker leaves the router."""
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "molecule" / "shared"))
import playbook_run  # noqa: E402
from playbook_run import flat, play  # noqa: E402
from load import Load  # noqa: E402
from conftest import router, workers  # noqa: E402

testinfra_hosts = ["ansible://gateway"]

SPARKS = playbook_run.hosts("sparks")
GATEWAY = playbook_run.hosts("gateway")[0]
CANARY, SLOW = SPARKS[0], SPARKS[1]
WORKERS = [f"http://{h}:30000" for h in SPARKS]
MODEL = "qwen3-8b"


def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def on_spark(spark, command):
    return sh("docker", "exec", spark, "sh", "-c", command)


def started_at(spark):
    return on_spark(spark, "docker inspect --format '{{.State.StartedAt}}' sglang-main")


def healthy_workers():
    return sorted(w["url"] for w in workers() if w["is_healthy"])


def wait_all_healthy(seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if healthy_workers() == WORKERS:
            return True
        time.sleep(1)
    return False


def test_the_router_lists_every_instance_healthy_and_answers():
    assert healthy_workers() == WORKERS, workers()
    r = requests.post(router() + "/v1/chat/completions", timeout=60, json={
        "model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "What is artificial intelligence?"}]})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]


def test_the_router_runs_as_a_service_from_its_venv(host):
    assert host.service("sglang-router").is_enabled and host.service("sglang-router").is_running
    assert host.file("/opt/sglang-router/bin/python").exists
    assert host.run("/opt/sglang-router/bin/python -m pip show sglang-router").stdout.count("Version: 0.3.2") == 1
    assert host.file("/etc/sglang-router/router.env").mode == 0o600
    assert host.file("/etc/sglang-router/router.secrets").mode == 0o600


def test_the_router_role_puts_a_missing_worker_back_through_the_api_without_a_restart(host):
    pid = host.check_output("systemctl show --property MainPID --value sglang-router")
    gone = next(w["id"] for w in workers() if w["url"] == WORKERS[2])
    assert requests.delete(router() + f"/workers/{gone}", timeout=10).status_code in (200, 202)
    deadline = time.monotonic() + 10
    while WORKERS[2] in [w["url"] for w in workers()] and time.monotonic() < deadline:
        time.sleep(0.2)
    result, out = play("router.yml")
    assert result.returncode == 0, out[-3000:]
    assert playbook_run.recap(out)[GATEWAY]["changed"] == 1
    assert wait_all_healthy()
    assert host.check_output("systemctl show --property MainPID --value sglang-router") == pid


def test_a_flag_change_rolls_through_the_fleet_without_a_failed_request():
    before = {s: started_at(s) for s in SPARKS}
    with Load(router(), MODEL) as load:
        time.sleep(2)  # the load is running before the first host changes
        result, out = play("deploy.yml", extra={"sglang_server_instances": [{"name": "main", "args": {"mem_fraction_static": 0.75}}]})
        time.sleep(2)
    assert result.returncode == 0, out[-4000:]
    assert load.failures == [], load.failures[:10]
    assert load.ok >= 50, load.ok
    # Three batches (1, 34%, 100% of three hosts), each host replaced once.
    assert out.count("PLAY [Deploy SGLang, batch by batch]") == 3
    for spark in SPARKS:
        assert f"{spark}: changed (main replaced)" in flat(out)
        assert started_at(spark) != before[spark]
        assert "--mem-fraction-static 0.75" in on_spark(spark, "systemctl cat sglang-main")
    assert healthy_workers() == WORKERS
    # Back to the inventory's flags, the same way.
    with Load(router(), MODEL, max_requests=200) as load:
        result, out = play("deploy.yml")
    assert result.returncode == 0 and load.failures == [], (load.failures[:10], out[-3000:])


def test_a_canary_that_never_gets_healthy_stops_the_rollout():
    good = on_spark(CANARY, "docker inspect --format '{{.Config.Image}}' sglang-main")
    bad = "lmsysorg/sglang@" + (REPO / ".sim" / "images" / "sglang-sim-never-healthy.digest").read_text().strip()
    before = {s: started_at(s) for s in SPARKS}
    with Load(router(), MODEL, max_requests=300) as load:
        result, out = play("deploy.yml", extra={"sglang_server_image": bad, "sglang_server_ready_timeout": 10})
    assert result.returncode != 0, out[-4000:]
    assert f"{CANARY}: ROLLED BACK main" in flat(out), out[-4000:]
    assert all(f"{spark}: untouched" in flat(out) for spark in SPARKS[1:]), out[-4000:]
    assert out.count("PLAY [Deploy SGLang, batch by batch]") == 1
    assert load.failures == [], load.failures[:10]
    # The canary runs its last good image again; the others were never restarted.
    assert on_spark(CANARY, "docker inspect --format '{{.Config.Image}}' sglang-main") == good
    assert all(started_at(spark) == before[spark] for spark in SPARKS[1:])
    assert wait_all_healthy()


def bench(extra=None):
    reports = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reports"
    before = set(reports.iterdir()) if reports.is_dir() else set()
    result, out = play("bench.yml", extra=extra)
    made = set(reports.iterdir()) - before
    assert len(made) == 1, (made, out[-3000:])
    return result, out, made.pop()


def test_the_bench_report_has_one_row_per_host_and_the_gate_names_a_slowed_host():
    result, out, run = bench({"sglang_bench_baseline": "none"})
    assert result.returncode == 0, out[-3000:]
    with open(run / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["host"] for r in rows) == SPARKS and all(r["profile"] == "lesson" for r in rows)
    for spark in SPARKS:
        # This fleet runs the current line's SGLang, 0.5.23 (molecule.yml): its bench writes server_info (with
        # the API key, where one is set) and total_throughput; the runner keeps the line without server_info.
        line = json.loads((run / spark / "main" / "lesson.jsonl").read_text().splitlines()[-1])
        assert line["sim_version"] == "0.5.23-sim" and line["total_throughput"] > 0 and "server_info" not in line
    assert all((run / "plots" / p).read_bytes().startswith(b"\x89PNG") for p in ("throughput.png", "latency.png"))
    # SLOW decodes at a fifth of its rate (the sim's rate option), as after a bad change.
    slow = {"sglang_server_instances": [{"name": "main", "env": {"SGLANG_SIM_TOKENS_PER_SEC": "40"}}]}
    try:
        result, out = play("deploy.yml", "--limit", SLOW, extra=slow)
        assert result.returncode == 0, out[-3000:]
        result, out, run = bench()  # against the previous run
        assert result.returncode != 0
        assert f"REGRESSION {SLOW} instance=main profile=lesson concurrency=10: total token throughput" in flat(out), out[-3000:]
        assert all(f"REGRESSION {spark}" not in out for spark in SPARKS if spark != SLOW)
        failed = {h for h, c in playbook_run.recap(out).items() if c["failed"]}
        assert failed == {SLOW}
    finally:
        result, out = play("deploy.yml", "--limit", SLOW)
        assert result.returncode == 0, out[-3000:]
    assert wait_all_healthy()


def test_a_run_without_change_changes_nothing_and_no_worker_leaves_the_router(noop_run):
    result, out, seen = noop_run
    assert result.returncode == 0, out[-4000:]
    assert all(counts["changed"] == 0 for counts in playbook_run.recap(out).values()), playbook_run.recap(out)
    assert len(seen) > 20 and all(urls == WORKERS for urls in seen), [s for s in seen if s != WORKERS][:5]

