"""Tests of roles/sglang_bench/files/fleet_report.py: the fleet bench report and its regression gate.

Fixture lines are literal `sglang.bench_serving --output-file` lines. Their key sets are the
`result = {...}` dicts of real SGLang versions (sgl-project/sglang history); the numbers are
realistic for Qwen3-8B NVFP4 on one DGX Spark (random 1024 in / 256 out, 40 prompts).
"""
import csv
import importlib.util
import io
import json
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "roles" / "sglang_bench" / "files" / "fleet_report.py"
SPEC = importlib.util.spec_from_file_location("fleet_report", SCRIPT)
fr = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(fr)

HOSTS = ["spark-sim-01", "spark-sim-02", "spark-sim-03"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# SGLang 0.2.x: python/sglang/bench_serving.py at sgl-project/sglang 50a6136 (before
# --max-concurrency, PR #2136, Nov 2024). Only these 17 keys were written to the JSONL:
# no request/input throughput, no p99 TTFT, no TPOT, no mean ITL, no max_concurrency.
OLD_02X = {
    "backend": "sglang", "dataset_name": "random", "request_rate": float("inf"),
    "total_input_tokens": 40960, "total_output_tokens": 10240,
    "total_output_tokens_retokenized": 10229, "mean_e2e_latency_ms": 5402.7,
    "median_e2e_latency_ms": 5377.9, "median_ttft_ms": 402.3, "median_itl_ms": 19.1,
    "output_throughput": 463.14, "sharegpt_output_len": None, "random_input_len": 1024,
    "random_output_len": 256, "random_range_ratio": 0.0, "duration": 22.11, "completed": 40,
}

# SGLang 0.4.x-0.5.1: python/sglang/bench_serving.py at sgl-project/sglang 0033168 (mid 2025,
# before PR #9790 "Dump total_throughput to output-file", Aug 2025): full latency stats, no
# total_throughput.
MID_04X = {
    "backend": "sglang", "dataset_name": "random", "request_rate": float("inf"),
    "max_concurrency": 10, "sharegpt_output_len": None, "random_input_len": 1024,
    "random_output_len": 256, "random_range_ratio": 0.0, "duration": 21.64, "completed": 40,
    "total_input_tokens": 40960, "total_output_tokens": 10240,
    "total_output_tokens_retokenized": 10233, "request_throughput": 1.8484,
    "input_throughput": 1892.79, "output_throughput": 473.2, "mean_e2e_latency_ms": 5301.8,
    "median_e2e_latency_ms": 5277.4, "std_e2e_latency_ms": 322.9, "p99_e2e_latency_ms": 5911.6,
    "mean_ttft_ms": 421.7, "median_ttft_ms": 395.0, "std_ttft_ms": 98.4, "p99_ttft_ms": 719.3,
    "mean_tpot_ms": 19.14, "median_tpot_ms": 19.02, "std_tpot_ms": 0.69, "p99_tpot_ms": 20.83,
    "mean_itl_ms": 19.1, "median_itl_ms": 18.84, "std_itl_ms": 3.3, "p95_itl_ms": 22.4,
    "p99_itl_ms": 38.9, "concurrency": 9.8, "accept_length": None,
}

# SGLang 0.5.x with total_throughput: python/sglang/benchmark/serving.py at sgl-project/sglang
# 00f9ec4 (what `sglang.bench_serving` runs in current releases). server_info is None when
# the /server_info request fails; a real one is a large dict the report ignores.
NEW_05X = {
    "tag": None, "backend": "sglang", "dataset_name": "random", "request_rate": float("inf"),
    "max_concurrency": 10, "sharegpt_output_len": None, "random_input_len": 1024,
    "random_output_len": 256, "random_range_ratio": 0.0, "server_info": None,
    "duration": 21.27, "completed": 40, "total_input_tokens": 40960,
    "total_input_text_tokens": 40960, "total_input_vision_tokens": 0,
    "total_output_tokens": 10240, "total_output_tokens_retokenized": 10236,
    "request_throughput": 1.8806, "input_throughput": 1925.71, "output_throughput": 481.43,
    "total_throughput": 2407.14, "mean_e2e_latency_ms": 5213.4,
    "median_e2e_latency_ms": 5190.2, "std_e2e_latency_ms": 310.5, "p90_e2e_latency_ms": 5611.0,
    "p95_e2e_latency_ms": 5702.3, "p99_e2e_latency_ms": 5802.7, "mean_ttft_ms": 412.6,
    "median_ttft_ms": 388.1, "std_ttft_ms": 95.2, "p90_ttft_ms": 541.8, "p95_ttft_ms": 610.4,
    "p99_ttft_ms": 702.9, "mean_tpot_ms": 18.83, "median_tpot_ms": 18.71, "std_tpot_ms": 0.64,
    "p90_tpot_ms": 19.6, "p95_tpot_ms": 19.9, "p99_tpot_ms": 20.41, "mean_itl_ms": 18.8,
    "median_itl_ms": 18.52, "std_itl_ms": 3.1, "p90_itl_ms": 20.3, "p95_itl_ms": 21.9,
    "p99_itl_ms": 37.6, "concurrency": 9.81, "accept_length": None,
    "max_output_tokens_per_s": 540.0, "max_concurrent_requests": 10,
}

META = {
    "host": "spark-sim-01", "image": "lmsysorg/sglang@sha256:" + "3f" * 32,
    "model_revisions": {"sim-org/Qwen3-8B-NVFP4-sim": "9c1b" * 10},
    "instances": {"main": {"port": 30000, "flags": [
        "--model-path", "/models/Qwen3-8B-NVFP4", "--port", "30000",
        "--mem-fraction-static", "0.7", "--quantization", "modelopt_fp4"]}},
}


def slowed(line, factor):
    """The same run on a host `factor` times as fast (0.5 = half the throughput)."""
    out = dict(line)
    for key, value in line.items():
        if isinstance(value, float) and key.endswith("_throughput"):
            out[key] = value * factor
        elif isinstance(value, float) and (key.endswith("_ms") or key == "duration"):
            out[key] = value / factor
    return out


def make_run(parent, name, hosts, metas=None, instance="main", profile="lesson"):
    """hosts: {host: [lines]} or {host: {instance: {profile: [lines]}}} -> the run dir."""
    run = parent / name
    for host, content in hosts.items():
        if isinstance(content, list):
            content = {instance: {profile: content}}
        for inst, profiles in content.items():
            (run / host / inst).mkdir(parents=True)
            for prof, lines in profiles.items():
                (run / host / inst / f"{prof}.jsonl").write_text(
                    "".join(json.dumps(x) + "\n" for x in lines))
    for host, meta in (metas or {}).items():
        (run / host / "meta.json").write_text(json.dumps(meta))
    return run


def report(run, *args):
    """-> (exit code, stdout, stderr) of main()."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = fr.main([str(run), *args])
    return code, out.getvalue(), err.getvalue()


def section(md, title):
    """The lines of the markdown section whose heading starts with `title`."""
    lines, inside = [], False
    for line in md.splitlines():
        if line.startswith("## "):
            inside = line[3:].startswith(title)
        elif inside:
            lines.append(line)
    return lines


def table_rows(lines):
    return [[c.strip() for c in x.strip("|").split("|")] for x in lines
            if x.startswith("|") and not x.startswith("|---")][1:]


def csv_rows(run):
    with open(run / "report.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_total_throughput_is_taken_from_new_lines_and_derived_for_old_ones():
    new = fr.normalize(NEW_05X)
    assert new["schema"] == "new" and new["total_throughput"] == 2407.14
    # Taken as written, not recomputed from input + output.
    assert fr.normalize(dict(NEW_05X, total_throughput=2399.0))["total_throughput"] == 2399.0
    mid = fr.normalize(MID_04X)
    assert mid["schema"] == "old"
    assert mid["total_throughput"] == pytest.approx(1892.79 + 473.2)
    old = fr.normalize(OLD_02X)  # no input_throughput: tokens / duration
    assert old["schema"] == "old"
    assert old["total_throughput"] == pytest.approx((40960 + 10240) / 22.11)
    assert old["max_concurrency"] is None and old["p99_ttft_ms"] is None
    assert new["request_rate"] == "inf" and new["max_concurrency"] == 10
    assert fr.normalize(dict(NEW_05X, p99_ttft_ms=float("nan")))["p99_ttft_ms"] is None


def test_infinity_and_null_in_jsonl_are_read_and_summary_is_strict_json(tmp_path):
    run = make_run(tmp_path, "r1", {"spark-sim-01": [dict(NEW_05X, max_concurrency=None)]})
    assert "Infinity" in (run / "spark-sim-01/main/lesson.jsonl").read_text()
    assert report(run)[0] == 0

    def strict(token):
        raise AssertionError(f"non-standard JSON token {token}")

    summary = json.loads((run / "summary.json").read_text(), parse_constant=strict)
    [row] = summary["rows"]
    assert summary["run"] == "r1"
    assert (row["host"], row["instance"], row["profile"]) == ("spark-sim-01", "main", "lesson")
    assert row["max_concurrency"] is None and row["request_rate"] == "inf"
    assert row["total_throughput"] == 2407.14 and row["p99_ttft_ms"] == 702.9


def test_one_row_per_host_in_the_fleet_table_and_the_csv(tmp_path):
    lines = {"spark-sim-01": [NEW_05X], "spark-sim-02": [MID_04X], "spark-sim-03": [OLD_02X]}
    run = make_run(tmp_path, "r1", lines, metas={"spark-sim-01": META})
    code, out, _ = report(run)
    assert code == 0
    md = (run / "report.md").read_text()
    fleet = table_rows(section(md, "Fleet"))
    assert [r[0] for r in fleet] == HOSTS
    assert fleet[0][5] == "2407.1" and fleet[0][-1] == "100%"

    rows = csv_rows(run)
    assert [r["host"] for r in rows] == HOSTS
    assert [r["schema"] for r in rows] == ["new", "old", "old"]
    assert rows[0]["image"] == META["image"]
    assert rows[0]["model_revisions"] == "sim-org/Qwen3-8B-NVFP4-sim=" + "9c1b" * 10
    assert rows[1]["image"] == "n/a"  # spark-sim-02 has no meta.json
    assert float(rows[2]["total_throughput"]) == pytest.approx(2315.7, abs=0.1)

    host1 = "\n".join(section(md, "spark-sim-01"))
    assert f"image: `{META['image']}`" in host1
    assert "`--model-path /models/Qwen3-8B-NVFP4 --port 30000 --mem-fraction-static 0.7" in host1
    assert "image: `n/a`" in "\n".join(section(md, "spark-sim-02"))
    assert "rows: 3, hosts: 3" in out and f"report: {run / 'report.md'}" in out
    # No baseline given: no gate section, and gate.json says so.
    assert "## Regression gate" not in md
    assert json.loads((run / "gate.json").read_text())["verdict"] == "NOT RUN"


def test_flags_from_docker_inspect_cmd_are_shown_without_the_wrapper_or_the_api_key(tmp_path):
    # The sglang_bench role records `docker inspect` output: {"image", "cmd"} per instance; the
    # cmd starts with sglang_server's shell wrapper (which reads the key from the secrets file).
    wrapper = ["sh", "-c", "set -a; . /run/secrets/sglang; set +a; exec python3 /run/sglang-launch.py \"$@\"",
               "sglang-launch-server"]
    meta = dict(META, instances={"main": {"image": META["image"], "cmd": wrapper + [
        "--model-path", "/models/x", "--api-key", "sk-secret", "--port", "30000"]},
        "draft": {"image": META["image"], "cmd": wrapper + ["--api-key=sk-secret2"]}})
    run = make_run(tmp_path, "r1", {"spark-sim-01": [NEW_05X]}, metas={"spark-sim-01": meta})
    assert report(run)[0] == 0
    md = (run / "report.md").read_text()
    assert "instance `main` flags: `--model-path /models/x --api-key REDACTED --port 30000`" in md
    assert "instance `draft` flags: `--api-key=REDACTED`" in md
    assert "sk-secret" not in md and "sh -c" not in md


def test_a_rerun_appended_to_the_jsonl_supersedes_the_older_line(tmp_path):
    rerun = slowed(NEW_05X, 1.1)
    run = make_run(tmp_path, "r1", {"spark-sim-01": [NEW_05X, dict(NEW_05X, max_concurrency=4),
                                                     rerun]})
    assert report(run)[0] == 0
    rows = csv_rows(run)
    assert [r["max_concurrency"] for r in rows] == ["4", "10"]
    assert float(rows[1]["total_throughput"]) == pytest.approx(2407.14 * 1.1)
    assert "lesson.jsonl:3 supersedes an earlier line for concurrency=10" in (
        run / "report.md").read_text()


def test_missing_metrics_show_na_and_the_gate_skips_them(tmp_path):
    base = make_run(tmp_path, "r1", {h: [OLD_02X] for h in HOSTS})
    assert report(base)[0] == 0
    run = make_run(tmp_path, "r2", {h: [OLD_02X] for h in HOSTS})
    code, out, _ = report(run, "--baseline", str(base))
    assert code == 0 and "PASS" in out

    md = (run / "report.md").read_text()
    cells = dict(zip(["instance", "profile", "concurrency"] + [h for _, h, _ in fr.HOST_TABLE],
                     table_rows(section(md, "spark-sim-01"))[0]))
    assert cells["TTFT p99 ms"] == cells["TPOT mean ms"] == cells["req/s"] == "n/a"
    assert cells["TTFT median ms"] == "402.3" and cells["concurrency"] == "unbounded"

    gate = json.loads((run / "gate.json").read_text())
    assert gate["compared"] == 3 and gate["regressions"] == []
    assert len(gate["skipped"]) == 3 and all("p99_ttft_ms missing" in s for s in gate["skipped"])
    assert "p99_ttft_ms missing in this run, not gated" in md

    # The derived throughput of old lines is still gated.
    run3 = make_run(tmp_path, "r3", {h: [slowed(OLD_02X, 0.5)] for h in HOSTS})
    assert report(run3, "--baseline", str(base))[0] == 1


def test_plots_are_real_pngs_and_the_sweep_plot_needs_several_concurrencies(tmp_path):
    single = make_run(tmp_path, "r1", {h: [NEW_05X] for h in HOSTS})
    (single / "plots").mkdir()
    (single / "plots/sweep.png").write_bytes(b"stale")
    assert report(single)[0] == 0
    for name in ("throughput.png", "latency.png"):
        data = (single / "plots" / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 5000
    assert not (single / "plots/sweep.png").exists()
    md = (single / "report.md").read_text()
    assert "](plots/throughput.png)" in md and "sweep.png" not in md

    # (max_concurrency, total tok/s, p99 TTFT ms): throughput saturates, TTFT climbs.
    sweep = [dict(NEW_05X, max_concurrency=c, total_throughput=tps, p99_ttft_ms=ttft)
             for c, tps, ttft in ((1, 612.4, 121.7), (4, 1688.9, 298.3), (10, 2407.14, 702.9))]
    multi = make_run(tmp_path, "r2", {h: {"main": {"lesson": [NEW_05X], "sweep": sweep}}
                                      for h in HOSTS})
    assert report(multi)[0] == 0
    data = (multi / "plots/sweep.png").read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 5000
    md = (multi / "report.md").read_text()
    assert "](plots/sweep.png)" in md
    assert len(csv_rows(multi)) == 3 * 4  # lesson@10 + sweep@1,4,10 per host
    # The fleet table still has one row per host: the lesson profile's.
    fleet = table_rows(section(md, "Fleet: profile `lesson`"))
    assert [r[0] for r in fleet] == HOSTS and {r[2] for r in fleet} == {"10"}


def test_the_report_is_marked_simulated_when_a_line_says_so(tmp_path):
    real = make_run(tmp_path, "r1", {h: [NEW_05X] for h in HOSTS})
    report(real)
    assert "SIMULATED" not in (real / "report.md").read_text()
    sim = make_run(tmp_path, "r2", {"spark-sim-01": [NEW_05X],
                                    "spark-sim-02": [dict(NEW_05X, simulated=True)]})
    report(sim)
    assert (sim / "report.md").read_text().splitlines()[0] == "# SIMULATED Fleet bench report"


def test_previous_is_the_newest_earlier_sibling_with_a_summary(tmp_path):
    lines = {h: [NEW_05X] for h in HOSTS}
    for name in ("20261128T000000Z", "20261129T000000Z", "20261201T000000Z"):
        report(make_run(tmp_path, name, lines))
    make_run(tmp_path, "20261130T000000Z", lines)  # newer, but never reported: no summary
    run = make_run(tmp_path, "20261130T012233Z", lines)
    assert fr.find_previous(run) == tmp_path / "20261129T000000Z"

    assert report(run, "--baseline", "previous")[0] == 0
    gate = json.loads((run / "gate.json").read_text())
    assert gate["baseline"] == str(tmp_path / "20261129T000000Z/summary.json")
    assert gate["compared"] == 3 and gate["verdict"] == "PASS"


def test_no_previous_run_skips_the_gate(tmp_path):
    run = make_run(tmp_path, "20261130T012233Z", {h: [NEW_05X] for h in HOSTS})
    code, out, _ = report(run, "--baseline", "previous")
    assert code == 0 and "no previous run: gate skipped" in out
    assert json.loads((run / "gate.json").read_text())["verdict"] == "SKIPPED"
    assert "no previous run: gate skipped" in (run / "report.md").read_text()


def test_a_slowed_host_fails_the_gate_and_only_that_host_is_named(tmp_path):
    base = make_run(tmp_path, "r1", {h: [NEW_05X] for h in HOSTS})
    report(base)
    run = make_run(tmp_path, "r2", {"spark-sim-01": [slowed(NEW_05X, 0.98)],
                                    "spark-sim-02": [slowed(NEW_05X, 0.3377)],
                                    "spark-sim-03": [slowed(NEW_05X, 1.04)]})
    code, out, _ = report(run, "--baseline", str(base / "summary.json"))
    assert code == 1
    assert ("REGRESSION spark-sim-02 instance=main profile=lesson concurrency=10: total token "
            "throughput 2407.1 -> 812.9 tok/s (-66.2%, allowed -10%)") in out
    assert re.search(r"REGRESSION spark-sim-02 .*p99 TTFT 702\.9 -> 2081\.4 ms "
                     r"\(\+196\.1%, allowed \+25%\)", out)
    assert "REGRESSION spark-sim-01" not in out and "REGRESSION spark-sim-03" not in out
    gate = json.loads((run / "gate.json").read_text())
    assert {r["host"] for r in gate["regressions"]} == {"spark-sim-02"}
    assert {r["metric"] for r in gate["regressions"]} == {"total_throughput", "p99_ttft_ms"}
    assert gate["compared"] == 3
    assert "verdict: **FAIL**" in (run / "report.md").read_text()


def test_changes_within_the_margins_pass_and_unmatched_rows_are_listed(tmp_path):
    base = make_run(tmp_path, "r1", {h: [NEW_05X] for h in HOSTS})
    report(base)
    worse = dict(slowed(NEW_05X, 0.95), p99_ttft_ms=702.9 * 1.2)  # -5 % tok/s, +20 % p99 TTFT
    run = make_run(tmp_path, "r2", {"spark-sim-01": [worse], "spark-sim-02": [NEW_05X],
                                    "spark-sim-04": [NEW_05X]})
    code, out, _ = report(run, "--baseline", str(base))
    assert code == 0 and "REGRESSION" not in out
    assert "not compared: spark-sim-04 instance=main profile=lesson concurrency=10" in out
    assert "not compared: spark-sim-03 instance=main profile=lesson concurrency=10" in out
    assert json.loads((run / "gate.json").read_text())["compared"] == 2
    # Tighter margins turn the same change into regressions; faster is never one.
    assert report(run, "--baseline", str(base), "--max-throughput-drop", "0.04")[0] == 1
    assert report(run, "--baseline", str(base), "--max-ttft-p99-growth", "0.1")[0] == 1
    # ... unless the p99 TTFT grew by less than the absolute floor (702.9 -> 843.5 ms: +140.6 ms).
    assert report(run, "--baseline", str(base), "--max-ttft-p99-growth", "0.1", "--min-ttft-p99-delta-ms", "150")[0] == 0
    assert report(run, "--baseline", str(base), "--max-ttft-p99-growth", "0.1", "--min-ttft-p99-delta-ms", "130")[0] == 1
    faster = make_run(tmp_path, "r3", {h: [slowed(NEW_05X, 1.2)] for h in HOSTS})
    assert report(faster, "--baseline", str(base), "--max-throughput-drop", "0")[0] == 0


def test_bad_json_line_exits_2_naming_the_file_and_line(tmp_path):
    run = make_run(tmp_path, "r1", {"spark-sim-01": [NEW_05X]})
    path = run / "spark-sim-01/main/lesson.jsonl"
    path.write_text(path.read_text() + "\n" + '{"backend": "sglang", "completed": 4\n')
    code, _, err = report(run)
    assert code == 2 and f"{path}:3" in err and "not valid JSON" in err
    assert not (run / "report.md").exists()


def test_an_empty_run_dir_exits_2(tmp_path):
    (tmp_path / "r1" / "spark-sim-01").mkdir(parents=True)
    code, _, err = report(tmp_path / "r1")
    assert code == 2 and "no <host>/<instance>/<profile>.jsonl" in err
    # Files that hold no result line (a bench that wrote nothing) are no better.
    run = make_run(tmp_path, "r2", {"spark-sim-01": []})
    (run / "spark-sim-01/main/lesson.jsonl").write_text("\n\n")
    code, _, err = report(run)
    assert code == 2 and "every JSONL file is empty" in err


@pytest.mark.parametrize("flag", ["--max-throughput-drop", "--max-ttft-p99-growth", "--min-ttft-p99-delta-ms"])
def test_a_negative_margin_exits_2(tmp_path, flag):
    run = make_run(tmp_path, "r1", {"spark-sim-01": [NEW_05X]})
    code, _, err = report(run, flag, "-0.1")
    assert code == 2 and flag in err
    assert report(run, flag, "0.1")[0] == 0


def test_a_missing_baseline_exits_2(tmp_path):
    run = make_run(tmp_path, "r1", {"spark-sim-01": [NEW_05X]})
    code, _, err = report(run, "--baseline", str(tmp_path / "nope"))
    assert code == 2 and "baseline not found" in err
    (tmp_path / "bad.json").write_text('{"run": "x"}')
    code, _, err = report(run, "--baseline", str(tmp_path / "bad.json"))
    assert code == 2 and "no 'rows' list" in err


def test_the_cli_as_the_ansible_role_calls_it(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    sim = dict(NEW_05X, simulated=True)
    base = make_run(reports, "20261129T230000Z", {h: [sim] for h in HOSTS}, metas={
        h: dict(META, host=h) for h in HOSTS})
    cmd = [sys.executable, "roles/sglang_bench/files/fleet_report.py"]
    first = subprocess.run(cmd + [str(base), "--baseline", "previous"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "no previous run: gate skipped" in first.stdout

    run = make_run(reports, "20261130T012233Z", {"spark-sim-01": [sim], "spark-sim-03": [sim],
                                                 "spark-sim-02": [slowed(sim, 0.5)]})
    second = subprocess.run(cmd + [str(run), "--baseline", "previous"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 1, second.stderr
    assert "REGRESSION spark-sim-02 instance=main profile=lesson" in second.stdout
    assert f"report: {run / 'report.md'}" in second.stdout
    assert "rows: 3, hosts: 3" in second.stdout

    as_json = subprocess.run(cmd + [str(run), "--baseline", "previous", "--json"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    doc = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and doc["hosts"] == 3 and doc["gate"]["verdict"] == "FAIL"
    assert doc["gate"]["baseline"] == str(base / "summary.json")
