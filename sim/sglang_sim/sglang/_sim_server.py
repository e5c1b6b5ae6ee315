"""SIMULATED SGLang server (sglang-sim) - no GPU.

A stand-in for `python3 -m sglang.launch_server`, following SGLang 0.5.3.post3
on the wire. No model is loaded: replies are deterministic simulated words and
their timing follows a simple model of a GPU server. Standard library only.
This module runs the process; the rest is split by concern in sglang/_sim/ (cli,
http_server, metrics, multinode, generation, model, logs).

Flags: SGLang's own names (see `--help`); unknown flags make argparse exit 2.
A `--model-path` starting with `/` that does not exist is an error (exit 1),
like SGLang failing to load weights; anything else is taken as a hub id.
If the path is a directory with a `config.json`, `architectures`, `model_type`
and `max_position_embeddings` are read from it.

Simulated tokenizer: one token = one whitespace-separated word.

Endpoints (as the release chosen by SGLANG_SIM_UPSTREAM serves them; [0.5.23] marks its own)
  GET  /health, /health_generate, /ready[0.5.23]   503 while starting or shutting down, 200 when ready
  GET  /v1/models                          OpenAI model list (200 during startup too)
  GET  /get_model_info, /model_info[0.5.23]    model facts (200 during startup too)
  GET  /get_server_info, /server_info[0.5.23]  parsed args (api_key included, as upstream), version, "simulated": true
  POST /v1/chat/completions, /v1/completions   OpenAI style, `"stream": true` gives SSE
  POST /generate                           SGLang native (SSE with cumulative text when streaming)
  GET  /metrics                            Prometheus text, only with --enable-metrics (404 otherwise)
  GET  /get_load[0.5.3.post3 only], GET|POST /flush_cache    small extras that routers and bench tools call
With --api-key every path except /health*, /metrics (and [0.5.23] /ready) needs
`Authorization: Bearer <key>` (else 401 {"error": "Unauthorized"}).

Timing model: a request waits for one of MAX_BATCH decode slots (FIFO), then
prefill takes prompt_tokens / PREFILL_TOKENS_PER_SEC seconds and yields the first
token; each further token takes 1 / TOKENS_PER_SEC seconds. Reply length is
min(max tokens, a natural length of 16..64 words derived from the prompt), or
exactly the max with `ignore_eos`; finish_reason is "length" when the max was hit,
else "stop".

Simulation knobs (environment variables)
  SGLANG_SIM_STARTUP_DELAY           seconds until /health turns 200 (float, default 2.0)
  SGLANG_SIM_COMPILE_DELAY           extra seconds with --enable-torch-compile (default 2.0)
  SGLANG_SIM_TOKENS_PER_SEC          decode rate per request (default 200)
  SGLANG_SIM_PREFILL_TOKENS_PER_SEC  prefill rate, sets TTFT (default 20000)
  SGLANG_SIM_MAX_BATCH               requests decoded at once before others queue
                                     (default: --max-running-requests, else 64)
  SGLANG_SIM_FAIL                    crash_on_start: log, then exit 1 during startup
                                     never_healthy: serve, but /health stays 503 forever
  SGLANG_SIM_DIE_AFTER               N: exit with status 1 after serving N generation requests
  SGLANG_SIM_NUM_GPUS                GPUs per simulated node (default 1, like a DGX Spark);
                                     more GPUs per node than this in tp/dp flags -> exit 1
  SGLANG_SIM_SHUTDOWN_TIMEOUT        seconds SIGTERM waits for in-flight requests (default 30)
  SGLANG_SIM_DIST_CONNECT_TIMEOUT    seconds a worker node retries reaching the head (default 60)
  SGLANG_SIM_DIST_BIND_HOST          address the head's dist-init listener binds (default 0.0.0.0)

SIGTERM/SIGINT: /health turns 503; requests in flight and new ones are served until none
is left (up to SGLANG_SIM_SHUTDOWN_TIMEOUT), then the process exits 0.

Multi-node (one model over N nodes): every node runs the same flags plus
`--nnodes N --node-rank R --dist-init-addr HEAD_IP:PORT`. With N > 1 a missing or
malformed --dist-init-addr, or a rank outside 0..N-1, exits 2 (argparse style). The
GPUs of one model instance (tp_size, times dp_size without --enable-dp-attention)
must split evenly over the nodes and each node needs its share of
SGLANG_SIM_NUM_GPUS; dp_size > 1 over nodes needs --enable-dp-attention (exit 1).
  rank 0 (head)  listens on the dist-init port (busy port -> exit 1) and serves no HTTP
                 (connections to --host/--port are refused) until ranks 1..N-1 have
                 joined, as SGLang 0.5.3.post3 starts uvicorn only once every scheduler
                 is ready (docs/upstream.md, "Multi-node"); then it binds --host/--port
                 (busy port -> exit 1) and the startup delays run (503 meanwhile).
                 /server_info shows nnodes, node_rank, dist_init_addr, joined_ranks and
                 nodes. If a joined rank's connection drops the head logs it and exits 1
                 (a real NCCL failure kills it).
  rank > 0       connects to the head, retrying every 0.5 s up to
                 SGLANG_SIM_DIST_CONNECT_TIMEOUT (then exit 1, naming the address), sends
                 its hello and stays up while connected; exits 1 if the head goes away or
                 rejects the join, 0 on SIGTERM. Once every rank has joined it serves
                 upstream's dummy health server on --host/--port (busy port -> exit 1):
                 GET /health and /health_generate 200, /metrics with --enable-metrics (no
                 samples), no API key, anything else 404; it goes away when the node exits.
  Join protocol (JSON lines over TCP): worker -> {"rank", "nnodes", "tp_size", ...};
  head -> {"ok": true, ...} or {"ok": false, "error"} (wrong nnodes or tp_size,
  duplicate or invalid rank), later {"event": "all_joined"}.
"""

import os
import signal
import sys
import threading
import time

from sglang import __version__
from sglang._sim import logs
# The names this module held before it was split into sglang/_sim/ stay importable from here
# (sglang.launch_server, tests/test_upstream_contract.py).
from sglang._sim.cli import (  # noqa: F401
    ATTENTION_BACKEND_CHOICES, DTYPE_CHOICES, KV_CACHE_DTYPE_CHOICES, LOAD_FORMAT_CHOICES,
    QUANTIZATION_CHOICES, SCHEDULE_POLICY_CHOICES, build_parser, parse_args, parse_dist_init_addr,
    server_args_repr)
from sglang._sim.generation import ClientGone, Plan, Rejected, SimState, run_generation  # noqa: F401
from sglang._sim.http_server import AUTH_EXEMPT_PREFIXES, Handler, SimHTTPServer  # noqa: F401
from sglang._sim.logs import LOG_LEVELS, SIM_MARKER, _env_float, _env_int, log  # noqa: F401
from sglang._sim.metrics import E2E_BUCKETS, ITL_BUCKETS, TTFT_BUCKETS, Histogram, render_metrics  # noqa: F401
from sglang._sim.model import count_tokens, natural_length, read_model_config, simulated_words  # noqa: F401
from sglang._sim.multinode import HELLO_TIMEOUT, DummyHealthHandler, HeadGroup, WorkerNode  # noqa: F401

BANNER = "SIMULATED SGLang server (sglang-sim) \u2014 no GPU"
READY_LINE = "The server is fired up and ready to roll!"


class SimServer:
    def __init__(self, args):
        self.args = args
        self.state = SimState(args)
        self.stop = threading.Event()
        self.fatal = None  # set by _fatal(): the run ends with exit status 1
        self.httpd = None

    def validate(self):
        """Checks real SGLang would fail on; returns an error message or None."""
        a = self.args
        if a.model_path.startswith("/") and not os.path.exists(a.model_path):
            return (f"Failed to load model weights: {a.model_path} does not exist "
                    "(simulated weight loading; a path starting with '/' must exist).")
        if a.mem_fraction_static is not None and not 0 < a.mem_fraction_static < 1:
            return f"mem_fraction_static must be in (0, 1), got {a.mem_fraction_static}"
        if a.tp_size < 1 or a.dp_size < 1 or a.nnodes < 1:
            return "tp_size, dp_size and nnodes must be at least 1"
        # As SGLang's check_server_args: dp over nodes only with dp attention, and the
        # GPUs of one model instance (tp, or tp x dp without dp attention) split evenly.
        if a.dp_size > 1 and a.nnodes > 1 and not a.enable_dp_attention:
            return ("multi-node data parallel is not supported unless dp attention! "
                    f"(dp_size={a.dp_size} nnodes={a.nnodes}: add --enable-dp-attention)")
        gpus_needed = a.tp_size if a.enable_dp_attention else a.tp_size * a.dp_size
        if gpus_needed % a.nnodes:
            return (f"tp_size must be divisible by number of nodes: tp_size={a.tp_size} "
                    f"dp_size={a.dp_size} needs {gpus_needed} GPU(s), which do not split evenly "
                    f"over nnodes={a.nnodes}.")
        per_node = gpus_needed // a.nnodes
        have = _env_int("SGLANG_SIM_NUM_GPUS", 1)
        if per_node > have:
            return (f"Not enough GPUs: tp_size={a.tp_size} dp_size={a.dp_size} nnodes={a.nnodes} "
                    f"needs {per_node} GPU(s) per node, the simulated node has {have} "
                    "(SGLANG_SIM_NUM_GPUS).")
        return None

    def startup_sequence(self):
        """Simulated weight load, CUDA graph capture, torch.compile and warmup.
        Returns False if a stop came meanwhile."""
        a, st = self.args, self.state
        delay = max(_env_float("SGLANG_SIM_STARTUP_DELAY", 2.0), 0.0)
        compile_delay = max(_env_float("SGLANG_SIM_COMPILE_DELAY", 2.0), 0.0) if a.enable_torch_compile else 0.0
        log(f"Load weight begin. model_path={a.model_path} quantization={a.quantization} "
            f"dtype={a.dtype} (simulated)")
        if not self._wait(delay * 0.5):
            return False
        log(f"Load weight end. context_len={st.context_length} max_total_num_tokens={st.max_total_tokens} "
            f"max_running_requests={st.max_batch} mem_fraction_static={st.mem_fraction} (simulated)")
        if not a.disable_cuda_graph:
            log("Capture cuda graph begin. This can take up to several minutes. (simulated)")
        if not self._wait(delay * 0.3):
            return False
        if not a.disable_cuda_graph:
            log("Capture cuda graph end. (simulated)")
        if a.enable_torch_compile:
            log(f"Compiling the model with torch.compile (max bs {a.torch_compile_max_bs}), "
                f"simulated {compile_delay:.1f}s")
            if not self._wait(compile_delay):
                return False
        if not a.skip_server_warmup:
            log("Start of warmup request (simulated).")
        if not self._wait(delay * 0.2):
            return False
        if st.fail_mode == "never_healthy":
            st.phase = "stuck"
            log("SGLANG_SIM_FAIL=never_healthy: warmup never finishes, /health stays 503", "warning")
            return True
        st.phase = "ready"
        log(READY_LINE)
        return True

    def _wait(self, seconds):
        return not self.stop.wait(seconds) if seconds > 0 else not self.stop.is_set()

    def _on_signal(self, signum, _frame):
        if not self.stop.is_set():
            log(f"Received {signal.Signals(signum).name}: shutting down gracefully (simulated)")
        self.stop.set()

    def _fatal(self, msg):
        """A simulated NCCL failure (a peer node went away): exit 1 soon, no draining."""
        if self.stop.is_set() or self.fatal:
            return
        self.fatal = msg
        log(msg, "error")
        self.stop.set()

    def run(self):
        a, st = self.args, self.state
        logs._log_threshold = LOG_LEVELS.get(str(a.log_level).lower(), 20)
        log(BANNER)
        log(f"sglang-sim version {__version__}")
        log(f"server_args={server_args_repr(a)}")
        err = self.validate()
        if err:
            log(err, "error")
            return 1
        if st.fail_mode and st.fail_mode not in ("crash_on_start", "never_healthy"):
            log(f"unknown SGLANG_SIM_FAIL={st.fail_mode!r} (ignored)", "warning")
        if st.fail_mode == "crash_on_start":
            log(f"Load weight begin. model_path={a.model_path} (simulated)")
            time.sleep(min(0.2, _env_float("SGLANG_SIM_STARTUP_DELAY", 2.0)))
            log("SGLANG_SIM_FAIL=crash_on_start: simulated crash during startup "
                "(e.g. CUDA out of memory while loading weights)", "error")
            return 1

        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if a.nnodes > 1 and a.node_rank > 0:
            return WorkerNode(self).run()
        if a.nnodes > 1:
            group = HeadGroup(a, self._fatal)
            err = group.bind()
            if err:
                log(err, "error")
                return 1
            st.group = group
            st.phase = "waiting_for_nodes"
            group.start()
            # As 0.5.3.post3: launch_server starts uvicorn only after _launch_subprocesses has every
            # scheduler's "ready" (http_server.py:1303, :1376; engine.py:876-893), which comes
            # after the schedulers' torch.distributed init with every rank: until then the head's
            # HTTP port refuses connections.
            while not group.all_joined.wait(0.2):
                if self.stop.is_set():
                    break
            if self.stop.is_set():
                group.close()
                if self.fatal:
                    log("Exiting with status 1 (simulated NCCL failure; systemd restarts the head).", "error")
                    return 1
                log("Shutdown complete (simulated).")
                return 0
            st.phase = "starting"

        handler = type("BoundHandler", (Handler,), {"state": st})
        try:
            self.httpd = SimHTTPServer((a.host, a.port), handler)
        except OSError as exc:
            log(f"Cannot bind HTTP server to {a.host}:{a.port}: {exc}", "error")
            if st.group:
                st.group.close()
            return 1
        self.httpd.daemon_threads = True
        serve = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                 name="http", daemon=True)
        serve.start()
        host, port = self.httpd.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        log(f"Uvicorn running on http://{shown}:{port} (Press CTRL+C to quit)")

        self.startup_sequence()
        while not self.stop.wait(0.5):
            pass
        if self.fatal:
            st.phase = "shutting_down"
            st.dying = True  # drop connections, as a crashed process would
            self.httpd.shutdown()
            self.httpd.server_close()
            st.group.close()
            log("Exiting with status 1 (simulated NCCL failure; systemd restarts the head).", "error")
            return 1
        return self.shutdown()

    def shutdown(self):
        st = self.state
        st.phase = "shutting_down"
        timeout = _env_float("SGLANG_SIM_SHUTDOWN_TIMEOUT", 30.0)
        deadline = time.monotonic() + timeout
        with st.cond:
            if st.inflight:
                log(f"Waiting for {st.inflight} in-flight request(s) to finish (up to {timeout:.0f}s)")
            while st.inflight and time.monotonic() < deadline:
                st.cond.wait(0.1)
            left = st.inflight
        if left:
            log(f"{left} request(s) still running after {timeout:.0f}s; exiting anyway", "warning")
        self.httpd.shutdown()
        self.httpd.server_close()
        if st.group:
            st.group.close()  # the worker nodes see the head go and exit non-zero
        log("Shutdown complete (simulated).")
        return 0


def main(argv=None):
    try:
        sys.stderr.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):
        pass
    args = parse_args(argv)
    return SimServer(args).run()


if __name__ == "__main__":
    sys.exit(main())
