"""Tests for library/sglang_rollover.py, the one-task rolling restart of one SGLang instance.

The module is run for real, the way Ansible runs it (`python library/sglang_rollover.py args.json`),
against the REAL sglang-router (started as in test_router_contract.py) in front of SIMULATED SGLang
servers, loopback only. The "unit" being restarted is a helper script written into a temporary
directory: it stops the sim listening on the instance's port (SIGTERM, as systemd does) and starts a
new one on the same port in its own session. Every pid it starts is recorded in a file and killed by
process group at teardown.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sglang_sim_helpers import (  # noqa: E402
    LOCALHOST,
    SIM_PYTHON,
    SimServer,
    free_port,
    load_module,
    metric_value,
    run_ansible_module,
    sim_env,
)
from test_router_contract import WORKER_ARGS, WORKER_ENV, Router  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "library" / "sglang_rollover.py"
ANSIBLE_DOC = Path(sys.executable).parent / "ansible-doc"
FAST = dict(interval=0.1, request_timeout=5, ready_timeout=20, drain_timeout=20, drain_grace=0.3)
SECRET = "rollover-router-K3y-0815"

# The "unit": python3 restart_sim.py STATE_DIR NAME [KEY=VALUE ...] (extra sim environment).
RESTART_SCRIPT = r'''
import json, os, signal, subprocess, sys, time, urllib.request

state, name = sys.argv[1], sys.argv[2]
conf = json.load(open(os.path.join(state, name + ".json")))
env = dict(conf["env"])
env.update(kv.split("=", 1) for kv in sys.argv[3:])
pidfile = os.path.join(state, name + ".pid")


def event(what, **extra):
    with open(os.path.join(state, name + ".events"), "a") as f:
        f.write(json.dumps(dict(event=what, t=time.time(), **extra)) + "\n")


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


if os.path.exists(pidfile):
    old = int(open(pidfile).read())
    snap = {}
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % conf["port"], timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith("sglang:num_"):
                key, value = line.rsplit(" ", 1)
                snap[key.split("{")[0]] = float(value)
    except OSError as exc:
        snap["error"] = str(exc)
    event("kill", pid=old, metrics=snap)
    try:
        os.kill(old, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.time() + 40
    while not gone(old) and time.time() < deadline:
        time.sleep(0.05)
    if not gone(old):
        os.killpg(old, signal.SIGKILL)
log = open(os.path.join(state, name + ".log"), "ab")
proc = subprocess.Popen([conf["python"], "-m", "sglang.launch_server", "--host", "127.0.0.1",
                         "--port", str(conf["port"])] + conf["args"],
                        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True)
with open(os.path.join(state, "all.pids"), "a") as f:
    f.write("%d\n" % proc.pid)
with open(pidfile, "w") as f:
    f.write(str(proc.pid))
event("start", pid=proc.pid, fail=env.get("SGLANG_SIM_FAIL", ""))
'''


# --------------------------------------------------------------------------- helpers

def run_rollover(tmp_path, check_mode=False, **params):
    """Run the module; returns (result dict, raw stdout + stderr)."""
    return run_ansible_module(MODULE, dict(FAST, **params), tmp_path, check_mode, timeout=120)


class Instance:
    """A sim managed like a systemd unit: (re)started only through the restart script."""

    def __init__(self, state, name, env=None, args=WORKER_ARGS):
        self.state, self.name = Path(state), name
        self.port = free_port()
        self.url = "http://%s:%d" % (LOCALHOST, self.port)
        conf = dict(port=self.port, python=SIM_PYTHON, args=list(args), env=sim_env(dict(WORKER_ENV, **(env or {}))))
        (self.state / (name + ".json")).write_text(json.dumps(conf))
        self.script = self.state / "restart_sim.py"
        if not self.script.exists():
            self.script.write_text(RESTART_SCRIPT)

    def command(self, *extra_env):
        return [SIM_PYTHON, str(self.script), str(self.state), self.name, *extra_env]

    def restart(self, *extra_env):
        subprocess.run(self.command(*extra_env), check=True, timeout=60)

    def pid(self):
        return int((self.state / (self.name + ".pid")).read_text())

    def events(self):
        path = self.state / (self.name + ".events")
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def log(self):
        path = self.state / (self.name + ".log")
        return path.read_text(errors="replace") if path.exists() else ""

    def health(self):
        try:
            return requests.get(self.url + "/health", timeout=2).status_code
        except requests.ConnectionError:
            return None

    def wait_healthy(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health() == 200:
                return
            time.sleep(0.05)
        raise AssertionError("%s not healthy within %ss:\n%s" % (self.name, timeout, self.log()[-3000:]))

    def metric(self, name):
        return metric_value(requests.get(self.url + "/metrics", timeout=5).text, name)

    def params(self, **extra):
        return dict(dict(name=self.name, health_url=self.url + "/health", restart_command=self.command()), **extra)


def kill_recorded(state):
    """Kill every process group the restart script started (pid = pgid: own session)."""
    path = Path(state) / "all.pids"
    pids = [int(x) for x in path.read_text().split()] if path.exists() else []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        if sig == signal.SIGTERM:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(alive(p) for p in pids):
                time.sleep(0.05)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Fleet:
    def __init__(self, state):
        self.state = state
        self.a = Instance(state, "a", args=[*WORKER_ARGS, "--enable-metrics"])
        self.b = SimServer([*WORKER_ARGS, "--enable-metrics"], sim_env(WORKER_ENV), state / "b.log")
        self.router = None

    def start(self):
        self.a.restart()
        self.b.wait_healthy(15)
        self.a.wait_healthy()
        self.router = Router([self.a.url, self.b.url], self.state / "router.log")
        self.router.wait_workers(self.urls())

    def urls(self):
        return [self.a.url, self.b.url]

    def listed(self):
        return {w["url"]: w["is_healthy"] for w in self.router.workers()}

    def worker_id(self, url):
        ids = [w["id"] for w in self.router.workers() if w["url"] == url]
        return ids[0] if ids else None

    def params(self, **extra):
        return self.a.params(**dict(dict(router_url=self.router.url, worker_url=self.a.url,
                                         metrics_url=self.a.url + "/metrics"), **extra))

    def stop(self):
        if self.router is not None:
            self.router.kill()
        self.b.kill()
        kill_recorded(self.state)


@pytest.fixture(scope="module")
def fleet_once(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    try:
        f.start()
        yield f
    finally:
        f.stop()


@pytest.fixture
def fleet(fleet_once):
    """The fleet with A and B healthy in the router (repaired if an earlier test left it short)."""
    f = fleet_once
    if f.a.health() != 200:
        f.a.restart()
        f.a.wait_healthy()
    if f.a.url not in f.listed():
        requests.post(f.router.url + "/workers", json={"url": f.a.url}, timeout=5)
    f.router.wait_workers(f.urls(), timeout=15)
    return f


@pytest.fixture
def state(tmp_path):
    """A directory for restart-script instances outside the fleet; all their processes die at teardown."""
    d = tmp_path / "state"
    d.mkdir()
    yield d
    kill_recorded(d)


def warnings(result):
    """Warning texts (ansible-core 2.19 returns {"event": {"msg": ...}} dicts, older versions strings)."""
    return [w if isinstance(w, str) else (w.get("event") or {}).get("msg") or w.get("msg") or json.dumps(w)
            for w in result.get("warnings", [])]


def chat(url, content, max_tokens=8, timeout=30, **extra):
    body = {"model": "sim-model", "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens, **extra}
    return requests.post(url + "/v1/chat/completions", json=body, timeout=timeout)


# --------------------------------------------------------------------------- docs and arguments

def test_documentation_renders_with_ansible_doc():
    proc = subprocess.run([str(ANSIBLE_DOC), "-M", "library", "sglang_rollover"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "sglang_rollover" in proc.stdout and "DELETE /workers/{id}" in proc.stdout
    proc = subprocess.run([str(ANSIBLE_DOC), "-M", "library", "--json", "sglang_rollover"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["sglang_rollover"]
    options = doc["doc"]["options"]
    assert set(options) == {"name", "health_url", "metrics_url", "router_url", "worker_url", "router_api_key",
                            "restart", "drain_only", "restart_command", "unit", "drain_timeout", "drain_grace",
                            "ready_timeout", "interval", "request_timeout"}
    assert options["restart"]["default"] is True and options["drain_timeout"]["default"] == 120
    assert options["ready_timeout"]["default"] == 1800 and options["drain_grace"]["default"] == 2
    assert options["restart_command"]["elements"] == "str"
    assert {"changed", "healthy", "removed", "readded", "drained_s", "drain_timed_out", "ready_s", "readd_s",
            "summary"} <= set(doc["return"])
    assert len(yaml.safe_load(doc["examples"])) == 2


@pytest.mark.parametrize("params, needle", [
    (dict(router_url="http://127.0.0.1:1"), "worker_url is required with router_url"),
    (dict(restart_command=[]), "unit (or restart_command) is required with restart=true"),
    (dict(health_url="127.0.0.1:30000/health"), "invalid health url '127.0.0.1:30000/health'"),
], ids=["no-worker-url", "no-unit", "bad-url"])
def test_bad_arguments_fail_before_doing_anything(tmp_path, params, needle):
    marker = tmp_path / "restarted"
    args = dict(name="x", health_url="http://127.0.0.1:1/health",
                restart_command=[SIM_PYTHON, "-c", "open(%r, 'w')" % str(marker)])
    args.update(params)
    r, _ = run_rollover(tmp_path, **args)
    assert r["failed"] is True and r["changed"] is False
    assert r["msg"].startswith("instance x: " + needle), r["msg"]
    assert not marker.exists()


def test_metric_sum_adds_every_sample_of_the_gauges():
    mod = load_module(MODULE, "sglang_rollover_under_test")
    text = "\n".join([
        "# HELP sglang:num_running_reqs The number of running requests.",
        "# TYPE sglang:num_running_reqs gauge",
        'sglang:num_running_reqs{model_name="m",tp_rank="0"} 2.0',
        'sglang:num_running_reqs{model_name="odd } name",tp_rank="1"} 1',
        "sglang:num_queue_reqs 3 1712345678000",
        'sglang:num_queue_reqs_total{model_name="m"} 100',
        'sglang:num_requests_total{model_name="m"} 7',
        "",
    ])
    assert mod.metric_sum(text, mod.GAUGES) == 6.0
    assert mod.metric_sum('sglang:num_running_reqs{a="b"} 0.0\n', mod.GAUGES) == 0.0
    assert mod.metric_sum("sglang:num_requests_total 7\n", mod.GAUGES) is None


# --------------------------------------------------------------------------- (a) roll under load

class Watcher(threading.Thread):
    """Polls GET /workers; notes when A leaves and when it is back healthy, and A's request count
    shortly after it left (every request A has taken: served, running or queued)."""

    def __init__(self, fleet):
        super().__init__(daemon=True)
        self.fleet, self.stop = fleet, threading.Event()
        self.out_at = self.back_at = self.taken_at_removal = None

    def run(self):
        f = self.fleet
        while not self.stop.is_set():
            try:
                state = f.listed()
            except requests.RequestException:
                time.sleep(0.02)
                continue
            now = time.time()
            if self.out_at is None and f.a.url not in state:
                self.out_at = now
                time.sleep(0.1)  # requests proxied just before the removal have arrived by now
                self.taken_at_removal = sum(f.a.metric(m) for m in (
                    "sglang:num_requests_total", "sglang:num_running_reqs", "sglang:num_queue_reqs"))
            elif self.out_at is not None and state.get(f.a.url) is True:
                self.back_at = now
                return
            time.sleep(0.02)


def test_roll_under_load_drops_nothing(tmp_path, fleet):
    old_pid = fleet.a.pid()
    done, failures = [], []

    def load(n):
        for i in range(40):
            t0 = time.time()
            try:
                r = chat(fleet.router.url, "load %d %d" % (n, i), max_tokens=8, ignore_eos=True)
                ok = r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 8
                if not ok:
                    failures.append((n, i, r.status_code, r.text[:200]))
            except requests.RequestException as exc:
                failures.append((n, i, None, repr(exc)))
            done.append((t0, time.time()))
            time.sleep(0.06)

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(4)]
    watcher = Watcher(fleet)
    watcher.start()
    for t in threads:
        t.start()
    while len(done) < 12:
        time.sleep(0.02)
    r, _ = run_rollover(tmp_path, **fleet.params())
    for t in threads:
        t.join(60)
    watcher.stop.set()
    watcher.join(10)

    assert not r.get("failed"), r
    assert failures == [] and len(done) == 160
    assert r["changed"] is True and r["healthy"] is True
    assert r["removed"] is True and r["readded"] is True and r["drain_timed_out"] is False
    assert r["drained_s"] >= FAST["drain_grace"] and r["ready_s"] >= 0 and r["readd_s"] >= 0
    assert r["summary"] == ("a: out of the router, drained in %.1f s, restarted, healthy in %.1f s, "
                            "back in the router in %.1f s" % (r["drained_s"], r["ready_s"], r["readd_s"]))
    # The order of events: out of the router, (drain), stopped, started, back in the router.
    assert watcher.out_at is not None and watcher.back_at is not None, (watcher.out_at, watcher.back_at)
    kill, start = fleet.a.events()[-2:]
    assert kill["event"] == "kill" and kill["pid"] == old_pid and start["event"] == "start"
    assert watcher.out_at < kill["t"] < start["t"] < watcher.back_at
    assert kill["t"] - watcher.out_at >= FAST["drain_grace"] - 0.1
    # The load really ran while A was out.
    assert sum(1 for t0, _ in done if watcher.out_at < t0 < watcher.back_at) >= 8
    # A took no request while it was out: its count at the kill (drained: nothing running) is the
    # count right after the removal.
    m = kill["metrics"]
    assert m["sglang:num_running_reqs"] == 0 and m["sglang:num_queue_reqs"] == 0, m
    assert m["sglang:num_requests_total"] == watcher.taken_at_removal, (m, watcher.taken_at_removal)
    assert m["sglang:num_requests_total"] >= 5  # and A did serve before it left
    # Afterwards: a new A, healthy in the router and serving again.
    assert fleet.a.pid() != old_pid and fleet.listed() == {fleet.a.url: True, fleet.b.url: True}
    before = fleet.a.metric("sglang:num_requests_total")
    for i in range(4):
        assert chat(fleet.router.url, "after %d" % i).status_code == 200
    assert fleet.a.metric("sglang:num_requests_total") - before >= 1


# --------------------------------------------------------------------------- (e) check mode

def test_check_mode_changes_nothing(tmp_path, fleet):
    pid, wid, events = fleet.a.pid(), fleet.worker_id(fleet.a.url), len(fleet.a.events())
    r, _ = run_rollover(tmp_path, check_mode=True, **fleet.params())
    assert not r.get("failed"), r
    assert r["changed"] is True and r["removed"] is False and r["readded"] is False
    assert r["summary"] == "a: would take it out of the router, drain, restart and put it back (check mode)"
    r, _ = run_rollover(tmp_path, check_mode=True, **fleet.params(restart=False))
    assert not r.get("failed"), r
    assert r["changed"] is False and r["healthy"] is True
    assert r["summary"] == "a: healthy, already in the router"
    time.sleep(0.3)
    assert fleet.a.pid() == pid and len(fleet.a.events()) == events
    assert fleet.worker_id(fleet.a.url) == wid  # the same registration: never removed
    assert fleet.listed() == {fleet.a.url: True, fleet.b.url: True}


# --------------------------------------------------------------------------- (f) drain by metrics

def slow_request(url, tokens, box):
    t0 = time.time()
    r = chat(url, "a long answer please", max_tokens=tokens, ignore_eos=True, timeout=60)
    box.update(status=r.status_code, body=r.json(), t0=t0, t1=time.time())


def start_slow(fleet, tokens):
    """A request of tokens / 200 s (the sim's default rate) directly on A; returns once A runs it."""
    box = {}
    thread = threading.Thread(target=slow_request, args=(fleet.a.url, tokens, box), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while fleet.a.metric("sglang:num_running_reqs") < 1:
        assert time.monotonic() < deadline, "the slow request never started"
        time.sleep(0.02)
    return thread, box, time.time()


def test_drain_waits_for_the_running_request(tmp_path, fleet):
    thread, box, running_at = start_slow(fleet, 600)  # 3 s
    launched = time.time()
    r, _ = run_rollover(tmp_path, **fleet.params())
    thread.join(30)
    assert not r.get("failed"), r
    assert box["status"] == 200 and box["body"]["usage"]["completion_tokens"] == 600
    assert r["drain_timed_out"] is False and r["removed"] is True and r["readded"] is True
    remaining = box["t1"] - launched
    assert remaining > 2.0
    # drained_s counts from the removal, a little after the launch
    assert remaining - 1.0 <= r["drained_s"] <= remaining + 1.5, (remaining, r["drained_s"])
    kill = fleet.a.events()[-2]
    assert kill["event"] == "kill" and kill["t"] >= box["t1"] - 0.05
    assert kill["metrics"]["sglang:num_running_reqs"] == 0
    assert fleet.listed() == {fleet.a.url: True, fleet.b.url: True}


def test_drain_only_takes_it_out_and_waits_without_a_restart(tmp_path, fleet):
    pid = fleet.a.pid()
    thread, box, _ = start_slow(fleet, 300)  # 1.5 s
    r, _ = run_rollover(tmp_path, drain_only=True, **fleet.params())
    thread.join(30)
    assert not r.get("failed"), r
    assert r["changed"] is True and r["removed"] is True and r["readded"] is False and r["healthy"] is None
    assert box["status"] == 200 and r["drained_s"] >= 0.5
    assert fleet.a.pid() == pid and fleet.a.url not in fleet.listed()
    assert r["summary"].startswith("a: out of the router, drained in ")
    # The group's restart happens elsewhere; then restart=false puts it back.
    r, _ = run_rollover(tmp_path, **fleet.params(restart=False))
    assert r["changed"] is True and fleet.listed() == {fleet.a.url: True, fleet.b.url: True}
    r, _ = run_rollover(tmp_path, drain_only=True, **dict(fleet.params(), router_url=""))
    assert r.get("failed") and "drain_only needs router_url" in r["msg"]


def test_drain_timeout_restarts_anyway(tmp_path, fleet):
    thread, box, _ = start_slow(fleet, 500)  # 2.5 s, the sim finishes it while shutting down
    r, out = run_rollover(tmp_path, **fleet.params(drain_timeout=1))
    thread.join(30)
    assert not r.get("failed"), r
    assert r["drain_timed_out"] is True and 1.0 <= r["drained_s"] < 2.0, r
    assert "a: out of the router, drain timed out after %.1f s (1 still running or queued), restarted" \
        % r["drained_s"] in r["summary"]
    assert any("in-flight requests did not finish within 1 s" in w for w in warnings(r)), r
    kill = fleet.a.events()[-2]
    assert kill["metrics"]["sglang:num_running_reqs"] == 1 and kill["t"] < box["t1"]
    assert box["status"] == 200  # SIGTERM lets it finish (the sim, like SGLang)
    assert r["healthy"] is True and fleet.listed() == {fleet.a.url: True, fleet.b.url: True}


# --------------------------------------------------------------------------- (b) never healthy, then re-add

def test_never_healthy_replacement_stays_out_until_readded(tmp_path, fleet):
    params = fleet.params(restart_command=fleet.a.command("SGLANG_SIM_FAIL=never_healthy"), ready_timeout=2)
    r, _ = run_rollover(tmp_path, **params)
    assert not r.get("failed"), r
    assert r["changed"] is True and r["healthy"] is False and r["removed"] is True and r["readded"] is False
    assert r["ready_s"] >= 2 and r["readd_s"] is None
    assert r["summary"].startswith("a: out of the router, drained in ")
    assert r["summary"].endswith(", restarted, NOT healthy after 2 s at %s/health (last: HTTP 503), "
                                 "left out of the router" % fleet.a.url), r["summary"]
    assert any("not put back into the router" in w for w in warnings(r)), r
    assert fleet.a.events()[-1]["fail"] == "never_healthy"
    assert fleet.listed() == {fleet.b.url: True}

    # restart=false while A is still unhealthy: fails, registers nothing
    r, _ = run_rollover(tmp_path, **fleet.params(restart=False, ready_timeout=1))
    assert r["failed"] is True and r["changed"] is False and r["healthy"] is False
    assert r["msg"] == ("instance a: health %s/health: not healthy after 1 s (last: HTTP 503); "
                        "not registered in the router" % fleet.a.url)
    # check mode says a registration is due, without making it
    r, _ = run_rollover(tmp_path, check_mode=True, **fleet.params(restart=False))
    assert not r.get("failed") and r["changed"] is True, r
    assert r["summary"] == "a: not healthy, would be added to the router (check mode)"
    assert fleet.listed() == {fleet.b.url: True}

    # the "rollback": other tasks restart A healthy; then the module only registers it
    fleet.a.restart()
    fleet.a.wait_healthy()
    assert fleet.listed() == {fleet.b.url: True}  # the router does not take it back by itself
    pid = fleet.a.pid()
    r, _ = run_rollover(tmp_path, **fleet.params(restart=False))
    assert not r.get("failed"), r
    assert r["changed"] is True and r["readded"] is True and r["healthy"] is True and r["removed"] is False
    assert r["summary"] == "a: healthy, added to the router in %.1f s" % r["readd_s"]
    assert fleet.listed() == {fleet.a.url: True, fleet.b.url: True}
    r, _ = run_rollover(tmp_path, **fleet.params(restart=False))
    assert not r.get("failed"), r
    assert r["changed"] is False and r["readded"] is False and r["summary"] == "a: healthy, already in the router"
    assert fleet.a.pid() == pid


def test_failed_restart_command_puts_the_worker_back_first(tmp_path, fleet):
    pid, events = fleet.a.pid(), len(fleet.a.events())
    boom = [SIM_PYTHON, "-c", "import sys; sys.stderr.write('Unit sglang-a.service not found.'); sys.exit(5)"]
    r, _ = run_rollover(tmp_path, **fleet.params(restart_command=boom))
    assert r["failed"] is True and r["changed"] is True
    assert r["msg"].startswith("instance a: restart command %s failed (rc=5): Unit sglang-a.service not found."
                               % " ".join(boom)), r["msg"]
    assert r["msg"].endswith("; the worker was put back into the router"), r["msg"]
    assert r["removed"] is True and r["readded"] is True
    assert fleet.listed() == {fleet.a.url: True, fleet.b.url: True}
    assert fleet.a.pid() == pid and len(fleet.a.events()) == events


def test_worker_not_in_the_router_is_restarted_and_added(tmp_path, fleet):
    wid = fleet.worker_id(fleet.a.url)
    assert requests.delete(fleet.router.url + "/workers/" + wid, timeout=5).status_code == 202
    fleet.router.wait_workers([fleet.b.url])
    pid = fleet.a.pid()
    r, _ = run_rollover(tmp_path, **fleet.params())
    assert not r.get("failed"), r
    assert r["changed"] is True and r["removed"] is False and r["readded"] is True and r["healthy"] is True
    assert r["summary"] == ("a: not in the router, drained in %.1f s, restarted, healthy in %.1f s, "
                            "added to the router in %.1f s" % (r["drained_s"], r["ready_s"], r["readd_s"]))
    assert fleet.a.pid() != pid
    assert fleet.listed() == {fleet.a.url: True, fleet.b.url: True}
    assert fleet.worker_id(fleet.a.url) != wid  # a new registration


# --------------------------------------------------------------------------- (c) no router, (d) router down

def test_no_router_restarts_and_waits_for_health(tmp_path, state):
    solo = Instance(state, "solo", env={"SGLANG_SIM_STARTUP_DELAY": "1.0"})
    solo.restart()
    solo.wait_healthy()
    pid = solo.pid()
    r, _ = run_rollover(tmp_path, **solo.params())
    assert not r.get("failed"), r
    assert r["changed"] is True and r["healthy"] is True
    assert r["removed"] is False and r["readded"] is False and r["drained_s"] is None
    assert r["ready_s"] >= 0.8  # the new process needed its startup delay
    assert r["summary"] == "solo: restarted, healthy in %.1f s" % r["ready_s"]
    assert solo.pid() != pid and solo.health() == 200
    assert [e["event"] for e in solo.events()] == ["start", "kill", "start"]


def test_router_down_fails_clearly_and_restarts_nothing(tmp_path):
    marker = tmp_path / "restarted"
    router = "http://127.0.0.1:%d" % free_port()
    r, _ = run_rollover(tmp_path, name="main", health_url="http://127.0.0.1:1/health", router_url=router,
                        worker_url="http://10.0.0.11:30000",
                        restart_command=[SIM_PYTHON, "-c", "open(%r, 'w')" % str(marker)])
    assert r["failed"] is True and r["changed"] is False and r["removed"] is False
    assert r["msg"] == "instance main: router %s GET /workers: connection refused" % router
    assert r["summary"] == "main: FAILED"
    assert not marker.exists()


# --------------------------------------------------------------------------- router API key

def test_router_api_key(tmp_path, state):
    keyed = Instance(state, "keyed", args=[*WORKER_ARGS, "--api-key", SECRET])
    keyed.restart()
    keyed.wait_healthy()
    router = Router([keyed.url], state / "keyed-router.log", extra=["--api-key", SECRET])
    try:
        router.wait_workers([keyed.url], headers={"Authorization": "Bearer " + SECRET})
        params = keyed.params(router_url=router.url, worker_url=keyed.url, restart=False)
        r, out = run_rollover(tmp_path, **params)
        assert r["failed"] is True
        assert r["msg"].startswith("instance keyed: router %s GET /workers: HTTP 401" % router.url), r["msg"]
        assert r["msg"].endswith(" (the router needs an API key)")
        r, out = run_rollover(tmp_path, router_api_key=SECRET, **params)
        assert not r.get("failed"), r
        assert r["changed"] is False and r["summary"] == "keyed: healthy, already in the router"
        r, out2 = run_rollover(tmp_path, router_api_key="not-" + SECRET, **params)
        assert r["failed"] is True and r["msg"].endswith(" (the router refused the API key)"), r["msg"]
        for text in (out, out2):
            assert SECRET not in text and "********" not in text
    finally:
        router.kill()


def test_a_keyed_worker_put_back_by_the_rollover_is_known_to_the_router(tmp_path, state):
    """sglang-router 0.3.2 talks to a worker added at run time (POST /workers) with the key given in
    that request only: without it the router cannot read the worker's /model_info (401) and lists
    it as model 'unknown'. The rollover passes router_api_key along."""
    keyed = Instance(state, "keyed-rolled", args=[*WORKER_ARGS, "--api-key", SECRET])
    keyed.restart()
    keyed.wait_healthy()
    auth = {"Authorization": "Bearer " + SECRET}
    router = Router([keyed.url], state / "keyed-rolled-router.log", extra=["--api-key", SECRET])
    try:
        router.wait_workers([keyed.url], headers=auth)
        r, out = run_rollover(tmp_path, router_api_key=SECRET,
                              **keyed.params(router_url=router.url, worker_url=keyed.url, restart=True))
        assert not r.get("failed"), r
        assert r["changed"] is True and r["removed"] is True and r["readded"] is True, r
        listed = router.wait_workers([keyed.url], headers=auth)
        assert [w["model_id"] for w in listed] == ["sim-model"]
        assert router.chat("through a rolled worker", headers=auth).status_code == 200
        assert SECRET not in out
    finally:
        router.kill()
