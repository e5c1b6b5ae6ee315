"""Contract tests for the simulated SGLang server (sim/sglang_sim, `sglang.launch_server`).

What the project relies on (docs/upstream.md, "SGLang server"): SGLang's flag names and
argparse behaviour, /health as the only readiness signal, info endpoints answering
before readiness, OpenAI and native generation, Prometheus metrics, --api-key, and
the failure modes the roles must survive.
"""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sglang_sim_helpers import (  # noqa: E402
    SIM_PYTHON,
    metric_value,
    module_server,
    run_module,
    sim_env,
    spawn,  # noqa: F401  (fixture)
    sse_events,
)

OPERATOR_FLAGS = [
    "--model-path", "--tokenizer-path", "--revision", "--host", "--port", "--served-model-name",
    "--tp-size", "--dp-size", "--mem-fraction-static", "--quantization", "--enable-torch-compile",
    "--context-length", "--api-key", "--enable-metrics", "--chunked-prefill-size",
    "--max-running-requests", "--trust-remote-code", "--log-level", "--kv-cache-dtype",
    "--disable-cuda-graph", "--watchdog-timeout", "--nnodes", "--node-rank", "--dist-init-addr",
    "--enable-dp-attention", "--attention-backend", "--cuda-graph-max-bs", "--disable-radix-cache",
    "--schedule-policy", "--random-seed", "--dtype", "--load-format", "--download-dir",
    "--reasoning-parser", "--tool-call-parser", "--enable-cache-report", "--max-total-tokens",
    "--stream-interval", "--skip-server-warmup", "--torch-compile-max-bs",
]
FAST = {"SGLANG_SIM_STARTUP_DELAY": "0.3"}
SECRET = "s3cret-key-for-tests"


def chat(server, content="hello simulated world", max_tokens=None, headers=None, **extra):
    body = {"model": "sim-model", "messages": [{"role": "user", "content": content}], **extra}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return server.post("/v1/chat/completions", json=body, headers=headers or {})


# ----------------------------------------------------------------------------- CLI

def test_sim_needs_only_the_standard_library():
    # -S: no site-packages at all, as in the minimal bookworm image.
    r = subprocess.run([SIM_PYTHON, "-S", "-c",
                        "import sglang, sglang._sim_server, sglang.bench_serving; print(sglang.__version__)"],
                       env=sim_env(), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0.5.3.post3-sim"


def test_unknown_flag_exits_2():
    r = run_module("sglang.launch_server", ["--model-path", "org/m", "--no-such-flag"])
    assert r.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in r.stderr


def test_missing_required_model_path_exits_2():
    r = run_module("sglang.launch_server", ["--port", "1"])
    assert r.returncode == 2
    assert "--model-path" in r.stderr


def test_help_lists_operator_flags_and_says_simulated():
    r = run_module("sglang.launch_server", ["--help"])
    assert r.returncode == 0
    missing = [f for f in OPERATOR_FLAGS if f not in r.stdout]
    assert not missing, missing
    assert "SIMULATED" in r.stdout
    assert "modelopt_fp4" in r.stdout  # NVFP4 quantization choice


def test_invalid_quantization_choice_exits_2():
    r = run_module("sglang.launch_server", ["--model-path", "org/m", "--quantization", "nvfp4-typo"])
    assert r.returncode == 2
    assert "invalid choice" in r.stderr


def test_missing_absolute_model_path_exits_1(tmp_path):
    missing = tmp_path / "no-such-model"
    r = run_module("sglang.launch_server", ["--model-path", str(missing), "--port", "1"], timeout=20)
    assert r.returncode == 1
    assert "SIMULATED SGLang server (sglang-sim)" in r.stderr
    assert str(missing) in r.stderr and "does not exist" in r.stderr


def test_more_gpus_than_a_spark_has_exits_1():
    r = run_module("sglang.launch_server", ["--model-path", "org/m", "--tp-size", "2", "--port", "1"],
                   timeout=20)
    assert r.returncode == 1
    assert "Not enough GPUs" in r.stderr


# ----------------------------------------------------------------------------- startup and readiness

@pytest.mark.parametrize("upstream", ["0.5.3.post3", "0.5.23"])
def test_health_is_503_during_startup_then_200(spawn, tmp_path, upstream):
    """As the release the image follows: 0.5.23 also has /ready and /model_info (docs/upstream.md)."""
    new = upstream == "0.5.23"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(
        '{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "max_position_embeddings": 8192}')
    s = spawn(["--model-path", str(model_dir), "--served-model-name", "early-bird"],
              env={"SGLANG_SIM_STARTUP_DELAY": "1.5", "SGLANG_SIM_UPSTREAM": upstream})
    assert s.wait_listening() == 503
    # Info endpoints answer before readiness (so they must not be used for it).
    models = s.get("/v1/models")
    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == ["early-bird"]
    assert models.json()["data"][0]["max_model_len"] == 8192
    assert s.get("/model_info").status_code == (200 if new else 404)
    for path in ("/get_model_info", "/model_info")[:2 if new else 1]:
        info = s.get(path)
        assert info.status_code == 200
        assert info.json()["model_path"] == str(model_dir)
        assert info.json()["is_generation"] is True
        assert info.json()["architectures"] == ["LlamaForCausalLM"]
    assert s.get("/health").status_code == 503
    assert s.get("/health_generate").status_code == 503
    assert s.get("/ready").status_code == (503 if new else 404)
    assert chat(s, max_tokens=2).status_code == 503
    took = s.wait_healthy(15)
    assert took >= 1.3
    assert s.get("/health_generate").status_code == 200
    assert s.get("/ready").status_code == (200 if new else 404)
    log = s.log()
    assert "SIMULATED SGLang server (sglang-sim) \u2014 no GPU" in log
    assert "[sglang-sim] The server is fired up and ready to roll!" in log
    assert f"http://127.0.0.1:{s.port}" in log
    # No --enable-metrics: /metrics does not exist.
    assert s.get("/metrics").status_code == 404


def test_torch_compile_adds_startup_time(spawn):
    s = spawn(["--model-path", "org/m", "--enable-torch-compile"],
              env={"SGLANG_SIM_STARTUP_DELAY": "0.2", "SGLANG_SIM_COMPILE_DELAY": "1.2"})
    assert s.wait_listening() == 503
    assert s.wait_healthy(15) >= 1.3
    assert "torch.compile" in s.log()


# ----------------------------------------------------------------------------- a running server

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = module_server(tmp_path_factory,
                      ["--model-path", "org/sim-model-7b", "--served-model-name", "sim-model",
                       "--mem-fraction-static", "0.8", "--tp-size", "1", "--quantization", "modelopt_fp4",
                       "--context-length", "4096", "--enable-metrics"],
                      FAST, "server")
    yield s
    s.kill()


def test_models_lists_served_model_name(server):
    r = server.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["sim-model"]


def test_server_info_echoes_parsed_args(server):
    assert server.get("/server_info").status_code == 404  # 0.5.23's name (below)
    for path in ("/get_server_info",):
        info = server.get(path).json()
        assert info["mem_fraction_static"] == 0.8
        assert info["tp_size"] == 1
        assert info["dp_size"] == 1
        assert info["quantization"] == "modelopt_fp4"
        assert info["served_model_name"] == "sim-model"
        assert info["model_path"] == "org/sim-model-7b"
        assert info["context_length"] == 4096
        assert info["enable_metrics"] is True
        assert info["version"].endswith("-sim")
        assert info["simulated"] is True
        assert info["api_key"] is None
        assert isinstance(info["internal_states"], list)


def test_chat_completion_non_streaming(server):
    r = chat(server, max_tokens=5)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert content.startswith("simulated")
    assert len(content.split()) == 5
    assert choice["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8,
                             "prompt_tokens_details": None}
    # Without hitting max_tokens the simulated model stops by itself.
    r = chat(server, max_tokens=500)
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert 16 <= r.json()["usage"]["completion_tokens"] <= 64
    assert len(choice["message"]["content"].split()) == r.json()["usage"]["completion_tokens"]
    # Same prompt, same answer (deterministic).
    assert chat(server, max_tokens=5).json()["choices"][0]["message"]["content"] == content


def test_chat_completion_streaming(server):
    body = {"messages": [{"role": "user", "content": "stream please"}], "max_tokens": 6,
            "stream": True, "stream_options": {"include_usage": True}}
    with requests.post(server.url + "/v1/chat/completions", json=body, stream=True, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert len(text.split()) == 6
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "length" and all(f is None for f in finishes[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 6


def test_completions(server):
    r = server.post("/v1/completions", json={"prompt": "once upon a time", "max_tokens": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "text_completion"
    assert len(body["choices"][0]["text"].split()) == 4
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["prompt_tokens"] == 4
    # OpenAI/SGLang default max_tokens for completions is 16
    r = server.post("/v1/completions", json={"prompt": "a b c", "ignore_eos": True})
    assert r.json()["usage"]["completion_tokens"] == 16
    with requests.post(server.url + "/v1/completions", stream=True, timeout=30,
                       json={"prompt": "once upon a time", "max_tokens": 4, "stream": True}) as r:
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == body["choices"][0]["text"]
    assert events[-2]["choices"][0]["finish_reason"] == "length"


def test_generate_native(server):
    r = server.post("/generate", json={"text": "the quick brown fox",
                                       "sampling_params": {"max_new_tokens": 7, "temperature": 0}})
    assert r.status_code == 200
    body = r.json()
    assert len(body["text"].split()) == 7
    meta = body["meta_info"]
    assert meta["prompt_tokens"] == 4 and meta["completion_tokens"] == 7
    assert meta["finish_reason"]["type"] == "length"
    assert meta["id"]
    with requests.post(server.url + "/generate", stream=True, timeout=30,
                       json={"text": "the quick brown fox", "stream": True,
                             "sampling_params": {"max_new_tokens": 7}}) as r:
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    outs = events[:-1]
    # SGLang streams cumulative text with a growing completion_tokens count.
    assert [o["meta_info"]["completion_tokens"] for o in outs] == list(range(1, 8))
    assert outs[-1]["text"] == body["text"]
    assert all(outs[i + 1]["text"].startswith(outs[i]["text"]) for i in range(len(outs) - 1))
    assert outs[-1]["meta_info"]["finish_reason"]["type"] == "length"
    assert all(o["meta_info"]["finish_reason"] is None for o in outs[:-1])


def test_generate_ignore_eos_gives_exactly_max_tokens(server):
    r = server.post("/generate", json={"text": "x", "sampling_params": {"max_new_tokens": 90,
                                                                          "ignore_eos": True}})
    assert r.json()["meta_info"]["completion_tokens"] == 90
    r = server.post("/generate", json={"text": "x", "sampling_params": {"max_new_tokens": 90}})
    assert r.json()["meta_info"]["completion_tokens"] < 90
    assert r.json()["meta_info"]["finish_reason"]["type"] == "stop"


def test_decode_rate_bounds_latency(server):
    # 40 tokens at the default 200 tok/s: the first comes after prefill, 39 steps of 5 ms follow.
    t0 = time.monotonic()
    r = server.post("/generate", json={"text": "timing", "sampling_params": {"max_new_tokens": 40,
                                                                               "ignore_eos": True}})
    elapsed = time.monotonic() - t0
    assert r.json()["meta_info"]["completion_tokens"] == 40
    assert elapsed >= 39 / 200 * 0.95


def test_metrics_count_served_requests(server):
    before = server.get("/metrics")
    assert before.status_code == 200
    assert before.headers["Content-Type"].startswith("text/plain")
    b = before.text
    r = chat(server, content="one two three four", max_tokens=7)
    assert r.status_code == 200
    a = server.get("/metrics").text
    assert metric_value(a, "sglang:num_requests_total") == metric_value(b, "sglang:num_requests_total") + 1
    assert metric_value(a, "sglang:prompt_tokens_total") == metric_value(b, "sglang:prompt_tokens_total") + 4
    assert (metric_value(a, "sglang:generation_tokens_total")
            == metric_value(b, "sglang:generation_tokens_total") + 7)
    for h in ("sglang:time_to_first_token_seconds", "sglang:e2e_request_latency_seconds"):
        assert metric_value(a, h + "_count") == metric_value(b, h + "_count") + 1
        assert f'{h}_bucket{{model_name="sim-model",le="+Inf"}}' in a
        assert f"# TYPE {h} histogram" in a
    for g in ("sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:gen_throughput",
              "sglang:token_usage"):
        metric_value(a, g)
    assert metric_value(a, "sglang:gen_throughput") > 0
    assert 'sglang:num_requests_total{model_name="sim-model"}' in a


def test_errors_unknown_path_bad_json_context_length(server):
    assert server.get("/no/such/path").status_code == 404
    assert server.get("/v1/chat/completions").status_code == 405
    r = server.post("/v1/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = chat(server, max_tokens=5000)  # --context-length 4096
    assert r.status_code == 400
    assert "maximum context length of 4096" in r.json()["message"]


# ----------------------------------------------------------------------------- api key

@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    s = module_server(tmp_path_factory,
                      ["--model-path", "org/m", "--served-model-name", "sim-model",
                       "--api-key", SECRET, "--enable-metrics"], FAST, "keyed")
    yield s
    s.kill()


def test_api_key_required_except_health_and_metrics(keyed):
    good = {"Authorization": f"Bearer {SECRET}"}
    bad = {"Authorization": "Bearer wrong"}
    for headers in ({}, bad):
        r = chat(keyed, max_tokens=2, headers=headers)
        assert r.status_code == 401
        assert r.json() == {"error": "Unauthorized"}
        assert keyed.get("/v1/models", headers=headers).status_code == 401
        assert keyed.get("/get_server_info", headers=headers).status_code == 401
        assert keyed.get("/ready", headers=headers).status_code == 401  # not exempt in 0.5.3.post3
    assert chat(keyed, max_tokens=2, headers=good).status_code == 200
    assert keyed.get("/v1/models", headers=good).status_code == 200
    for path in ("/health", "/health_generate", "/metrics"):
        assert keyed.get(path).status_code == 200, path


def test_api_key_shown_behind_the_key_and_logged_as_upstream(keyed):
    """As SGLang 0.5.3.post3 (docs/upstream.md): /get_server_info returns the key to whoever holds it,
    and the startup line logs it; sglang_server's launcher masks the log."""
    r = keyed.get("/get_server_info", headers={"Authorization": f"Bearer {SECRET}"})
    assert r.status_code == 200
    assert r.json()["api_key"] == SECRET
    assert f"api_key={SECRET!r}" in keyed.log()


def test_a_0_5_23_image_serves_its_own_routes_and_lets_ready_through_without_the_key(spawn):
    s = spawn(["--model-path", "org/m", "--served-model-name", "sim-model", "--api-key", SECRET],
              env={**FAST, "SGLANG_SIM_UPSTREAM": "0.5.23"})
    s.wait_healthy(15)
    good = {"Authorization": f"Bearer {SECRET}"}
    assert s.get("/ready").status_code == 200  # utils/auth.py of 0.5.23 lets /ready through
    for path in ("/server_info", "/get_server_info", "/model_info", "/get_model_info"):
        assert s.get(path).status_code == 401 and s.get(path, headers=good).status_code == 200, path
    assert s.get("/server_info", headers=good).json()["version"] == "0.5.23-sim"
    assert s.get("/get_load", headers=good).status_code == 404  # gone from 0.5.23's http_server


def test_an_unknown_upstream_release_is_refused():
    r = run_module("sglang.launch_server", ["--model-path", "org/m"], env={"SGLANG_SIM_UPSTREAM": "0.4"})
    assert r.returncode != 0 and "SGLANG_SIM_UPSTREAM='0.4' is none of 0.5.3.post3, 0.5.23" in r.stderr


# ----------------------------------------------------------------------------- failure modes

def test_crash_on_start_exits_1(spawn):
    s = spawn(["--model-path", "org/m"], env={"SGLANG_SIM_FAIL": "crash_on_start"})
    assert s.wait(15) == 1
    assert "crash_on_start" in s.log()


def test_never_healthy_stays_503(spawn):
    s = spawn(["--model-path", "org/m"], env={"SGLANG_SIM_FAIL": "never_healthy",
                                              "SGLANG_SIM_STARTUP_DELAY": "0.2"})
    s.wait_listening()
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        assert s.get("/health").status_code == 503
        time.sleep(0.1)
    assert s.get("/v1/models").status_code == 200
    assert chat(s, max_tokens=2).status_code == 503
    assert s.poll() is None
    assert "never_healthy" in s.log()


def test_die_after_n_generations(spawn):
    s = spawn(["--model-path", "org/m"], env={**FAST, "SGLANG_SIM_DIE_AFTER": "2"})
    s.wait_healthy()
    assert chat(s, max_tokens=2).status_code == 200
    assert s.poll() is None
    assert s.post("/generate", json={"text": "x", "sampling_params": {"max_new_tokens": 2}}).status_code == 200
    assert s.wait(10) == 1
    with pytest.raises(requests.ConnectionError):
        chat(s, max_tokens=2)


def test_sigterm_drains_in_flight_then_exits_0(spawn):
    s = spawn(["--model-path", "org/m"], env={**FAST, "SGLANG_SIM_TOKENS_PER_SEC": "20"})
    s.wait_healthy()
    result = {}
    first_chunk = threading.Event()

    def stream():
        body = {"messages": [{"role": "user", "content": "long answer"}], "max_tokens": 30,
                "ignore_eos": True, "stream": True}
        text, done = "", False
        with requests.post(s.url + "/v1/chat/completions", json=body, stream=True, timeout=30) as r:
            for raw in r.iter_lines():
                if not raw:
                    continue
                payload = raw.decode()[len("data: "):]
                first_chunk.set()
                if payload == "[DONE]":
                    done = True
                else:
                    ch = json.loads(payload)["choices"]
                    text += (ch[0]["delta"].get("content") or "") if ch else ""
        result.update(text=text, done=done)

    t = threading.Thread(target=stream)
    t.start()
    assert first_chunk.wait(10)
    s.signal(signal.SIGTERM)
    time.sleep(0.2)
    assert s.get("/health").status_code == 503  # draining: not ready any more
    assert chat(s, max_tokens=2).status_code == 200  # served while draining, as upstream (docs/upstream.md, Draining)
    t.join(20)
    assert result.get("done") is True
    assert len(result["text"].split()) == 30  # the in-flight request finished
    assert s.wait(15) == 0
    assert "SIGTERM" in s.log()


def test_requests_queue_beyond_max_batch(spawn):
    s = spawn(["--model-path", "org/m", "--enable-metrics"],
              env={**FAST, "SGLANG_SIM_MAX_BATCH": "1", "SGLANG_SIM_TOKENS_PER_SEC": "100"})
    s.wait_healthy()
    lat = []
    seen_queue = []

    def one(i):
        t0 = time.monotonic()
        r = s.post("/generate", json={"text": f"req {i}", "sampling_params": {"max_new_tokens": 25,
                                                                              "ignore_eos": True}})
        assert r.status_code == 200
        lat.append(time.monotonic() - t0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    seen_queue.append(metric_value(s.get("/metrics").text, "sglang:num_queue_reqs"))
    for t in threads:
        t.join(15)
    assert len(lat) == 2
    # One slot: the second request waits for the first (2 x 24 steps of 10 ms).
    assert max(lat) >= 2 * 24 / 100 * 0.95
    assert seen_queue == [1.0]
