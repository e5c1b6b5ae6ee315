"""Contract tests for the simulated SGLang server's multi-node mode.

What the project relies on (docs/upstream.md, "Multi-node"): every node runs the same
flags plus `--nnodes N --node-rank R --dist-init-addr HEAD_IP:PORT`; only the head
(rank 0) serves the API, and, as SGLang 0.5.3.post3, it binds its HTTP port only once
every other rank has joined its distributed init (before that, connections are refused);
a worker (rank > 0) serves upstream's dummy health server on its --port once the group
is complete. These tests prove ordering (either side may start first, a lost peer takes
the other down so systemd restarts it) and addressing (the head listens on the dist-init
port, a worker on its --port only after joining). Loopback only.
"""

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sglang_sim_helpers import (  # noqa: E402
    LOCALHOST,
    SimServer,
    free_ports,
    refused,
    run_module,
    spawn,  # noqa: F401  (fixture)
)

# The head's dist-init listener binds 0.0.0.0 by default; keep the tests on loopback.
ENV = {"SGLANG_SIM_STARTUP_DELAY": "0.3", "SGLANG_SIM_DIST_BIND_HOST": LOCALHOST,
       "SGLANG_SIM_DIST_CONNECT_TIMEOUT": "20"}


def group_args(dist_port, rank=0, nnodes=2, tp_size=2):
    # tp 2 over 2 nodes: one GPU per node, as on two linked DGX Sparks.
    return ["--model-path", "org/sim-model", "--served-model-name", "sim-model",
            "--tp-size", str(tp_size), "--nnodes", str(nnodes), "--node-rank", str(rank),
            "--dist-init-addr", f"{LOCALHOST}:{dist_port}"]


@pytest.fixture
def spawn_node(tmp_path):
    """Factory: spawn_node(dist_port, rank=1, ...) -> started worker node (a SimServer on its
    --host/--port, where it serves only the dummy health server once joined), killed at teardown."""
    procs = []

    def _spawn(dist_port, rank=1, nnodes=2, tp_size=2, env=None, port=None, extra=()):
        p = SimServer([*group_args(dist_port, rank, nnodes, tp_size), *extra], {**ENV, **(env or {})},
                      tmp_path / f"node{len(procs)}-rank{rank}.log", port=port)
        procs.append(p)
        return p

    yield _spawn
    for p in procs:
        p.kill()


def wait_log(proc, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in proc.log():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged within {timeout}s (exit {proc.poll()}):\n{proc.log()}")


def listening_ports(pid):
    """TCP ports process `pid` listens on (Linux /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.read().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def chat(server, max_tokens=3):
    return server.post("/v1/chat/completions", json={
        "model": "sim-model", "messages": [{"role": "user", "content": "hello two nodes"}],
        "max_tokens": max_tokens})


def head_and_worker(spawn, spawn_node):
    http_port, dist_port = free_ports(2)
    head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
    wait_log(head, "distributed init on")
    worker = spawn_node(dist_port)
    head.wait_healthy(15)
    return head, worker, dist_port


def stays_refused(server, seconds=1.0):
    """The server's HTTP port refuses connections for `seconds` while its process runs."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert server.poll() is None, server.log()
        assert refused(server.port), f"{server.port} answers"
        time.sleep(0.1)


# ----------------------------------------------------------------------------- flags

@pytest.mark.parametrize("args, message", [
    (["--nnodes", "2", "--tp-size", "2"], "--dist-init-addr HOST:PORT is required with --nnodes 2"),
    (["--nnodes", "2", "--tp-size", "2", "--dist-init-addr", "10.0.0.1"], "--dist-init-addr must be HOST:PORT"),
    (["--nnodes", "2", "--node-rank", "2", "--tp-size", "2", "--dist-init-addr", "10.0.0.1:20000"],
     "--node-rank 2 is out of range for --nnodes 2"),
    (["--node-rank", "1"], "--node-rank 1 is out of range for --nnodes 1"),
])
def test_bad_multinode_flags_exit_2(args, message):
    r = run_module("sglang.launch_server", ["--model-path", "org/m", "--port", "1", *args], timeout=20)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr


@pytest.mark.parametrize("args, env, message", [
    # one GPU per Spark: tp 4 over 2 nodes needs 2 per node
    (["--tp-size", "4"], {}, "needs 2 GPU(s) per node, the simulated node has 1"),
    (["--tp-size", "3"], {"SGLANG_SIM_NUM_GPUS": "4"}, "tp_size must be divisible by number of nodes"),
    (["--tp-size", "2", "--dp-size", "2"], {"SGLANG_SIM_NUM_GPUS": "4"},
     "multi-node data parallel is not supported unless dp attention"),
])
def test_gpu_split_over_nodes_checked(args, env, message):
    r = run_module("sglang.launch_server",
                   ["--model-path", "org/m", "--port", "1", "--nnodes", "2", "--node-rank", "1",
                    "--dist-init-addr", "127.0.0.1:1", *args], env=env, timeout=20)
    assert r.returncode == 1, r.stderr
    assert message in r.stderr


def test_per_node_share_that_fits_starts(spawn, spawn_node):
    http_port, dist_port = free_ports(2)
    env = {**ENV, "SGLANG_SIM_NUM_GPUS": "2"}  # 4 GPUs over 2 nodes: 2 per node, fits
    head = spawn(group_args(dist_port, tp_size=4), env=env, name="head", port=http_port)
    spawn_node(dist_port, tp_size=4, env=env)
    head.wait_healthy(15)


# ----------------------------------------------------------------------------- ordering

def test_head_waits_for_the_worker_then_serves(spawn, spawn_node):
    http_port, dist_port = free_ports(2)
    head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
    wait_log(head, f"no HTTP on {LOCALHOST}:{http_port} until node rank(s) 1 join")
    # Alone, the head serves no HTTP at all (well past the 0.3 s startup delay): as SGLang, whose
    # uvicorn starts only once every rank's scheduler is ready, connections are refused.
    stays_refused(head)
    # Addressing: the head listens on the dist-init port only.
    assert listening_ports(head.popen.pid) == {dist_port}

    worker = spawn_node(dist_port)
    head.wait_healthy(15)
    r = chat(head)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"].startswith("simulated")
    info = head.get("/get_server_info").json()
    assert (info["nnodes"], info["node_rank"], info["dist_init_addr"]) == (2, 0, f"{LOCALHOST}:{dist_port}")
    assert info["status"] == "ready"
    assert info["joined_ranks"] == [0, 1]
    assert info["nodes"]["missing_ranks"] == []
    assert info["nodes"]["workers"]["1"]["peer"].startswith(LOCALHOST + ":")
    assert {http_port, dist_port} == listening_ports(head.popen.pid)
    wait_log(head, "node rank 1 joined")
    wait_log(head, "all 2 nodes joined")
    log = head.log()
    assert log.index("all 2 nodes joined") < log.index("Uvicorn running on")
    wait_log(worker, "node rank 1: joined the head at")
    wait_log(worker, "all 2 nodes joined")
    # A worker serves the dummy health server on its --port, and nothing else.
    wait_log(worker, f"Starting dummy health check server at {LOCALHOST}:{worker.port}")
    assert worker.poll() is None
    assert listening_ports(worker.popen.pid) == {worker.port}
    assert worker.get("/health").status_code == 200
    assert worker.get("/health_generate").status_code == 200
    for path in ("/v1/models", "/get_server_info", "/metrics"):  # /metrics only with --enable-metrics
        r = worker.get(path)
        assert (r.status_code, r.json()) == (404, {"detail": "Not Found"}), path
    r = worker.post("/v1/chat/completions", json={})
    assert (r.status_code, r.json()) == (404, {"detail": "Not Found"})
    r = worker.post("/health", json={})
    assert (r.status_code, r.headers["Allow"]) == (405, "GET")
    assert "serves no API" in worker.log()


def test_a_worker_serves_health_only_once_the_whole_group_joined(spawn, spawn_node):
    """Three nodes: rank 1 has joined, rank 2 not yet. Rank 1's schedulers (their torch.distributed
    init) still wait for rank 2, so neither it nor the head serves HTTP."""
    http_port, dist_port = free_ports(2)
    head = spawn(group_args(dist_port, nnodes=3, tp_size=3), env=ENV, name="head", port=http_port)
    first = spawn_node(dist_port, rank=1, nnodes=3, tp_size=3)
    wait_log(first, "node rank 1: joined the head at")
    wait_log(head, "node rank 1 joined")
    stays_refused(first)
    stays_refused(head, 0.1)
    second = spawn_node(dist_port, rank=2, nnodes=3, tp_size=3)
    head.wait_healthy(15)
    for node in (first, second):
        node.wait_healthy(10)
        assert "dummy health check server" in node.log()
    assert head.get("/get_server_info").json()["joined_ranks"] == [0, 1, 2]


def test_worker_started_first_joins_when_the_head_comes_up(spawn, spawn_node):
    http_port, dist_port = free_ports(2)
    worker = spawn_node(dist_port)
    stays_refused(worker, 1.5)  # several refused attempts on the head, 0.5 s apart; no HTTP of its own
    assert "Joining the head at" in worker.log()
    head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
    head.wait_healthy(15)
    assert head.get("/get_server_info").json()["joined_ranks"] == [0, 1]
    wait_log(worker, "joined the head at")
    assert worker.wait_healthy(10) and worker.poll() is None


def test_worker_that_cannot_reach_the_head_exits_1_naming_the_address(spawn_node):
    (unused,) = free_ports(1)
    worker = spawn_node(unused, env={"SGLANG_SIM_DIST_CONNECT_TIMEOUT": "2"})
    assert worker.wait(10) == 1, worker.log()
    took = time.monotonic() - worker.started
    assert 1.8 <= took < 8, took
    assert (f"node rank 1: cannot reach the head at {LOCALHOST}:{unused} (dist-init-addr) "
            "after 2 s: connection refused") in worker.log()


# ----------------------------------------------------------------------------- failures

def test_killing_the_worker_makes_the_head_exit_nonzero(spawn, spawn_node):
    head, worker, _ = head_and_worker(spawn, spawn_node)
    worker.signal(signal.SIGKILL)
    assert head.wait(10) == 1, head.log()
    log = head.log()
    assert "node rank 1 (127.0.0.1:" in log and "left the distributed group" in log
    assert "Exiting with status 1" in log


def test_killing_the_head_makes_the_worker_exit_nonzero(spawn, spawn_node):
    head, worker, dist_port = head_and_worker(spawn, spawn_node)
    worker.wait_healthy(10)
    head.signal(signal.SIGKILL)
    assert worker.wait(10) == 1, worker.log()
    assert (f"node rank 1: lost the connection to the head at {LOCALHOST}:{dist_port} "
            "(dist-init-addr)") in worker.log()
    assert refused(worker.port)  # its health check server went with it


def test_sigterm_worker_exits_0_head_follows_with_1(spawn, spawn_node):
    head, worker, _ = head_and_worker(spawn, spawn_node)
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0, worker.log()
    assert "Received SIGTERM" in worker.log()
    assert head.wait(10) == 1  # the group lost a member


def test_sigterm_head_exits_0_worker_follows_with_1(spawn, spawn_node):
    head, worker, _ = head_and_worker(spawn, spawn_node)
    head.signal(signal.SIGTERM)
    assert head.wait(10) == 0, head.log()
    assert worker.wait(10) == 1, worker.log()


def test_sigterm_while_the_head_waits_for_the_group_exits_0(spawn):
    http_port, dist_port = free_ports(2)
    head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
    wait_log(head, "distributed init on")
    head.signal(signal.SIGTERM)
    assert head.wait(10) == 0, head.log()
    assert "Shutdown complete" in head.log() and "Uvicorn running" not in head.log()


def test_a_busy_http_port_fails_the_head_once_the_group_joined(spawn, spawn_node):
    """The head binds its HTTP port only after the join, so a port held by another program
    is found then: the head exits 1 naming it, and the worker follows."""
    http_port, dist_port = free_ports(2)
    with socket.socket() as holder:
        holder.bind((LOCALHOST, http_port))
        holder.listen(1)
        head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
        wait_log(head, "distributed init on")
        assert head.poll() is None
        worker = spawn_node(dist_port)
        assert head.wait(10) == 1, head.log()
        assert worker.wait(10) == 1, worker.log()
    assert f"Cannot bind HTTP server to {LOCALHOST}:{http_port}" in head.log()


def test_a_busy_port_fails_the_worker_once_the_group_joined(spawn, spawn_node):
    http_port, dist_port, worker_port = free_ports(3)
    with socket.socket() as holder:
        holder.bind((LOCALHOST, worker_port))
        holder.listen(1)
        head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
        worker = spawn_node(dist_port, port=worker_port)
        assert worker.wait(10) == 1, worker.log()
        assert head.wait(10) == 1, head.log()
    assert (f"node rank 1: cannot bind the health check server to {LOCALHOST}:{worker_port}"
            in worker.log())


def test_wrong_nnodes_and_duplicate_rank_are_rejected(spawn, spawn_node):
    http_port, dist_port = free_ports(2)
    head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
    wait_log(head, "distributed init on")
    # A node that believes in a 3-node group is turned away; the head keeps waiting, without HTTP.
    stray = spawn_node(dist_port, nnodes=3, tp_size=3)
    assert stray.wait(10) == 1, stray.log()
    assert "rejected the join: nnodes mismatch" in stray.log()
    stays_refused(head, 0.3)
    worker = spawn_node(dist_port)
    head.wait_healthy(15)
    # A second rank 1 is turned away; the group stays up and healthy.
    dup = spawn_node(dist_port)
    assert dup.wait(10) == 1, dup.log()
    assert "rejected the join: node rank 1 already joined" in dup.log()
    wait_log(head, "rejected the join of node rank 1")
    assert head.get("/health").status_code == 200
    assert head.get("/get_server_info").json()["joined_ranks"] == [0, 1]
    assert worker.poll() is None and head.poll() is None


def test_dist_init_port_in_use_exits_1(spawn):
    http_port, dist_port = free_ports(2)
    with socket.socket() as holder:
        holder.bind((LOCALHOST, dist_port))
        holder.listen(1)
        head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
        assert head.wait(10) == 1, head.log()
    assert f"Cannot listen on the dist-init port {LOCALHOST}:{dist_port}" in head.log()
