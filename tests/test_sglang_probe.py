"""Tests for library/sglang_probe.py, the read-only end-to-end check of one SGLang server.

The module is run for real, the way Ansible runs it: `python library/sglang_probe.py args.json`
with `{"ANSIBLE_MODULE_ARGS": {...}}`, against the SIMULATED SGLang server (sim/sglang_sim,
loopback only). A few malformed replies that the sim never sends come from a tiny stub server
in this process.
"""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sglang_sim_helpers import free_port, module_server, run_ansible_module, spawn  # noqa: E402,F401  (spawn: fixture)

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "library" / "sglang_probe.py"
ANSIBLE_DOC = Path(sys.executable).parent / "ansible-doc"
SECRET = "probe-s3cret-Key-4711"
MODEL = "qwen3-8b-sim"
FAST = {"SGLANG_SIM_STARTUP_DELAY": "0.3"}
MASK = "********"  # what Ansible prints in place of a no_log value that the module tried to return


def run_probe(tmp_path, check_mode=False, **params):
    """Run the module; returns (result dict, raw stdout + stderr)."""
    result, out = run_ansible_module(MODULE, dict({"model": MODEL, "timeout": 20}, **params), tmp_path, check_mode)
    assert result["changed"] is False, result
    return result, out


def assert_no_secret(output):
    assert SECRET not in output
    assert SECRET.lower() not in output.lower()
    # Ansible masks no_log values in results: a mask means the module tried to return the key.
    assert MASK not in output


def endpoints(result):
    return [(c["endpoint"], c["status"], c["ok"]) for c in result["checks"]]


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A healthy sim with an API key, metrics and a served model name."""
    p = module_server(tmp_path_factory, ["--model-path", "sim-org/Qwen3-8B-sim", "--served-model-name", MODEL,
                                         "--api-key", SECRET, "--enable-metrics"], FAST, "secured")
    yield p
    p.kill()


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A healthy sim without an API key or metrics (--served-model-name only)."""
    p = module_server(tmp_path_factory, ["--model-path", "sim-org/Qwen3-8B-sim", "--served-model-name", MODEL],
                      FAST, "plain")
    yield p
    p.kill()


# --------------------------------------------------------------------------- docs

def test_documentation_renders_with_ansible_doc():
    proc = subprocess.run([str(ANSIBLE_DOC), "-M", "library", "sglang_probe"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "sglang_probe" in proc.stdout and "/v1/chat/completions" in proc.stdout
    proc = subprocess.run([str(ANSIBLE_DOC), "-M", "library", "--json", "sglang_probe"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["sglang_probe"]
    options = doc["doc"]["options"]
    assert set(options) == {"url", "name", "model", "api_key", "prompt", "max_tokens", "temperature",
                            "stream", "metrics", "timeout"}
    assert options["stream"]["default"] is True and options["metrics"]["default"] is False
    assert options["timeout"]["default"] == 120 and options["max_tokens"]["default"] == 100
    assert {"changed", "checks", "model", "chat", "stream", "metrics_lines", "summary"} <= set(doc["return"])
    assert yaml.safe_load(doc["examples"])


# --------------------------------------------------------------------------- success

def test_success_with_key_stream_and_metrics(tmp_path, secured):
    r, out = run_probe(tmp_path, url=secured.url, name="spark1", api_key=SECRET, metrics=True, max_tokens=8)
    assert not r.get("failed"), r
    assert endpoints(r) == [
        ("GET /health", 200, True), ("GET /v1/models", 200, True), ("POST /v1/chat/completions (no key)", 401, True),
        ("POST /v1/chat/completions (wrong key)", 401, True), ("POST /v1/chat/completions", 200, True),
        ("POST /v1/chat/completions (stream)", 200, True), ("GET /metrics", 200, True)]
    assert r["model"] == MODEL
    chat = r["chat"]
    # The sim's replies are at least 16 words: max_tokens=8 always stops on the length limit.
    assert chat["finish_reason"] == "length" and chat["completion_tokens"] == 8
    assert chat["content_field"] == "content" and 0 < len(chat["content_preview"]) <= 80
    assert 0 < chat["ttfb_ms"] <= chat["total_ms"] < 20000
    stream = r["stream"]
    assert 0 < stream["ttft_ms"] <= stream["total_ms"] < 20000
    assert stream["finish_reason"] == "length" and stream["chunks"] >= 8 + 1  # 8 tokens, then the finish
    assert isinstance(r["metrics_lines"], int) and r["metrics_lines"] > 5
    assert r["summary"] == (
        "spark1: health ok, model %s listed, 401 without key, chat %.0f ms (ttfb %.0f ms, finish=length), "
        "stream ttft %.0f ms / %.0f ms, metrics %d lines"
        % (MODEL, chat["total_ms"], chat["ttfb_ms"], stream["ttft_ms"], stream["total_ms"], r["metrics_lines"]))
    assert_no_secret(out)


def test_check_mode_runs_the_same_probe(tmp_path, secured):
    r, out = run_probe(tmp_path, check_mode=True, url=secured.url, api_key=SECRET, metrics=True, max_tokens=8)
    assert not r.get("failed"), r
    normal, _ = run_probe(tmp_path, url=secured.url, api_key=SECRET, metrics=True, max_tokens=8)
    assert endpoints(r) == endpoints(normal) and len(r["checks"]) == 7
    timing = ("ttfb_ms", "total_ms", "ttft_ms")
    assert {k: v for k, v in r["chat"].items() if k not in timing} == \
        {k: v for k, v in normal["chat"].items() if k not in timing}
    assert r["stream"]["chunks"] == normal["stream"]["chunks"] and r["stream"]["total_ms"] > 0
    assert r["summary"].startswith("main: health ok, model %s listed, 401 without key, chat " % MODEL)
    assert_no_secret(out)


def test_no_key_no_stream_no_metrics(tmp_path, plain):
    r, _ = run_probe(tmp_path, url=plain.url + "/", stream=False, prompt="Say something short", max_tokens=500)
    assert not r.get("failed"), r
    assert endpoints(r) == [("GET /health", 200, True), ("GET /v1/models", 200, True),
                            ("POST /v1/chat/completions", 200, True)]
    assert r["stream"] is None and r["metrics_lines"] is None
    assert r["chat"]["finish_reason"] == "stop" and 16 <= r["chat"]["completion_tokens"] <= 64
    assert r["summary"].startswith("main: health ok, model %s listed, chat " % MODEL)
    assert "401" not in r["summary"] and "stream" not in r["summary"] and "metrics" not in r["summary"]


def test_slow_server_shows_larger_latency(tmp_path, spawn, plain):
    slow = spawn(["--model-path", "sim-org/Qwen3-8B-sim", "--served-model-name", MODEL],
                 dict(FAST, SGLANG_SIM_TOKENS_PER_SEC="20"))
    slow.wait_healthy(15)
    tokens, rate = 10, 20.0
    r_slow, _ = run_probe(tmp_path, url=slow.url, max_tokens=tokens)
    r_fast, _ = run_probe(tmp_path, url=plain.url, max_tokens=tokens)
    assert not r_slow.get("failed") and not r_fast.get("failed"), (r_slow, r_fast)
    bound = tokens / rate * 1000 * 0.5  # the sim needs (tokens - 1) / rate s; loose
    assert r_slow["chat"]["total_ms"] >= bound and r_slow["stream"]["total_ms"] >= bound
    assert r_slow["chat"]["total_ms"] > r_fast["chat"]["total_ms"]
    assert r_slow["stream"]["total_ms"] > r_fast["stream"]["total_ms"]
    # Streaming: the first token comes after the (fast) prefill, long before the end.
    assert r_slow["stream"]["ttft_ms"] < r_slow["stream"]["total_ms"] / 2
    # 60 tokens at 20/s take about 3 s: more than the 1 s timeout.
    r, _ = run_probe(tmp_path, url=slow.url, max_tokens=60, timeout=1, name="slow")
    assert r["failed"] is True
    assert r["msg"] == "instance slow: POST /v1/chat/completions: timed out after 1 s (%s)" % slow.url
    assert endpoints(r)[-1] == ("POST /v1/chat/completions", None, False)


# --------------------------------------------------------------------------- failures

def test_model_not_listed(tmp_path, secured):
    r, out = run_probe(tmp_path, url=secured.url, name="edge", api_key=SECRET, model="other-model")
    assert r["failed"] is True
    assert r["msg"] == "instance edge: GET /v1/models: model 'other-model' not listed (got: ['%s'])" % MODEL
    assert endpoints(r) == [("GET /health", 200, True), ("GET /v1/models", 200, False)]
    assert r["chat"] is None
    assert_no_secret(out)


def test_server_down_connection_refused(tmp_path):
    url = "http://127.0.0.1:%d" % free_port()
    r, _ = run_probe(tmp_path, url=url, name="down")
    assert r["failed"] is True
    assert r["msg"] == "instance down: GET /health: connection refused (%s)" % url
    assert endpoints(r) == [("GET /health", None, False)]


def test_wrong_base_path_names_the_full_path(tmp_path, plain):
    r, _ = run_probe(tmp_path, url=plain.url + "/v1")
    assert r["failed"] is True
    assert r["msg"].startswith("instance main: GET /v1/health: HTTP 404: "), r["msg"]
    assert "Not Found" in r["msg"]


def test_unhealthy_server_fails_at_health(tmp_path, spawn):
    server = spawn(["--model-path", "sim-org/Qwen3-8B-sim"], {"SGLANG_SIM_STARTUP_DELAY": "600"})
    assert server.wait_listening(10) == 503
    r, _ = run_probe(tmp_path, url=server.url, name="cold", model="sim-org/Qwen3-8B-sim")
    assert r["failed"] is True
    assert r["msg"] == "instance cold: GET /health: HTTP 503"
    assert endpoints(r) == [("GET /health", 503, False)]


def test_open_server_while_a_key_is_expected(tmp_path, plain):
    # The server accepts every request, with or without the key: the key protects nothing.
    r, out = run_probe(tmp_path, url=plain.url, api_key=SECRET)
    assert r["failed"] is True
    assert r["msg"] == ("instance main: POST /v1/chat/completions (no key): answers without the API key "
                        "(HTTP 200, expected 401)")
    assert endpoints(r) == [("GET /health", 200, True), ("GET /v1/models", 200, True),
                            ("POST /v1/chat/completions (no key)", 200, False)]
    assert_no_secret(out)


@pytest.mark.parametrize("key", ["", "not-" + SECRET])
def test_missing_or_wrong_key_is_refused(tmp_path, secured, key):
    r, out = run_probe(tmp_path, url=secured.url, api_key=key)
    assert r["failed"] is True
    assert r["msg"].startswith("instance main: GET /v1/models: HTTP 401: "), r["msg"]
    assert "Unauthorized" in r["msg"]
    assert r["msg"].endswith(" (the API key was refused)" if key else " (the server needs an API key)")
    assert endpoints(r) == [("GET /health", 200, True), ("GET /v1/models", 401, False)]
    assert key == "" or key not in out
    assert_no_secret(out)


def test_metrics_requested_but_not_enabled(tmp_path, plain):
    r, _ = run_probe(tmp_path, url=plain.url, metrics=True, max_tokens=4)
    assert r["failed"] is True
    assert r["msg"].startswith("instance main: GET /metrics: HTTP 404: "), r["msg"]
    assert endpoints(r)[-1] == ("GET /metrics", 404, False) and len(r["checks"]) == 5


# --------------------------------------------------------------------------- replies the sim never sends

class Stub(BaseHTTPRequestHandler):
    """/health and /v1/models are fine; the chat replies come from the server's `replies`."""

    def log_message(self, *args):
        pass

    def _send(self, status, body, ctype="application/json"):
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self._send(200, b"")
        else:
            self._send(200, {"object": "list", "data": [{"id": MODEL}]})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body, ctype = self.server.replies.pop(0)
        self._send(status, body, ctype)


def message(content, reasoning=None, finish="stop"):
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content,
                                                 "reasoning_content": reasoning}, "finish_reason": finish}]}


def sse(*events, done=True):
    lines = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
    return b"".join(lines) + (b"data: [DONE]\n\n" if done else b"")


def delta(content=None, reasoning=None, finish=None):
    d = {}
    if content is not None:
        d["content"] = content
    if reasoning is not None:
        d["reasoning_content"] = reasoning
    return {"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    server.replies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_reasoning_only_reply_passes(tmp_path, stub):
    stub.replies = [(200, message("", "Let me think about AI."), "application/json"),
                    (200, sse(delta(reasoning="Let me"), delta(reasoning=" think"), delta(finish="stop")),
                     "text/event-stream")]
    r, _ = run_probe(tmp_path, url="http://127.0.0.1:%d" % stub.server_port)
    assert not r.get("failed"), r
    assert r["chat"]["content_field"] == "reasoning_content"
    assert r["chat"]["content_preview"] == "Let me think about AI." and r["chat"]["completion_tokens"] is None
    assert r["stream"]["chunks"] == 3 and r["stream"]["finish_reason"] == "stop"


OK_CHAT = (200, message("hello"), "application/json")


@pytest.mark.parametrize("replies, needle", [
    ([(500, {"error": "x" * 1000}, "application/json")], 'POST /v1/chat/completions: HTTP 500: {"error": "xxx'),
    ([(200, message("", None), "application/json")], "POST /v1/chat/completions: empty reply"),
    ([(200, message("hi", finish=None), "application/json")],
     "POST /v1/chat/completions: finish_reason is null"),
    ([(200, b"<html>", "text/html")], "POST /v1/chat/completions: invalid JSON: <html>"),
    ([OK_CHAT, (200, sse(delta("a"), delta(finish="stop"), done=False), "text/event-stream")],
     "POST /v1/chat/completions (stream): the stream ended without data: [DONE] after 2 chunk(s)"),
    ([OK_CHAT, (200, sse(delta("a"), delta("b")), "text/event-stream")],
     "POST /v1/chat/completions (stream): no finish_reason in 2 chunk(s)"),
    ([OK_CHAT, (200, sse(delta(""), delta(finish="stop")), "text/event-stream")],
     "POST /v1/chat/completions (stream): no content in 2 chunk(s)"),
    ([OK_CHAT, (503, b"", "text/plain")], "POST /v1/chat/completions (stream): HTTP 503"),
], ids=["http500", "empty", "no-finish", "not-json", "no-done", "stream-no-finish", "stream-empty",
        "stream-503"])
def test_bad_chat_replies_fail(tmp_path, stub, replies, needle):
    stub.replies = list(replies)
    r, _ = run_probe(tmp_path, url="http://127.0.0.1:%d" % stub.server_port, name="stub")
    assert r["failed"] is True
    assert r["msg"].startswith("instance stub: " + needle), r["msg"]
    assert r["checks"][-1]["ok"] is False and all(c["ok"] for c in r["checks"][:-1])
    if replies[0][0] == 500:
        assert len(r["msg"]) < 400  # the body is cut to 300 characters
