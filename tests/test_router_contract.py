"""Contract tests: the REAL sglang-router (PyPI sglang-router, 0.3.2 here) in front of sim servers.

The router runs with the test interpreter (the project venv, which has sglang_router);
the sim servers run with the image-like python3. What the project's router role relies
on is pinned here: worker discovery via /health, /server_info and /model_info (falling back to the get_ names), round-robin
routing, GET /workers, run-time add/remove (POST /workers, DELETE /workers/{id}), and
API-key forwarding (docs/upstream.md, "Router"; the role's flags: tests/test_upstream_contract.py).
"""

import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sglang_sim_helpers import (  # noqa: E402
    LOCALHOST,
    REPO,
    Proc,
    free_ports,
    metric_value,
    module_server,
    sim_env,
    spawn,  # noqa: F401  (fixture)
    sse_events,
)

WORKER_ENV = {"SGLANG_SIM_STARTUP_DELAY": "0.3"}
WORKER_ARGS = ["--model-path", "org/sim-model-7b", "--served-model-name", "sim-model", "--enable-metrics"]


class Router(Proc):
    def __init__(self, worker_urls, log_path, extra=(), launcher=("-m", "sglang_router.launch_router"), env=None):
        # Router and its Prometheus port from one call: two separate calls can return the same port.
        self.port, metrics_port = free_ports(2)
        self.url = f"http://{LOCALHOST}:{self.port}"
        cmd = [sys.executable, *launcher,
               "--worker-urls", *worker_urls,
               "--policy", "round_robin",
               "--host", LOCALHOST, "--port", str(self.port),
               "--prometheus-host", LOCALHOST, "--prometheus-port", str(metrics_port),
               "--health-check-interval-secs", "1",
               "--health-failure-threshold", "2",
               "--worker-startup-check-interval", "1",
               "--worker-startup-timeout-secs", "30",
               "--shutdown-grace-period-secs", "2",
               "--log-level", "info", *extra]
        super().__init__(cmd, sim_env(env), log_path)

    def workers(self, headers=None):
        r = requests.get(self.url + "/workers", headers=headers or {}, timeout=5)
        r.raise_for_status()
        return r.json()["workers"]

    def wait_workers(self, urls, timeout=30, headers=None):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.poll() is not None:
                raise AssertionError(f"router exited {self.poll()}:\n{self.log()[-4000:]}")
            try:
                last = self.workers(headers)
                if sorted(w["url"] for w in last if w["is_healthy"]) == sorted(urls):
                    return last
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"router workers never became {urls}: {last}\n{self.log()[-4000:]}")

    def chat(self, content, max_tokens=4, headers=None, **extra):
        body = {"model": "sim-model", "messages": [{"role": "user", "content": content}],
                "max_tokens": max_tokens, **extra}
        return requests.post(self.url + "/v1/chat/completions", json=body, headers=headers or {},
                             timeout=30, stream=bool(extra.get("stream")))


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    ws = []
    try:
        for i in range(2):
            ws.append(module_server(tmp_path_factory, WORKER_ARGS, WORKER_ENV, f"worker{i}"))
        yield ws
    finally:
        for w in ws:
            w.kill()


@pytest.fixture(scope="module")
def router(workers, tmp_path_factory):
    r = Router([w.url for w in workers], tmp_path_factory.mktemp("router") / "router.log")
    try:
        r.wait_workers([w.url for w in workers])
        yield r
    finally:
        r.kill()


def requests_served(worker):
    return metric_value(worker.get("/metrics").text, "sglang:num_requests_total")


def test_router_discovers_workers(router, workers):
    listed = router.workers()
    assert sorted(w["url"] for w in listed) == sorted(w.url for w in workers)
    for w in listed:
        assert w["is_healthy"] is True
        assert w["model_id"] == "sim-model"  # read from the worker's /get_server_info
        assert w["metadata"]["tp_size"] == "1"
    # A worker as 0.5.3.post3 (lmsysorg/sglang:spark) has only the get_ names: the router asks 0.5.23's
    # /server_info and /model_info first and falls back on their 404.
    for w in workers:
        log = w.log()
        assert '"GET /health HTTP/1.1" 200' in log
        for name in ("server_info", "model_info"):
            assert f'"GET /{name} HTTP/1.1" 404' in log and f'"GET /get_{name} HTTP/1.1" 200' in log, name
    assert requests.get(router.url + "/health", timeout=5).status_code == 200
    models = requests.get(router.url + "/v1/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == ["sim-model"]


def test_chat_through_router_round_robin(router, workers):
    before = [requests_served(w) for w in workers]
    for i in range(6):
        r = router.chat(f"question number {i}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["choices"][0]["message"]["content"].startswith("simulated")
        assert body["usage"]["completion_tokens"] == 4
    delta = [requests_served(w) - b for w, b in zip(workers, before)]
    assert sum(delta) == 6
    assert all(d >= 2 for d in delta), delta


def test_streaming_through_router(router):
    with router.chat("stream through the router", max_tokens=5, stream=True) as r:
        assert r.status_code == 200
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"])
    assert len(text.split()) == 5


def test_add_and_remove_worker_at_run_time(router, workers, spawn):
    base = [w.url for w in workers]
    third = spawn(WORKER_ARGS, env={"SGLANG_SIM_STARTUP_DELAY": "1.5"}, name="third")
    assert third.wait_listening() == 503  # still "loading weights"
    r = requests.post(router.url + "/workers", json={"url": third.url}, timeout=10)
    assert r.status_code == 202, r.text
    worker_id = r.json()["worker_id"]
    listed = router.wait_workers(base + [third.url])
    assert worker_id in [w["id"] for w in listed]
    # The router waited for the worker's /health before taking it in.
    assert '"GET /health HTTP/1.1" 503' in third.log()
    before = requests_served(third)
    for i in range(6):
        assert router.chat(f"spread {i}").status_code == 200
    assert requests_served(third) - before >= 1
    # Legacy endpoints are gone in 0.3.2.
    assert requests.post(router.url + f"/add_worker?url={third.url}", timeout=5).status_code == 404
    assert requests.post(router.url + f"/remove_worker?url={third.url}", timeout=5).status_code == 404
    # DELETE takes the worker id (a UUID), not the URL.
    assert requests.delete(router.url + "/workers/" + quote(third.url, safe=""), timeout=5).status_code == 400
    r = requests.delete(router.url + f"/workers/{worker_id}", timeout=10)
    assert r.status_code == 202, r.text
    router.wait_workers(base)
    assert third.url not in [w["url"] for w in router.workers()]


def test_router_marks_a_dead_worker_unhealthy(router, workers, spawn):
    base = [w.url for w in workers]
    extra = spawn(WORKER_ARGS, env=WORKER_ENV, name="doomed")
    extra.wait_healthy()
    r = requests.post(router.url + "/workers", json={"url": extra.url}, timeout=10)
    worker_id = r.json()["worker_id"]
    router.wait_workers(base + [extra.url])
    extra.kill()  # SIGTERM: drains, then exits 0
    # Requests keep succeeding (the router retries on another worker) ...
    for i in range(4):
        assert router.chat(f"after the crash {i}").status_code == 200
    # ... and the health checker marks the dead one unhealthy.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        state = {w["url"]: w["is_healthy"] for w in router.workers()}
        if state.get(extra.url) is False:
            break
        time.sleep(0.2)
    assert state.get(extra.url) is False, state
    assert requests.delete(router.url + f"/workers/{worker_id}", timeout=10).status_code == 202
    router.wait_workers(base)


def test_router_with_api_key_forwards_it_to_workers(spawn, tmp_path):
    key = "router-and-worker-key"
    w = spawn([*WORKER_ARGS, "--api-key", key], env=WORKER_ENV, name="keyed-worker")
    w.wait_healthy()
    r = Router([w.url], tmp_path / "keyed-router.log", extra=["--api-key", key])
    try:
        auth = {"Authorization": f"Bearer {key}"}
        listed = r.wait_workers([w.url], headers=auth)
        # With the key the router could read /get_server_info, so it knows the served name.
        assert listed[0]["model_id"] == "sim-model"
        assert requests.get(r.url + "/workers", timeout=5).status_code == 401
        assert r.chat("no key").status_code == 401
        ok = r.chat("with key", headers=auth)
        assert ok.status_code == 200, ok.text
        assert ok.json()["choices"][0]["message"]["content"].startswith("simulated")
        # The worker logs the key only in its startup line, as SGLang does (docs/upstream.md):
        # no request the router forwarded put it in the log.
        assert [line for line in w.log().splitlines() if key in line] == [
            line for line in w.log().splitlines() if "server_args=ServerArgs(" in line]
        # The real router (sglang-router 0.3.2) logs its settings at startup at --log-level info, as
        # the role runs it ("Starting router on ... | mode: ... | policy: ...", its src/server.rs:794),
        # without the key.
        assert "Starting router on" in r.log()
        assert key not in r.log()
    finally:
        r.kill()


def test_router_started_as_the_role_starts_it_keeps_the_key_off_its_command_line(spawn, tmp_path):
    """sglang_router's unit runs `python -c <sglang_router_launch_py>`: the key comes from the
    environment (the role's 0600 env file) and reaches the router's argv inside Python only."""
    import yaml

    launch_py = yaml.safe_load((REPO / "roles" / "sglang_router" / "vars" / "main.yml").read_text())["sglang_router_launch_py"]
    key = "key-from-the-env-file"
    w = spawn([*WORKER_ARGS, "--api-key", key], env=WORKER_ENV, name="env-keyed-worker")
    w.wait_healthy()
    r = Router([w.url], tmp_path / "env-keyed-router.log", launcher=("-c", launch_py), env={"SGLANG_ROUTER_API_KEY": key})
    try:
        auth = {"Authorization": f"Bearer {key}"}
        r.wait_workers([w.url], headers=auth)
        # The router itself has the key: its own API refuses a client without it.
        assert requests.get(r.url + "/workers", timeout=5).status_code == 401
        assert r.chat("no key").status_code == 401
        assert r.chat("with key", headers=auth).status_code == 200
        # The key reached the router (it answers 200 to the key, and the worker demands it), yet
        # it is not in what was executed, nor in the process's command line now.
        assert key not in " ".join(r.cmd)
        assert key not in Path(f"/proc/{r.popen.pid}/cmdline").read_bytes().decode(errors="replace")
    finally:
        r.kill()
