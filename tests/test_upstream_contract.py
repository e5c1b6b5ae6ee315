"""Contract tests: the simulator (sim/) against the REAL upstream sources, pinned and parsed.

`make upstream` downloads the pins of scripts/fetch_upstream.py into .cache/upstream/; each test
reads the real file with `ast` and checks the sim against it. docs/upstream.md says, per sim
behaviour, which upstream file it follows and which test here checks it. Known disagreements the
fix of which changes what the roles rely on are xfail(strict=True): they fail once fixed.
SPARK_SIM_DIR=<copy of sim/> runs the suite against a copy (docs/upstream.md, "Drift").
"""

import ast
import importlib.util
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import upstream as up  # noqa: E402
from sglang_sim_helpers import (  # noqa: E402
    SIM_DIR, SIM_PYTHON, free_ports, module_server, refused, run_module, sim_env, spawn, start_sim_hub,  # noqa: F401
)

_FILTER = importlib.util.spec_from_file_location(
    "sglang_server_filter", Path(__file__).resolve().parents[1] / "plugins" / "filter" / "sglang_server.py")
_filter = importlib.util.module_from_spec(_FILTER)
_FILTER.loader.exec_module(_filter)
ALIASES = _filter.PARALLEL_ALIASES

SECRET = "contract-secret-key"
# Sim-only keys of the bench JSONL line: they mark a simulated run (roles/sglang_bench/files/fleet_report.py).
SIM_MARKER_KEYS = {"simulated", "sim_version"}
# The releases the sim speaks (SGLANG_SIM_UPSTREAM, sim/sglang_sim/sglang/__init__.py), each with its pinned package.
RELEASES = {"0.5.3.post3": up.SGLANG_OLD, "0.5.23": up.SGLANG_NEW}


def sim_eval(code, upstream=None):
    """Run code in the sim's own interpreter and package (as the image does), as the release upstream
    (default: the sim's own default); returns its JSON."""
    env = sim_env({"SGLANG_SIM_UPSTREAM": upstream} if upstream else None)
    r = subprocess.run([SIM_PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def upstream_options():
    module = up.tree(up.SGLANG_OLD, "sglang/srt/server_args.py")
    return up.argparse_options(module, up.function(module, "add_cli_args"))


SIM_OPTIONS = (
    "import json, sglang._sim_server as s\n"
    "names = {'_StoreAction': 'store', '_StoreTrueAction': 'store_true'}\n"
    "print(json.dumps([{'options': a.option_strings, 'action': names.get(type(a).__name__, type(a).__name__),\n"
    "                   'type': getattr(a.type, '__name__', None), 'choices': a.choices}\n"
    "                  for a in s.build_parser()._actions if '--help' not in a.option_strings]))")


@pytest.fixture(scope="module")
def sim_options():
    return sim_eval(SIM_OPTIONS)


# ----------------------------------------------------------------------------- (a) server flags

def test_every_sim_flag_matches_upstream_server_args(sim_options, upstream_options):
    """Each sim option: same option strings, action, type and (a subset of the) choices as in the
    real sglang/srt/server_args.py of 0.5.3.post3."""
    bad = []
    for a in sim_options:
        real = next((upstream_options[o] for o in a["options"] if o in upstream_options), None)
        if real is None:
            bad.append((a["options"], "not upstream"))
            continue
        checks = [("option strings", set(real["options"]) == set(a["options"])),
                  ("action", real["action"] == a["action"]),
                  ("type", real["type"] in (None, a["type"])),
                  ("choices", not a["choices"] or not real["choices"] or set(a["choices"]) <= set(real["choices"]))]
        bad += [(a["options"], what, real["line"]) for what, ok in checks if not ok]
    assert not bad, bad


def test_every_sim_flag_as_0_5_23_is_a_0_5_23_option():
    """As 0.5.23, each sim option has the option strings 0.5.23 registers: its fields'
    (arg_groups/fields/*.py, through add_cli_args_from_dataclass) and add_cli_args' own (the deprecated and
    dynamic ones). Actions and types are not compared: 0.5.23 derives them from the fields' types."""
    module = up.tree(up.SGLANG_NEW, "sglang/srt/server_args.py")
    real = {**up.annotated_cli_options(up.SGLANG_NEW), **up.argparse_options(module, up.function(module, "add_cli_args"))}
    assert "add_cli_args_from_dataclass(parser, ServerArgs)" in up.source(up.SGLANG_NEW, "sglang/srt/server_args.py")
    assert len(real) > 500 and set(real["--tp-size"]["options"]) == {"--tp-size", "--tensor-parallel-size"}
    sim = sim_eval(SIM_OPTIONS, "0.5.23")
    bad = [(a["options"], real.get(a["options"][0], {}).get("options", "not upstream")) for a in sim
           if set(real.get(a["options"][0], {}).get("options", ())) != set(a["options"])]
    assert not bad, bad
    # The one the sim's 0.5.3.post3 flags have and 0.5.23 split per phase: there, as a prefix of two
    # options, argparse refuses it as ambiguous.
    assert "--cuda-graph-max-bs" not in real and {"--cuda-graph-max-bs-decode", "--cuda-graph-max-bs-prefill"} <= set(real)


def test_sim_defines_no_tp_dp_aliases_upstream_lacks(sim_options, upstream_options):
    """--tp and --dp are no options of 0.5.3.post3 (server_args.py:1760-1761, :2071-2072), only argparse
    abbreviations of the one option each begins (ArgumentParser() keeps allow_abbrev, :3473); the sim defines
    neither, so it takes them as upstream does."""
    sim = {o for a in sim_options for o in a["options"]}
    assert not {"--tp", "--dp"} & (sim | set(upstream_options))
    assert {o for o in upstream_options if o.startswith("--tp")} == {"--tp-size"}
    assert {o for o in upstream_options if o.startswith("--dp")} == {"--dp-size"}
    assert sim_eval("import json, sglang._sim_server as s\n"
                    "a = s.parse_args(['--model-path', 'm', '--tp', '2', '--dp', '3'])\n"
                    "print(json.dumps([a.tp_size, a.dp_size]))") == [2, 3]


def test_role_refuses_the_other_spellings_upstream_has(upstream_options):
    """Each key sglang_server_parallel_aliases refuses is another spelling 0.5.3.post3 takes of the flag whose key it
    names: an option string of the same argument, or an abbreviation of that option alone."""
    for alias, key in ALIASES.items():
        flag, other = "--" + key.replace("_", "-"), "--" + alias.replace("_", "-")
        spellings = {o for o in upstream_options if o.startswith(other)}
        assert flag in upstream_options and (other in upstream_options[flag]["options"] or spellings == {flag}), alias


# ----------------------------------------------------------------------------- (b) HTTP routes

def sim_routes(upstream):
    return sim_eval("import json, sglang._sim_server as s\n"
                    "print(json.dumps({p: m.split() for p, (m, _) in s.Handler.ROUTES.items()}))", upstream)


def routes(package):
    found = up.fastapi_routes(up.tree(package, "sglang/srt/entrypoints/http_server.py"))
    found["/metrics"] = {"GET"}  # mounted by add_prometheus_middleware (sglang/srt/utils/common.py)
    assert "def add_prometheus_middleware" in up.source(package, "sglang/srt/utils/common.py")
    return found


def route_mismatches(sim_routes, real, known=()):
    return {p: m for p, m in sim_routes.items()
            if p not in known and (p not in real or not set(m) <= real[p])}


@pytest.mark.parametrize("upstream", RELEASES)
def test_sim_routes_exist_in_its_release_with_their_methods(upstream):
    """The routes the sim serves as each release are that release's, with their methods; and the ones the
    roles, the router and the tests ask for are all there (0.5.23 dropped /get_load and added /ready,
    /model_info and /server_info, keeping the get_ names)."""
    sim, real = sim_routes(upstream), routes(RELEASES[upstream])
    assert not route_mismatches(sim, real)
    asked = {"/health", "/health_generate", "/v1/models", "/get_model_info", "/get_server_info", "/metrics",
             "/v1/chat/completions", "/v1/completions", "/generate", "/flush_cache"}
    assert asked <= set(sim) and asked <= set(real)
    new_only = {"/ready", "/model_info", "/server_info"}
    assert (new_only <= set(sim)) == (new_only <= set(real)) == (upstream == "0.5.23")
    assert ("/get_load" in sim) == ("/get_load" in real) == (upstream == "0.5.3.post3")


@pytest.mark.parametrize("upstream", RELEASES)
def test_api_key_exemptions_match_upstream(upstream):
    """0.5.3.post3 lets /health* and /metrics through without the key; 0.5.23 also /ready."""
    if upstream == "0.5.3.post3":
        text, pattern = up.source(up.SGLANG_OLD, "sglang/srt/utils/common.py"), 'request.url.path.startswith("{}")'
    else:
        text, pattern = up.source(up.SGLANG_NEW, "sglang/srt/utils/auth.py"), 'path.startswith("{}")'
    real = {p for p in ("/health", "/metrics", "/ready") if pattern.format(p) in text}
    assert real >= {"/health", "/metrics"}
    sim = sim_eval("import json, sglang._sim_server as s; print(json.dumps(s.AUTH_EXEMPT_PREFIXES))", upstream)
    assert set(sim) == real


# ----------------------------------------------------------------------------- (c) metrics

SIM_METRICS = ("import json, sglang._sim_server as s\n"
               "text = s.render_metrics(s.SimState(s.parse_args(['--model-path', 'm'])))\n"
               "print(json.dumps({l.split()[2]: l.split()[3] for l in text.splitlines() if l.startswith('# TYPE')}))")


@pytest.mark.parametrize("package, collector", [
    (up.SGLANG_OLD, "sglang/srt/metrics/collector.py"),
    (up.SGLANG_NEW, "sglang/srt/observability/metrics_collector.py"),
])
def test_sim_metric_names_and_types_exist_upstream(package, collector):
    real = up.prometheus_metrics(up.tree(package, collector))
    sim = sim_eval(SIM_METRICS)
    assert {n: t for n, t in sim.items() if real.get(n) != t} == {}


# ----------------------------------------------------------------------------- (d) bench JSONL

BENCH_MODULES = {"0.5.3.post3": ("sglang.bench_serving", "sglang/bench_serving.py"),
                 "0.5.23": ("sglang.benchmark.serving", "sglang/benchmark/serving.py")}


@pytest.fixture(scope="module", params=list(RELEASES))
def bench_line(request, tmp_path_factory):
    """(release, the line the sim's bench appends as that release, run by its own module name)."""
    upstream = request.param
    env = {"SGLANG_SIM_UPSTREAM": upstream}
    server = module_server(tmp_path_factory, ["--model-path", "org/m"], {"SGLANG_SIM_STARTUP_DELAY": "0.2", **env},
                           "contract-bench")
    out = tmp_path_factory.mktemp("bench") / "out.jsonl"
    try:
        r = run_module(BENCH_MODULES[upstream][0], [
            "--backend", "sglang", "--port", str(server.port), "--host", "127.0.0.1", "--dataset-name", "random",
            "--num-prompts", "2", "--random-input-len", "4", "--random-output-len", "4", "--output-file", str(out)],
            env={"SGLANG_SIM_BENCH_SETTLE": "0", **env})
    finally:
        server.kill()
    assert r.returncode == 0, r.stdout + r.stderr
    return upstream, json.loads(out.read_text())


def upstream_bench_keys(package, path):
    return up.dict_literal_keys(up.function(up.tree(package, path), "benchmark"), "result")


def test_bench_jsonl_keys_are_the_releases(bench_line):
    """Key for key (sim markers aside) what the release's bench appends: 0.5.3.post3's sglang/bench_serving.py,
    0.5.23's sglang/benchmark/serving.py (with server_info, the server's /server_info)."""
    upstream, line = bench_line
    assert sorted(set(line) - SIM_MARKER_KEYS) == sorted(upstream_bench_keys(RELEASES[upstream],
                                                                             BENCH_MODULES[upstream][1]))
    assert line["sim_version"] == f"{upstream}-sim"
    if upstream == "0.5.23":
        assert line["server_info"]["version"] == "0.5.23-sim"
        assert line["total_throughput"] > line["output_throughput"] > 0
        assert line["max_concurrent_requests"] >= 1 and line["max_output_tokens_per_s"] >= 1


@pytest.mark.parametrize("package, path", [
    (up.SGLANG_OLD, "sglang/bench_serving.py"),
    (up.SGLANG_NEW, "sglang/benchmark/serving.py"),
])
def test_fleet_report_reads_only_keys_upstream_writes(package, path):
    """Every metric the fleet report reads is in that version's line (total_throughput is derived
    for 0.5.3.post3, which has none)."""
    sys.path.insert(0, str(up.REPO / "roles" / "sglang_bench" / "files"))
    import fleet_report

    assert set(fleet_report.METRICS) - set(upstream_bench_keys(package, path)) <= {"total_throughput"}


def role_bench_flags():
    """The bench_serving flags roles/sglang_bench sends (read, not rendered): the keys of sglang_bench_flags in
    tasks/run.yml and of every default profile, as options."""
    tasks = yaml.safe_load((up.REPO / "roles/sglang_bench/tasks/run.yml").read_text())
    flags = next(t["vars"]["sglang_bench_flags"] for t in tasks if t.get("name") == "Run bench_serving")
    profiles = yaml.safe_load((up.REPO / "roles/sglang_bench/defaults/main.yml").read_text())["sglang_bench_profiles"]
    keys = set(flags) | {key for profile in profiles.values() for key in profile}
    return {"--" + key.replace("_", "-") for key in keys}


@pytest.mark.parametrize("package, path", [
    (up.SGLANG_OLD, "sglang/bench_serving.py"),
    (up.SGLANG_NEW, "sglang/benchmark/serving.py"),
])
def test_bench_flags_the_role_sends_are_bench_serving_options(package, path):
    """--base-url among them: the role reaches an instance at sglang_server_local_url through it."""
    sent = role_bench_flags()
    assert "--base-url" in sent and "--max-concurrency" in sent, sent
    real = up.argparse_options(up.tree(package, path))
    sim = up.argparse_options(ast.parse((SIM_DIR / "sglang_sim" / "sglang" / "bench_serving.py").read_text()))
    assert sent - set(real) == set(), (package, sent - set(real))
    assert sent - set(sim) == set(), ("sim", sent - set(sim))


def test_0_5_23_bench_serving_is_a_shim_of_sglang_benchmark_serving():
    shim = up.source(up.SGLANG_NEW, "sglang/bench_serving.py")
    assert "from sglang.benchmark.serving import cli_main" in shim and "cli_main()" in shim


def test_sim_has_sglang_benchmark_serving_as_0_5_23_only():
    assert run_module("sglang.benchmark.serving", ["--help"], env={"SGLANG_SIM_UPSTREAM": "0.5.23"}).returncode == 0
    old = run_module("sglang.benchmark.serving", ["--help"], env={"SGLANG_SIM_UPSTREAM": "0.5.3.post3"})
    assert old.returncode != 0 and "No module named 'sglang.benchmark'" in old.stderr
    assert not (up.UPSTREAM / up.SGLANG_OLD / "sglang" / "benchmark").exists() and (up.UPSTREAM / up.SGLANG_OLD / "sglang").is_dir()
    # 0.5.23's old name still runs, saying it is deprecated (its shim's FutureWarning).
    shim = run_module("sglang.bench_serving", ["--help"], env={"SGLANG_SIM_UPSTREAM": "0.5.23"})
    assert shim.returncode == 0 and "`sglang.bench_serving` is deprecated" in shim.stderr
    assert "`sglang.bench_serving` is deprecated" in up.source(up.SGLANG_NEW, "sglang/bench_serving.py")


# ----------------------------------------------------------------------------- (e) startup log line

@pytest.fixture(scope="module")
def startup_line():
    r = run_module("sglang.launch_server", ["--model-path", "org/m", "--api-key", SECRET],
                   env={"SGLANG_SIM_FAIL": "crash_on_start", "SGLANG_SIM_STARTUP_DELAY": "0"})
    lines = [line for line in r.stderr.splitlines() if "server_args=" in line]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_startup_line_is_upstreams_server_args_repr(startup_line):
    """engine.py logs f"{server_args=}" (the ServerArgs dataclass repr) in configure_logger's
    "[%Y-%m-%d %H:%M:%S] message" format (utils/common.py); the sim marker may follow the time."""
    engine = up.source(up.SGLANG_OLD, "sglang/srt/entrypoints/engine.py")
    common = up.source(up.SGLANG_OLD, "sglang/srt/utils/common.py")
    assert 'logger.info(f"{server_args=}")' in engine
    assert 'format = f"[%(asctime)s{prefix}] %(message)s"' in common and 'datefmt="%Y-%m-%d %H:%M:%S"' in common
    fields = up.dataclass_fields(up.tree(up.SGLANG_OLD, "sglang/srt/server_args.py"), "ServerArgs")
    m = re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] (?:\[sglang-sim\] )?server_args=ServerArgs\((.*)\)",
                     startup_line)
    assert m and set(re.findall(r"(?:^|, )(\w+)=", m.group(1))) <= set(fields), startup_line


def test_startup_line_carries_the_api_key_like_upstream(startup_line):
    assert f"api_key={SECRET!r}" in startup_line


def test_startup_line_as_0_5_23_is_its_resolved_dict_with_the_key():
    """0.5.23 logs server_args={...}: the resolved dict, with only the watermark fields redacted."""
    engine = up.source(up.SGLANG_NEW, "sglang/srt/entrypoints/engine.py")
    assert 'logger.info(f"server_args={_server_args_for_logging(server_args)}")' in engine
    assert "return redact_watermark_secrets(server_args.resolved_dict())" in engine
    r = run_module("sglang.launch_server", ["--model-path", "org/m", "--api-key", SECRET],
                   env={"SGLANG_SIM_FAIL": "crash_on_start", "SGLANG_SIM_STARTUP_DELAY": "0",
                        "SGLANG_SIM_UPSTREAM": "0.5.23"})
    lines = [line for line in r.stderr.splitlines() if "server_args=" in line]
    assert len(lines) == 1, r.stderr
    logged = ast.literal_eval(lines[0].split("server_args=", 1)[1])
    assert logged["api_key"] == SECRET and logged["model_path"] == "org/m"


def test_server_info_returns_the_api_key_like_upstream(tmp_path_factory):
    # http_server.py get_server_info: **dataclasses.asdict(server_args), api_key included.
    assert "**dataclasses.asdict(_global_state.tokenizer_manager.server_args)" in up.source(
        up.SGLANG_OLD, "sglang/srt/entrypoints/http_server.py")
    server = module_server(tmp_path_factory, ["--model-path", "org/m", "--api-key", SECRET],
                           {"SGLANG_SIM_STARTUP_DELAY": "0.1"}, "contract-info")
    try:
        info = server.get("/get_server_info", headers={"Authorization": f"Bearer {SECRET}"}).json()
    finally:
        server.kill()
    assert info["api_key"] == SECRET


def test_server_info_fields_are_upstreams(tmp_path_factory):
    """/get_server_info of 0.5.3.post3: the ServerArgs fields, the scheduler's ready message and
    internal_states and version (http_server.py get_server_info; managers/scheduler.py, the pipe_writer.send
    of "ready"); the sim adds only its own, each marked as simulated: `simulated`, `sim` (its rates),
    `joined_ranks` and `nodes` (its multi-node group, which the tests read)."""
    http = up.source(up.SGLANG_OLD, "sglang/srt/entrypoints/http_server.py")
    scheduler = up.source(up.SGLANG_OLD, "sglang/srt/managers/scheduler.py")
    assert "**_global_state.scheduler_info," in http and '"internal_states": internal_states,' in http
    ready = {"status", "max_total_num_tokens", "max_req_input_len"}
    assert all(f'"{k}": ' in scheduler for k in ready)
    fields = set(up.dataclass_fields(up.tree(up.SGLANG_OLD, "sglang/srt/server_args.py"), "ServerArgs"))
    server = module_server(tmp_path_factory, ["--model-path", "org/m"], {"SGLANG_SIM_STARTUP_DELAY": "0.1"},
                           "contract-fields")
    try:
        info = server.get("/get_server_info").json()
    finally:
        server.kill()
    assert set(info) - fields - ready - {"internal_states", "version"} == {"simulated", "sim", "joined_ranks", "nodes"}


# ----------------------------------------------------------------------------- (f) router flags

def role_router_flags():
    """The flags roles/sglang_router puts on the router's command line (read, not rendered): the keys of
    sglang_router_args (given to sglang_server_argv) and the flags spelled in the unit and the launcher."""
    unit = (up.REPO / "roles/sglang_router/templates/sglang-router.service.j2").read_text()
    launcher = (up.REPO / "roles/sglang_router/vars/main.yml").read_text()
    keys = list(yaml.safe_load(launcher)["sglang_router_args"])
    assert keys, "no router args found in roles/sglang_router/vars/main.yml"
    return {"--" + k.replace("_", "-") for k in keys} | set(re.findall(r"(--[a-z-]+)[\s']", unit + launcher))


def test_router_flags_the_role_sends_exist_in_sglang_router():
    module = up.tree(up.ROUTER, "sglang_router/router_args.py")
    # launch_router.py calls add_cli_args(parser, use_router_prefix=False): prefix "".
    assert "RouterArgs.add_cli_args(parser, use_router_prefix=False)" in up.source(
        up.ROUTER, "sglang_router/launch_router.py")
    real = up.argparse_options(module, up.function(module, "add_cli_args"), {"prefix": ""})
    assert role_router_flags() - set(real) == set()


def test_router_module_the_role_runs_is_a_main_module():
    assert 'if __name__ == "__main__":' in up.source(up.ROUTER, "sglang_router/launch_router.py")


# ----------------------------------------------------------------------------- (g) the hub

def start_hub(tmp, *args):
    """The sim hub on a free port, gated behind SECRET; returns (process, url)."""
    return start_sim_hub(tmp, "--token", SECRET, *args)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    proc, url = start_hub(tmp_path_factory.mktemp("contract-hub"))
    yield url
    proc.kill()
    proc.wait(5)


def call(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


REPO_ID = "sim-org/Qwen3-8B-NVFP4-sim"


def hub_paths():
    """The URL templates of huggingface_hub 2.4.0 (hf_api.py, constants.py) the project's hf uses."""
    api = up.source(up.HUB, "huggingface_hub/hf_api.py")
    consts = up.source(up.HUB, "huggingface_hub/constants.py")
    found = {
        "info": 'f"{self.endpoint}/api/models/{repo_id}/revision/{quote(revision, safe=\'\')}"' in api,
        "tree": 'f"{self.endpoint}/api/{repo_type}s/{repo_id}/tree/{revision}{encoded_path_in_repo}"' in api,
        "auth": 'f"{self.endpoint}/api/{repo_type}s/{repo_id}/auth-check"' in api,
        "resolve": 'ENDPOINT + "/{repo_id}/resolve/{revision}/{filename}"' in consts,
    }
    assert all(found.values()), found
    return {"info": f"/api/models/{REPO_ID}/revision/main", "tree": f"/api/models/{REPO_ID}/tree/main",
            "auth": f"/api/models/{REPO_ID}/auth-check", "resolve": f"/{REPO_ID}/resolve/main/config.json"}


@pytest.mark.parametrize("what", ["info", "tree", "auth", "resolve"])
def test_hub_serves_huggingface_hubs_paths(hub, what):
    status, _, _ = call(hub + hub_paths()[what], SECRET)
    assert status == 200


def test_hub_auth_check_says_gated_without_a_token(hub):
    # utils/_http.py: X-Error-Code GatedRepo -> GatedRepoError (what auth_check raises).
    assert 'error_code == "GatedRepo"' in up.source(up.HUB, "huggingface_hub/utils/_http.py")
    status, headers, _ = call(hub + hub_paths()["auth"])
    assert (status, headers.get("X-Error-Code")) == (401, "GatedRepo")


def test_hub_serves_gated_metadata_to_anyone_but_not_files(hub):
    # hf_api.py list_models(gated=...) lists gated repos to anyone; file_download.py: a gated
    # repo's download fails without a token.
    assert "A boolean to filter models on the Hub that are gated or not" in up.source(
        up.HUB, "huggingface_hub/hf_api.py")
    assert "- Repository is gated and invalid/missing token sent" in up.source(
        up.HUB, "huggingface_hub/file_download.py")
    assert [call(hub + hub_paths()[w])[0] for w in ("info", "tree", "resolve")] == [200, 200, 401]
    # A wrong token is refused on every path of a gated repo (utils/_http.py tells it from a gated 401).
    assert 'error_message != "Invalid credentials in Authorization header"' in up.source(
        up.HUB, "huggingface_hub/utils/_http.py")
    assert [call(hub + hub_paths()[w], "wrong")[0] for w in ("info", "tree", "auth", "resolve")] == [401] * 4


def test_hub_paginates_the_tree_with_link_next(tmp_path):
    pagination = up.source(up.HUB, "huggingface_hub/utils/_pagination.py")
    assert 'return response.links.get("next", {}).get("url")' in pagination
    # --tree-page-size: the option a paginating sim hub is expected to offer (docs/upstream.md).
    proc, url = start_hub(tmp_path, "--tree-page-size", "2")
    try:
        status, headers, body = call(url + hub_paths()["tree"] + "?recursive=true", SECRET)
        assert (status, len(json.loads(body)), 'rel="next"' in headers.get("Link", "")) == (200, 2, True)
        # "Next link already contains query params" (_pagination.py): recursive=true is kept.
        pages, link = [json.loads(body)], headers.get("Link")
        while link:
            next_url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1)
            assert "recursive=true" in next_url, next_url
            status, headers, body = call(next_url, SECRET)
            assert status == 200
            pages.append(json.loads(body))
            link = headers.get("Link")
        manifest = json.loads(call(url + "/_sim/manifest")[2])["repos"][REPO_ID]
    finally:
        proc.kill()
        proc.wait(5)
    assert len(pages) >= 2 and all(len(page) == 2 for page in pages[:-1])
    files = manifest["commits"][manifest["branches"]["main"]]
    assert sorted(e["path"] for page in pages for e in page) == sorted(files)


# ----------------------------------------------------------------------------- draining (docs/upstream.md, "Draining")
def handlers_reading(package, name):
    """The top-level functions of http_server.py whose code reads `name`."""
    module = up.tree(package, "sglang/srt/entrypoints/http_server.py")
    return sorted(node.name for node in module.body
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and name in ast.unparse(node))


@pytest.mark.parametrize("package", [up.SGLANG_OLD, up.SGLANG_NEW])
def test_upstream_turns_only_health_away_while_draining(package):
    # SIGTERM sets the flag; the watchdog drains the exact request table (rid_to_state) and has no deadline.
    manager = up.source(package, "sglang/srt/managers/tokenizer_manager.py")
    assert "self.tokenizer_manager.gracefully_exit = True" in manager
    watchdog = manager[manager.index("async def sigterm_watchdog"):]
    assert "remain_num_req = len(self.rid_to_state)" in watchdog.split("async def ", 2)[1]
    assert handlers_reading(package, "gracefully_exit") == ["health_generate"]  # /health and /health_generate


def test_sim_serves_new_generations_while_it_drains_like_upstream(spawn):
    s = spawn(["--model-path", "org/m"], env={"SGLANG_SIM_STARTUP_DELAY": "0.3", "SGLANG_SIM_TOKENS_PER_SEC": "20"})
    s.wait_healthy()
    body = {"model": "m", "messages": [{"role": "user", "content": "long"}], "max_tokens": 30, "ignore_eos": True}
    slow = threading.Thread(target=s.post, args=("/v1/chat/completions",), kwargs={"json": body})
    slow.start()
    time.sleep(0.5)  # the slow request is in flight
    s.signal(signal.SIGTERM)
    time.sleep(0.2)
    try:
        assert s.get("/health").status_code == 503
        assert s.post("/v1/chat/completions", json=dict(body, max_tokens=2)).status_code == 200
    finally:
        slow.join(20)


# ----------------------------------------------------------------------------- entrypoints (docs/upstream.md, "SGLang server")
PROJECT = Path(__file__).resolve().parents[1]


def test_the_launcher_runs_launch_server_as_main_in_both_versions():
    launcher = (PROJECT / "roles" / "sglang_server" / "files" / "sglang-launch.py").read_text()
    assert "runpy.run_module('sglang.launch_server', run_name='__main__'" in launcher
    for package in (up.SGLANG_OLD, up.SGLANG_NEW):
        assert 'if __name__ == "__main__":' in up.source(package, "sglang/launch_server.py"), package
    assert "'python -m sglang.launch_server' is still supported" in up.source(up.SGLANG_NEW, "sglang/launch_server.py")
    # /get_model_info, deprecated in 0.5.23, is asked by no role or module.
    assert "Endpoint '/get_model_info' is deprecated" in up.source(up.SGLANG_NEW, "sglang/srt/entrypoints/http_server.py")
    assert not [p for d in ("roles", "library", "plugins") for p in (PROJECT / d).rglob("*")
                if p.is_file() and "get_model_info" in p.read_text(errors="replace")]


# ----------------------------------------------------------------------------- multi-node (docs/upstream.md, "Multi-node")
ENGINE = "sglang/srt/entrypoints/engine.py"
MN_ENV = {"SGLANG_SIM_STARTUP_DELAY": "0.3", "SGLANG_SIM_DIST_BIND_HOST": "127.0.0.1"}


def mn_args(dist_port, rank, *extra):
    return ["--model-path", "org/m", "--served-model-name", "m", "--tp-size", "2", "--nnodes", "2",
            "--node-rank", str(rank), "--dist-init-addr", f"127.0.0.1:{dist_port}", *extra]


def logged(server, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline and server.poll() is None, server.log()
        time.sleep(0.05)


def refused_for(server, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert server.poll() is None and refused(server.port), server.log()
        time.sleep(0.1)


def test_upstream_head_serves_http_only_once_every_scheduler_is_ready():
    """launch_server runs uvicorn after _launch_subprocesses, which returns after every scheduler
    sent "ready"; a scheduler sends it once built, i.e. after its torch.distributed init over
    --dist-init-addr with every rank (and its weights and CUDA graphs)."""
    launch = ast.unparse(up.function(up.tree(up.SGLANG_OLD, "sglang/srt/entrypoints/http_server.py"), "launch_server"))
    assert 0 <= launch.index("_launch_subprocesses(") < launch.index("uvicorn.run(")
    subprocesses = ast.unparse(up.function(up.tree(up.SGLANG_OLD, ENGINE), "_launch_subprocesses"))
    assert (subprocesses.index("data = scheduler_pipe_readers[i].recv()")
            < subprocesses.index("return (tokenizer_manager, template_manager, scheduler_info)"))
    scheduler = ast.unparse(up.function(up.tree(up.SGLANG_OLD, "sglang/srt/managers/scheduler.py"),
                                        "run_scheduler_process"))
    assert scheduler.index("scheduler = Scheduler(") < scheduler.index("'status': 'ready'")
    runner = up.source(up.SGLANG_OLD, "sglang/srt/model_executor/model_runner.py")
    assert "min_per_gpu_memory = self.init_torch_distributed()" in runner
    assert 'dist_init_method = f"tcp://{self.server_args.dist_init_addr}"' in runner
    assert "world_size=self.tp_size * self.pp_size" in runner


def test_upstream_rank_above_0_serves_a_dummy_health_server_once_ready():
    engine = up.function(up.tree(up.SGLANG_OLD, ENGINE), "_launch_subprocesses")
    branch = next(n for n in ast.walk(engine)
                  if isinstance(n, ast.If) and ast.unparse(n.test) == "server_args.node_rank >= 1")
    body = ast.unparse(branch.body)
    assert (0 <= body.index("data = reader.recv()")
            < body.index("launch_dummy_health_check_server(server_args.host, server_args.port, "
                         "server_args.enable_metrics)"))
    common = up.tree(up.SGLANG_OLD, "sglang/srt/utils/common.py")
    dummy = up.function(common, "launch_dummy_health_check_server")
    real = up.fastapi_routes(dummy)
    assert real == {"/health": {"GET"}, "/health_generate": {"GET"}}
    text = ast.unparse(dummy)
    assert text.count("return Response(status_code=200)") == 2
    assert "if enable_metrics:\n        add_prometheus_middleware(app)" in text
    assert "api_key" not in text  # no key middleware: /health and /metrics answer anyone
    assert "'^/metrics(?P<path>.*)$'" in ast.unparse(up.function(common, "add_prometheus_middleware"))
    sim = sim_eval("import json, sglang._sim_server as s\n"
                   "print(json.dumps({p: m.split() for p, (m, _) in s.DummyHealthHandler.ROUTES.items()}))")
    assert {p: set(m) for p, m in sim.items()} == real


def test_sim_head_refuses_connections_until_the_worker_joins(spawn):
    http_port, dist_port = free_ports(2)
    head = spawn(mn_args(dist_port, 0), env=MN_ENV, name="mn-head", port=http_port)
    logged(head, "until node rank(s) 1 join")
    refused_for(head, 1.0)  # well past the 0.3 s startup delay
    spawn(mn_args(dist_port, 1), env=MN_ENV, name="mn-worker")
    head.wait_healthy(15)
    r = head.post("/v1/chat/completions", json={"model": "m", "max_tokens": 2,
                                                 "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200


def test_sim_worker_serves_the_dummy_health_server_once_joined(spawn):
    http_port, dist_port = free_ports(2)
    worker = spawn(mn_args(dist_port, 1, "--enable-metrics", "--api-key", SECRET), env=MN_ENV, name="mn-worker")
    logged(worker, "Joining the head at")
    refused_for(worker, 0.5)  # not joined: no HTTP
    spawn(mn_args(dist_port, 0), env=MN_ENV, name="mn-head", port=http_port).wait_healthy(15)
    worker.wait_healthy(10)
    assert "Starting dummy health check server at 127.0.0.1:" in worker.log()
    # No API key needed (the dummy server has no key middleware), as upstream.
    assert (worker.get("/health").status_code, worker.get("/health").content) == (200, b"")
    assert worker.get("/health_generate").status_code == 200
    assert worker.get("/metrics").status_code == 200
    for path in ("/v1/models", "/get_server_info", "/get_model_info", "/generate"):
        r = worker.get(path, headers={"Authorization": f"Bearer {SECRET}"})
        assert (r.status_code, r.json()) == (404, {"detail": "Not Found"}), path
    assert worker.post("/health").status_code == 405
