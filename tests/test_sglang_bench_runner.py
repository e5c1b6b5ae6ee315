"""sglang_bench's runner (roles/sglang_bench/files/sglang-bench) on the host ("-" for the container),
with the SIMULATED bench against a keyed SIMULATED server, both as 0.5.23 (SGLANG_SIM_UPSTREAM), whose
bench writes `server_info`, the key in it, into its line (docs/upstream.md):
the runner keeps the line without it, masks the key and keeps the results root's only."""
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

import upstream as up
from sglang_sim_helpers import SIM_PYTHON, module_server, run_module, sim_env

RUNNER = Path(__file__).resolve().parent.parent / "roles" / "sglang_bench" / "files" / "sglang-bench"
KEY = "sk-bench-runner-test-key"
SERVER_INFO = {"SGLANG_SIM_UPSTREAM": "0.5.23"}
BENCH_ARGS = ["--backend", "sglang", "--host", "127.0.0.1", "--dataset-name", "random", "--num-prompts", "2",
              "--random-input-len", "8", "--random-output-len", "4", "--disable-tqdm"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = module_server(tmp_path_factory, ["--model-path", "org/bench-model", "--api-key", KEY],
                      {"SGLANG_SIM_STARTUP_DELAY": "0.3", "SGLANG_SIM_TOKENS_PER_SEC": "1000", **SERVER_INFO},
                      "runner-server")
    yield s
    s.kill()


def test_the_sim_bench_writes_the_key_as_0_5_23_does(server, tmp_path):
    """Without the runner the line holds the key: what the runner's test below guards against."""
    serving = up.source(up.SGLANG_NEW, "sglang/benchmark/serving.py")
    assert 'requests.get(base_url + "/server_info", headers=get_auth_headers())' in serving
    assert '"server_info": server_info,' in serving and 'os.environ.get("OPENAI_API_KEY")' in serving
    out = tmp_path / "raw.jsonl"
    r = run_module("sglang.bench_serving", [*BENCH_ARGS, "--port", str(server.port), "--output-file", str(out)],
                   env={**SERVER_INFO, "OPENAI_API_KEY": KEY}, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(out.read_text())["server_info"]["api_key"] == KEY


def test_the_runner_keeps_the_line_without_the_key_root_only(server, tmp_path):
    secrets = tmp_path / "main.secrets"
    secrets.write_text(f"SGLANG_API_KEY='{KEY}'\n")
    secrets.chmod(0o600)
    output = tmp_path / "runs" / "20261206T000000Z" / "main" / "latency.jsonl"
    env = sim_env({**SERVER_INFO, "SGLANG_BENCH_SECRETS": str(secrets)})
    for _ in range(2):
        r = subprocess.run(["sh", str(RUNNER), "-", SIM_PYTHON, "-", str(output),
                            *BENCH_ARGS, "--port", str(server.port)],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    text = output.read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 2 and all(row["completed"] == 2 for row in rows), rows  # the key was in force
    assert all("server_info" not in row for row in rows)
    assert KEY not in text and KEY not in r.stdout + r.stderr
    assert stat.S_IMODE(os.stat(output).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(output.parent).st_mode) == 0o700


def test_the_runner_fails_with_the_bench(tmp_path):
    """A failed bench (no server on the port) is the runner's failure and appends nothing."""
    output = tmp_path / "out.jsonl"
    r = subprocess.run(["sh", str(RUNNER), "-", SIM_PYTHON, "-", str(output), *BENCH_ARGS, "--port", "9"],
                       env=sim_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert not output.exists() or output.read_text() == ""
