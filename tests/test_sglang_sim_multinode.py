"""Contract tests for the simulated SGLang server's multi-node mode.

What the project relies on (docs/upstream.md, "Multi-node"): every node runs the same
flags plus `--nnodes N --node-rank R --dist-init-addr HEAD_IP:PORT`; only the head
(rank 0) serves HTTP, and it is not healthy until every other rank has joined its
distributed init. These tests prove ordering (either side may start first, a lost
peer takes the other down so systemd restarts it) and addressing (the head listens
on the dist-init port, a worker listens on nothing). Loopback only.
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
    SIM_PYTHON,
    Proc,
    free_ports,
    run_module,
    sim_env,
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


class Node(Proc):
    """A node rank > 0: it serves no HTTP, so only its process and log are watched."""

    def __init__(self, args, env, log_path, port):
        self.port = port
        cmd = [SIM_PYTHON, "-m", "sglang.launch_server", "--host", LOCALHOST, "--port", str(port), *args]
        super().__init__(cmd, sim_env(env), log_path)


@pytest.fixture
def spawn_node(tmp_path):
    """Factory: spawn_node(dist_port, rank=1, ...) -> started worker Node, killed at teardown."""
    procs = []

    def _spawn(dist_port, rank=1, nnodes=2, tp_size=2, env=None, port=None):
        port = port or free_ports(1)[0]
        p = Node(group_args(dist_port, rank, nnodes, tp_size), {**ENV, **(env or {})},
                 tmp_path / f"node{len(procs)}-rank{rank}.log", port)
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
    head.wait_listening()
    worker = spawn_node(dist_port)
    head.wait_healthy(15)
    return head, worker, dist_port


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


def test_per_node_share_that_fits_starts(spawn):
    http_port, dist_port = free_ports(2)
    s = spawn(group_args(dist_port, tp_size=4), env={**ENV, "SGLANG_SIM_NUM_GPUS": "2"}, port=http_port)
    assert s.wait_listening() == 503  # 4 GPUs over 2 nodes: 2 per node, fits


# ----------------------------------------------------------------------------- ordering

def test_head_waits_for_the_worker_then_serves(spawn, spawn_node):
    http_port, dist_port = free_ports(2)
    head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
    assert head.wait_listening() == 503
    # Alone, the head never becomes ready (well past the 0.3 s startup delay).
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        r = head.get("/health")
        assert r.status_code == 503
        assert "waiting for 1 of 2 nodes" in r.text and "missing node rank(s): 1" in r.text
        time.sleep(0.1)
    assert head.get("/health_generate").status_code == 503
    r = chat(head)
    assert r.status_code == 503 and "waiting for 1 of 2 nodes" in r.json()["message"]
    info = head.get("/server_info").json()
    assert (info["nnodes"], info["node_rank"], info["dist_init_addr"]) == (2, 0, f"{LOCALHOST}:{dist_port}")
    assert info["status"] == "waiting_for_nodes"
    assert info["joined_ranks"] == [0]
    assert info["nodes"]["missing_ranks"] == [1]
    # Addressing: the head listens on its HTTP port and on the dist-init port.
    assert {http_port, dist_port} <= listening_ports(head.popen.pid)

    worker = spawn_node(dist_port)
    head.wait_healthy(15)
    r = chat(head)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"].startswith("simulated")
    info = head.get("/server_info").json()
    assert info["status"] == "ready"
    assert info["joined_ranks"] == [0, 1]
    assert info["nodes"]["missing_ranks"] == []
    assert info["nodes"]["workers"]["1"]["peer"].startswith(LOCALHOST + ":")
    wait_log(head, "node rank 1 joined")
    wait_log(head, "all 2 nodes joined")
    wait_log(worker, "node rank 1: joined the head at")
    wait_log(worker, "all 2 nodes joined")
    # A worker serves no HTTP: it listens on nothing, its --port included.
    assert worker.poll() is None
    assert listening_ports(worker.popen.pid) == set()
    with pytest.raises(OSError):
        socket.create_connection((LOCALHOST, worker.port), timeout=1).close()
    assert "serves no HTTP" in worker.log()


def test_worker_started_first_joins_when_the_head_comes_up(spawn, spawn_node):
    http_port, dist_port = free_ports(2)
    worker = spawn_node(dist_port)
    time.sleep(1.5)  # several refused attempts, 0.5 s apart
    assert worker.poll() is None, worker.log()
    assert "Joining the head at" in worker.log()
    head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
    head.wait_healthy(15)
    assert head.get("/server_info").json()["joined_ranks"] == [0, 1]
    wait_log(worker, "joined the head at")
    assert worker.poll() is None


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
    head.signal(signal.SIGKILL)
    assert worker.wait(10) == 1, worker.log()
    assert (f"node rank 1: lost the connection to the head at {LOCALHOST}:{dist_port} "
            "(dist-init-addr)") in worker.log()


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


def test_wrong_nnodes_and_duplicate_rank_are_rejected(spawn, spawn_node):
    http_port, dist_port = free_ports(2)
    head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
    head.wait_listening()
    # A node that believes in a 3-node group is turned away; the head keeps waiting.
    stray = spawn_node(dist_port, nnodes=3, tp_size=3)
    assert stray.wait(10) == 1, stray.log()
    assert "rejected the join: nnodes mismatch" in stray.log()
    assert head.poll() is None
    assert "waiting for 1 of 2 nodes" in head.get("/health").text
    worker = spawn_node(dist_port)
    head.wait_healthy(15)
    # A second rank 1 is turned away; the group stays up and healthy.
    dup = spawn_node(dist_port)
    assert dup.wait(10) == 1, dup.log()
    assert "rejected the join: node rank 1 already joined" in dup.log()
    wait_log(head, "rejected the join of node rank 1")
    assert head.get("/health").status_code == 200
    assert head.get("/server_info").json()["joined_ranks"] == [0, 1]
    assert worker.poll() is None and head.poll() is None


def test_dist_init_port_in_use_exits_1(spawn):
    http_port, dist_port = free_ports(2)
    with socket.socket() as holder:
        holder.bind((LOCALHOST, dist_port))
        holder.listen(1)
        head = spawn(group_args(dist_port), env=ENV, name="head", port=http_port)
        assert head.wait(10) == 1, head.log()
    assert f"Cannot listen on the dist-init port {LOCALHOST}:{dist_port}" in head.log()
