"""SIMULATED SGLang server (sglang-sim) - no GPU.

A stand-in for `python3 -m sglang.launch_server`, following SGLang 0.5.3.post3
on the wire. No model is loaded: replies are deterministic simulated words and
their timing follows a simple model of a GPU server. Standard library only.

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

import argparse
import collections
import hmac
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from sglang import NEW, __version__

SIM_MARKER = "[sglang-sim]"
BANNER = "SIMULATED SGLang server (sglang-sim) \u2014 no GPU"
READY_LINE = "The server is fired up and ready to roll!"

# Choices as in SGLang 0.5.3.post3's sglang/srt/server_args.py (tests/test_upstream_contract.py);
# modelopt_fp4 is NVFP4.
QUANTIZATION_CHOICES = [
    "awq", "fp8", "gptq", "marlin", "gptq_marlin", "awq_marlin", "bitsandbytes", "gguf",
    "modelopt", "modelopt_fp4", "petit_nvfp4", "w8a8_int8", "w8a8_fp8", "moe_wna16", "qoq",
    "w4afp8", "mxfp4",
]
LOAD_FORMAT_CHOICES = [
    "auto", "pt", "safetensors", "npcache", "dummy", "sharded_state", "gguf",
    "bitsandbytes", "layered", "remote", "remote_instance",
]
ATTENTION_BACKEND_CHOICES = [
    "triton", "torch_native", "flex_attention", "nsa", "cutlass_mla", "fa3", "fa4",
    "flashinfer", "flashmla", "trtllm_mla", "trtllm_mha", "dual_chunk_flash_attn",
    "aiter", "wave", "intel_amx", "ascend",
]
KV_CACHE_DTYPE_CHOICES = ["auto", "fp8_e5m2", "fp8_e4m3"]
DTYPE_CHOICES = ["auto", "half", "float16", "bfloat16", "float", "float32"]
SCHEDULE_POLICY_CHOICES = ["lpm", "random", "fcfs", "dfs-weight", "lof", "priority"]
LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}

TTFT_BUCKETS = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400]
E2E_BUCKETS = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400,
               600, 1200, 1800, 2400]
ITL_BUCKETS = [0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040,
               0.060, 0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.0, 2.0, 4.0, 6.0, 8.0]

# Words of the simulated replies; the first word always says what this is.
_VOCAB = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
    "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
    "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est"
).split()

# ----------------------------------------------------------------------------- logging

_log_lock = threading.Lock()
_log_threshold = LOG_LEVELS["info"]


def log(msg, level="info"):
    if LOG_LEVELS.get(level, 20) < _log_threshold:
        return
    ts = time.strftime("%Y-%m-%d %H:%M:%S")
    # SGLang's own format is "[time] message"; the sim marker prefixes every message.
    tag = "" if level == "info" else f"{level.upper()}: "
    line = f"[{ts}] {SIM_MARKER} {tag}{msg}\n"
    with _log_lock:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _env_float(name, default):
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        log(f"ignoring {name}={raw!r}: not a number", "warning")
        return default


def _env_int(name, default):
    value = _env_float(name, None)
    return default if value is None else int(value)


# ----------------------------------------------------------------------------- arguments

def build_parser():
    p = argparse.ArgumentParser(
        prog="python3 -m sglang.launch_server",
        description=(
            f"SIMULATED SGLang server (sglang-sim {__version__}): a stand-in for "
            "sglang.launch_server with SGLang's flag names. No GPU is used and no "
            "weights are loaded; replies are simulated. Simulation knobs are "
            "SGLANG_SIM_* environment variables (see sglang/_sim_server.py)."
        ),
    )
    # Model and tokenizer
    p.add_argument("--model-path", "--model", dest="model_path", type=str, required=True,
                   help="The path of the model weights: a local folder or a Hugging Face repo ID.")
    p.add_argument("--tokenizer-path", type=str, default=None, help="The path of the tokenizer.")
    p.add_argument("--tokenizer-mode", type=str, default="auto", choices=["auto", "slow"],
                   help="Tokenizer mode (simulated tokenizer splits on whitespace).")
    p.add_argument("--skip-tokenizer-init", action="store_true", help="Skip tokenizer init.")
    p.add_argument("--load-format", type=str, default="auto", choices=LOAD_FORMAT_CHOICES,
                   help="The format of the model weights to load.")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="Whether to allow custom models defined on the Hub in their own files.")
    p.add_argument("--dtype", type=str, default="auto", choices=DTYPE_CHOICES,
                   help="Data type for model weights and activations.")
    p.add_argument("--kv-cache-dtype", type=str, default="auto", choices=KV_CACHE_DTYPE_CHOICES,
                   help="Data type for kv cache storage.")
    p.add_argument("--quantization", type=str, default=None, choices=QUANTIZATION_CHOICES,
                   help="The quantization method (modelopt_fp4 = NVFP4).")
    p.add_argument("--context-length", type=int, default=None,
                   help="The model's maximum context length (default: from config.json, else 32768 in the sim).")
    p.add_argument("--device", type=str, default=None, help="The device to use (simulated).")
    p.add_argument("--served-model-name", type=str, default=None,
                   help="Override the model name returned by the v1/models endpoint.")
    p.add_argument("--chat-template", type=str, default=None, help="The builtin chat template name or path.")
    p.add_argument("--revision", type=str, default=None,
                   help="The specific model version to use (branch, tag or commit id).")
    p.add_argument("--download-dir", type=str, default=None, help="Model download directory for huggingface.")
    # HTTP server
    p.add_argument("--host", type=str, default="127.0.0.1", help="The host of the HTTP server.")
    p.add_argument("--port", type=int, default=30000, help="The port of the HTTP server.")
    p.add_argument("--skip-server-warmup", action="store_true", help="If set, skip warmup.")
    p.add_argument("--api-key", type=str, default=None,
                   help="Set API key of the server. It is also used in the OpenAI API compatible server.")
    # Memory and scheduling
    p.add_argument("--mem-fraction-static", type=float, default=None,
                   help="The fraction of the memory used for static allocation (model weights and KV cache).")
    p.add_argument("--max-running-requests", type=int, default=None,
                   help="The maximum number of running requests.")
    p.add_argument("--max-total-tokens", type=int, default=None,
                   help="The maximum number of tokens in the memory pool.")
    p.add_argument("--chunked-prefill-size", type=int, default=None,
                   help="The maximum number of tokens in a chunk for the chunked prefill.")
    p.add_argument("--max-prefill-tokens", type=int, default=16384,
                   help="The maximum number of tokens in a prefill batch.")
    p.add_argument("--schedule-policy", type=str, default="fcfs", choices=SCHEDULE_POLICY_CHOICES,
                   help="The scheduling policy of the requests.")
    p.add_argument("--schedule-conservativeness", type=float, default=1.0,
                   help="How conservative the schedule policy is.")
    p.add_argument("--page-size", type=int, default=None, help="The number of tokens in a page.")
    # Parallelism
    # As server_args.py: no --tp/--dp options (argparse takes them as abbreviations of --tp-size/--dp-size).
    p.add_argument("--tensor-parallel-size", "--tp-size", dest="tp_size", type=int, default=1,
                   help="The tensor parallelism size.")
    p.add_argument("--data-parallel-size", "--dp-size", dest="dp_size", type=int, default=1,
                   help="The data parallelism size.")
    p.add_argument("--expert-parallel-size", "--ep-size", "--ep", dest="ep_size", type=int, default=1,
                   help="The expert parallelism size.")
    p.add_argument("--enable-dp-attention", action="store_true",
                   help="Enable data parallelism for attention and tensor parallelism for FFN.")
    p.add_argument("--nnodes", type=int, default=1, help="The number of nodes.")
    p.add_argument("--node-rank", type=int, default=0, help="The node rank.")
    p.add_argument("--dist-init-addr", "--nccl-init-addr", dest="dist_init_addr", type=str, default=None,
                   help="The host address for initializing distributed backend (e.g., 192.168.0.2:25000).")
    # Runtime options
    p.add_argument("--stream-interval", type=int, default=1,
                   help="The interval (in decoding iterations) for streaming.")
    p.add_argument("--random-seed", type=int, default=None, help="The random seed.")
    p.add_argument("--watchdog-timeout", type=float, default=300,
                   help="Set watchdog timeout in seconds.")
    p.add_argument("--log-level", type=str, default="info", help="The logging level of all loggers.")
    p.add_argument("--log-level-http", type=str, default=None, help="The logging level of the HTTP server.")
    p.add_argument("--log-requests", action="store_true", help="Log metadata of all requests.")
    p.add_argument("--enable-metrics", action="store_true", help="Enable Prometheus metrics at /metrics.")
    p.add_argument("--enable-cache-report", action="store_true",
                   help="Return number of cached tokens in usage.prompt_tokens_details.")
    # Kernels and optimisations
    p.add_argument("--attention-backend", type=str, default=None, choices=ATTENTION_BACKEND_CHOICES,
                   help="Choose the kernels for attention layers.")
    p.add_argument("--disable-radix-cache", action="store_true", help="Disable RadixAttention prefix cache.")
    p.add_argument("--disable-cuda-graph", action="store_true", help="Disable cuda graph.")
    if NEW:  # 0.5.23 split it per phase (arg_groups/fields/exec_.py); the old name is ambiguous there
        p.add_argument("--cuda-graph-max-bs-decode", type=int, default=None,
                       help="Maximum batch size captured for the decode cuda graph.")
        p.add_argument("--cuda-graph-max-bs-prefill", type=int, default=None,
                       help="Maximum batch size captured for the prefill cuda graph.")
    else:
        p.add_argument("--cuda-graph-max-bs", type=int, default=None, help="The maximum batch size for cuda graph.")
    p.add_argument("--disable-overlap-schedule", action="store_true",
                   help="Disable the overlap scheduler.")
    p.add_argument("--enable-mixed-chunk", action="store_true",
                   help="Mix prefill and decode in a batch when using chunked prefill.")
    p.add_argument("--enable-torch-compile", action="store_true",
                   help="Optimize the model with torch.compile (simulated: adds SGLANG_SIM_COMPILE_DELAY to startup).")
    p.add_argument("--torch-compile-max-bs", type=int, default=32,
                   help="Set the maximum batch size when using torch compile.")
    p.add_argument("--disable-custom-all-reduce", action="store_true", help="Disable the custom all-reduce kernel.")
    p.add_argument("--allow-auto-truncate", action="store_true",
                   help="Truncate requests that exceed the maximum input length.")
    # Parsers
    p.add_argument("--reasoning-parser", type=str, default=None, help="Specify the parser for reasoning models.")
    p.add_argument("--tool-call-parser", type=str, default=None, help="Specify the parser for tool calls.")
    return p


def parse_dist_init_addr(value):
    """'host:port' or '[ipv6]:port' -> (host, port); raises ValueError otherwise."""
    v = (value or "").strip()
    if v.startswith("["):
        host, sep, rest = v[1:].partition("]")
        port = rest[1:] if sep and rest.startswith(":") else ""
    else:
        host, _sep, port = v.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--dist-init-addr must be HOST:PORT (e.g. 192.168.0.2:25000), got {value!r}")
    return host, int(port)


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    # Multi-node flags: usage errors, so argparse-style (exit 2).
    if args.nnodes > 1:
        if not args.dist_init_addr:
            parser.error(f"--dist-init-addr HOST:PORT is required with --nnodes {args.nnodes}: "
                         "every node joins the distributed init of the head (node rank 0) there")
        try:
            parse_dist_init_addr(args.dist_init_addr)
        except ValueError as exc:
            parser.error(str(exc))
    if args.node_rank < 0 or (args.nnodes >= 1 and args.node_rank >= args.nnodes):
        parser.error(f"--node-rank {args.node_rank} is out of range for --nnodes {args.nnodes} "
                     f"(0 <= node-rank < nnodes; 0 is the head)")
    return args


def server_args_repr(args):
    """What SGLang's startup line prints after `server_args=`, api_key included, as upstream: 0.5.3.post3's
    f"{server_args=}" the ServerArgs dataclass, 0.5.23 its resolved dict (sglang/srt/entrypoints/engine.py of
    each; docs/upstream.md)."""
    if NEW:
        return repr(dict(vars(args)))
    return "ServerArgs(" + ", ".join(f"{k}={v!r}" for k, v in vars(args).items()) + ")"


# ----------------------------------------------------------------------------- simulated model

def count_tokens(text):
    """The simulated tokenizer: one token per whitespace-separated word."""
    if not text:
        return 0
    return len(text.split())


def natural_length(prompt_text):
    """Length (16..64 words) the simulated model 'wants' to answer with."""
    return 16 + zlib.crc32(prompt_text.encode("utf-8", "replace")) % 49


def simulated_words(prompt_text, n):
    """n deterministic words for a prompt; the first always reads 'simulated'."""
    if n <= 0:
        return []
    rng = random.Random(zlib.crc32(prompt_text.encode("utf-8", "replace")))
    return ["simulated"] + [rng.choice(_VOCAB) for _ in range(n - 1)]


def read_model_config(model_path):
    if not model_path.startswith("/") or not os.path.isdir(model_path):
        return {}
    try:
        with open(os.path.join(model_path, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        return cfg if isinstance(cfg, dict) else {}
    except (OSError, ValueError):
        return {}


class Histogram:
    def __init__(self, buckets):
        self.buckets = list(buckets)
        self.counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, v):
        self.sum += v
        self.count += 1
        for i, b in enumerate(self.buckets):
            if v <= b:
                self.counts[i] += 1


class ClientGone(Exception):
    pass


class Rejected(Exception):
    def __init__(self, status, message, err_type="BadRequestError"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type


# ----------------------------------------------------------------------------- server state

class SimState:
    """Everything the HTTP handlers share: phase, scheduler slots, metrics."""

    def __init__(self, args):
        self.args = args
        self.cfg = read_model_config(args.model_path)
        self.served_model_name = args.served_model_name or args.model_path
        ctx = args.context_length or self.cfg.get("max_position_embeddings") or 32768
        self.context_length = int(ctx)
        self.mem_fraction = args.mem_fraction_static if args.mem_fraction_static is not None else 0.85
        self.max_total_tokens = args.max_total_tokens or int(400000 * self.mem_fraction)
        self.tokens_per_sec = max(_env_float("SGLANG_SIM_TOKENS_PER_SEC", 200.0), 0.001)
        self.prefill_per_sec = max(_env_float("SGLANG_SIM_PREFILL_TOKENS_PER_SEC", 20000.0), 0.001)
        self.max_batch = max(1, _env_int("SGLANG_SIM_MAX_BATCH", args.max_running_requests or 64))
        self.die_after = _env_int("SGLANG_SIM_DIE_AFTER", 0)
        self.fail_mode = os.environ.get("SGLANG_SIM_FAIL", "").strip()
        self.start_time = time.time()

        self.phase = "starting"  # waiting_for_nodes | starting | ready | stuck | shutting_down
        self.group = None  # HeadGroup on the head of a multi-node group (--nnodes > 1)
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.queue = collections.deque()
        self.running = 0
        self.inflight = 0
        self.used_tokens = 0
        self.served_generations = 0
        self.dying = False

        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.num_requests_total = 0
        self.num_aborted_total = 0
        self.ttft = Histogram(TTFT_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)
        self.recent_tokens = collections.deque()  # (timestamp, n) for gen_throughput

    # -- phase
    def is_ready(self):
        return self.phase == "ready"

    # -- scheduler slots (FIFO)
    def acquire_slot(self, alive):
        with self.cond:
            ticket = object()
            self.queue.append(ticket)
            try:
                while not (self.queue[0] is ticket and self.running < self.max_batch):
                    self.cond.wait(0.25)
                    if not alive():
                        raise ClientGone()
            except BaseException:
                self.queue.remove(ticket)
                self.cond.notify_all()
                raise
            self.queue.popleft()
            self.running += 1
            self.cond.notify_all()

    def release_slot(self):
        with self.cond:
            self.running -= 1
            self.cond.notify_all()

    def note_tokens(self, n):
        now = time.time()
        with self.lock:
            self.recent_tokens.append((now, n))
            while self.recent_tokens and self.recent_tokens[0][0] < now - 10:
                self.recent_tokens.popleft()

    def gen_throughput(self):
        now = time.time()
        with self.lock:
            total = sum(n for t, n in self.recent_tokens if t >= now - 5)
        return total / 5.0


class Plan:
    """One generation: its prompt size, the words it will produce and why it stops."""

    def __init__(self, prompt_text, prompt_tokens, max_new, ignore_eos, context_length):
        if max_new is not None and max_new < 0:
            raise Rejected(400, "max_new_tokens must be at least 0")
        if prompt_tokens >= context_length:
            raise Rejected(400, f"The input ({prompt_tokens} tokens) is longer than the model's "
                                f"context length ({context_length} tokens).")
        if max_new is not None and prompt_tokens + max_new > context_length:
            raise Rejected(
                400,
                f"Requested token count exceeds the model's maximum context length of "
                f"{context_length} tokens. You requested a total of {prompt_tokens + max_new} "
                f"tokens: {prompt_tokens} tokens from the input messages and {max_new} tokens "
                f"for the completion. Please reduce the number of tokens in the input messages "
                f"or the completion to fit within the limit.")
        natural = natural_length(prompt_text)
        if max_new is None:
            n, finish = min(natural, context_length - prompt_tokens), "stop"
        elif ignore_eos or max_new <= natural:
            n, finish = max_new, "length"
        else:
            n, finish = natural, "stop"
        self.prompt_tokens = prompt_tokens
        self.words = simulated_words(prompt_text, n)
        self.finish = finish
        self.rid = uuid.uuid4().hex

    @property
    def completion_tokens(self):
        return len(self.words)

    def piece(self, i):
        return self.words[i] if i == 0 else " " + self.words[i]


def run_generation(state, plan, emit, alive):
    """Drive one generation in real time.

    emit(start, end) is called when tokens [start, end) are produced (grouped by
    --stream-interval). Raises ClientGone if emit fails or the client left.
    Returns (ttft_seconds, e2e_seconds).
    """
    t_arrive = time.monotonic()
    with state.lock:
        state.inflight += 1
    try:
        state.acquire_slot(alive)
        n = plan.completion_tokens
        i = 0
        try:
            with state.lock:
                state.used_tokens += plan.prompt_tokens
            t_start = time.monotonic()
            first_at = t_start + max(plan.prompt_tokens / state.prefill_per_sec, 0.001)
            step = 1.0 / state.tokens_per_sec
            interval = max(1, state.args.stream_interval)
            ttft = None
            last_emit = None
            if n == 0:
                _sleep_until(first_at)
                ttft = time.monotonic() - t_arrive
            while i < n:
                end = min(n, i + interval) if i > 0 else 1
                _sleep_until(first_at + (end - 1) * step)
                try:
                    emit(i, end)
                except (OSError, ValueError) as exc:
                    raise ClientGone() from exc
                now = time.monotonic()
                if ttft is None:
                    ttft = now - t_arrive
                else:
                    per = (now - last_emit) / (end - i)
                    with state.lock:
                        for _ in range(end - i):
                            state.itl.observe(per)
                last_emit = now
                with state.lock:
                    state.used_tokens += end - i
                state.note_tokens(end - i)
                i = end
            e2e = time.monotonic() - t_arrive
            with state.lock:
                state.prompt_tokens_total += plan.prompt_tokens
                state.generation_tokens_total += n
                state.num_requests_total += 1
                state.ttft.observe(ttft)
                state.e2e.observe(e2e)
            return ttft, e2e
        finally:
            with state.lock:
                state.used_tokens -= plan.prompt_tokens + i
            state.release_slot()
    except ClientGone:
        with state.lock:
            state.num_aborted_total += 1
        raise
    finally:
        with state.lock:
            state.inflight -= 1
            state.cond.notify_all()


def _sleep_until(t):
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


# ----------------------------------------------------------------------------- HTTP

# utils/common.py add_api_key_middleware (0.5.3.post3); utils/auth.py (0.5.23) also lets /ready through.
AUTH_EXEMPT_PREFIXES = ("/health", "/metrics", "/ready") if NEW else ("/health", "/metrics")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sglang-sim/" + __version__
    sys_version = ""
    state = None  # set on the subclass made per server

    # -- plumbing
    def log_message(self, fmt, *args):
        log(f"{self.client_address[0]}:{self.client_address[1]} - {fmt % args}", "warning")

    def log_request(self, code="-", size="-"):
        # uvicorn-style access line
        code = getattr(code, "value", code)
        log(f'{self.client_address[0]}:{self.client_address[1]} - "{self.requestline}" {code}', "info")

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status, body=b"", content_type="application/json", extra_headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _openai_error(self, status, message, err_type="BadRequestError"):
        self._send(status, {"object": "error", "message": message, "type": err_type,
                            "param": None, "code": status})

    def _start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data):
        if isinstance(data, dict):
            data = b"data: " + json.dumps(data).encode() + b"\n\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self):
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _alive(self):
        return not self.state.dying

    # -- dispatch
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # entrypoints/http_server.py of the version: 0.5.23 adds /ready, /model_info and /server_info
    # (keeping the get_ names) and has dropped /get_load.
    ROUTES = {
        "/health": ("GET", "h_health"),
        "/health_generate": ("GET", "h_health"),
        "/v1/models": ("GET", "h_models"),
        "/get_model_info": ("GET", "h_model_info"),
        "/get_server_info": ("GET", "h_server_info"),
        **({"/ready": ("GET", "h_health"), "/model_info": ("GET", "h_model_info"),
            "/server_info": ("GET", "h_server_info")} if NEW else {"/get_load": ("GET", "h_get_load")}),
        "/flush_cache": ("GET POST", "h_flush_cache"),
        "/metrics": ("GET", "h_metrics"),
        "/v1/chat/completions": ("POST", "h_chat"),
        "/v1/completions": ("POST", "h_completions"),
        "/generate": ("POST PUT", "h_generate"),
    }

    def _dispatch(self, method):
        st = self.state
        if st.dying:
            # The process is about to exit (SGLANG_SIM_DIE_AFTER): drop the connection.
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        path = urlsplit(self.path).path
        if len(path) > 1:
            path = path.rstrip("/")
        if st.args.api_key and not path.startswith(AUTH_EXEMPT_PREFIXES):
            auth = self.headers.get("Authorization", "")
            expected = "Bearer " + st.args.api_key
            if not hmac.compare_digest(auth.encode(), expected.encode()):
                self._read_body()
                self._send(401, {"error": "Unauthorized"})
                return
        route = self.ROUTES.get(path)
        if route is None:
            self._read_body()
            self._send(404, {"detail": "Not Found"})
            return
        if method not in route[0].split():
            self._read_body()
            self._send(405, {"detail": "Method Not Allowed"})
            return
        body = self._read_body()
        try:
            getattr(self, route[1])(body)
        except Rejected as exc:
            self._openai_error(exc.status, exc.message, exc.err_type)
        except ClientGone:
            self.close_connection = True

    # -- read-only endpoints
    def h_health(self, _body):
        st = self.state
        self._send(200 if st.is_ready() else 503, b"", "text/plain")

    def h_models(self, _body):
        st = self.state
        self._send(200, {"object": "list", "data": [{
            "id": st.served_model_name, "object": "model", "created": int(st.start_time),
            "owned_by": "sglang", "root": st.served_model_name, "parent": None,
            "max_model_len": st.context_length}]})

    def h_model_info(self, _body):
        st = self.state
        self._send(200, {
            "model_path": st.args.model_path,
            "tokenizer_path": st.args.tokenizer_path or st.args.model_path,
            "is_generation": True,
            "preferred_sampling_params": None,
            "weight_version": "default",
            "has_image_understanding": False,
            "has_audio_understanding": False,
            "model_type": st.cfg.get("model_type"),
            "architectures": st.cfg.get("architectures"),
            "served_model_name": st.served_model_name,
            "simulated": True,
        })

    def h_server_info(self, _body):
        st = self.state
        info = dict(vars(st.args))  # api_key included, as upstream's **dataclasses.asdict(server_args)
        info.update({
            "version": __version__,
            "simulated": True,
            "status": st.phase,
            "max_total_num_tokens": st.max_total_tokens,
            "max_req_input_len": st.context_length - 1,
            "internal_states": [{
                "last_gen_throughput": st.gen_throughput(),
                "avg_spec_accept_length": None,
                "memory_usage": {"weight": 0.0, "kvcache": 0.0, "token_capacity": st.max_total_tokens},
            }],
            "joined_ranks": st.group.joined_ranks() if st.group else [0],
            "nodes": st.group.describe() if st.group else None,
            "sim": {
                "tokens_per_sec": st.tokens_per_sec,
                "prefill_tokens_per_sec": st.prefill_per_sec,
                "max_batch": st.max_batch,
                "context_length": st.context_length,
            },
        })
        self._send(200, info)

    def h_get_load(self, _body):
        st = self.state
        with st.lock:
            load = [{"dp_rank": 0, "num_reqs": st.running + len(st.queue),
                     "num_waiting_reqs": len(st.queue), "num_tokens": st.used_tokens}]
        self._send(200, load)

    def h_flush_cache(self, _body):
        self._send(200, "Cache flushed.\nPlease check backend logs for more details. "
                        "(When there are running or waiting requests, the operation will not be performed.)\n",
                   "text/plain")

    def h_metrics(self, _body):
        st = self.state
        if not st.args.enable_metrics:
            self._send(404, {"detail": "Not Found"})
            return
        self._send(200, render_metrics(st), "text/plain; version=0.0.4; charset=utf-8")

    # -- generation endpoints
    def _parse_json(self, body):
        try:
            req = json.loads(body or b"{}")
        except ValueError as exc:
            raise Rejected(400, f"Invalid JSON body: {exc}")
        if not isinstance(req, dict):
            raise Rejected(400, "The request body must be a JSON object.")
        return req

    def _check_ready(self):
        st = self.state
        if st.phase == "shutting_down":
            return  # as upstream: draining turns away only /health; new requests are served and waited for
        if not st.is_ready():
            raise Rejected(503, "The server is not ready yet: simulated weight loading / warmup "
                                "in progress.", "ServiceUnavailableError")

    def _served(self):
        st = self.state
        with st.lock:
            st.served_generations += 1
            done = st.served_generations
        if st.die_after and done >= st.die_after and not st.dying:
            st.dying = True
            log(f"SGLANG_SIM_DIE_AFTER={st.die_after}: served {done} generation requests, "
                "simulating a crash (exit 1)", "error")
            timer = threading.Timer(0.2, os._exit, (1,))
            timer.daemon = True
            timer.start()

    def _max_tokens(self, req, *names, default=None):
        for name in names:
            v = req.get(name)
            if v is not None:
                if not isinstance(v, int) or isinstance(v, bool):
                    raise Rejected(400, f"{name} must be an integer")
                return v
        return default

    def h_chat(self, body):
        req = self._parse_json(body)
        msgs = req.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise Rejected(400, "messages must be a non-empty list")
        texts = []
        for m in msgs:
            if not isinstance(m, dict):
                raise Rejected(400, "each message must be an object")
            c = m.get("content")
            if isinstance(c, str):
                texts.append(c)
            elif isinstance(c, list):
                texts.extend(p.get("text", "") for p in c if isinstance(p, dict) and p.get("type") == "text")
        prompt = "\n".join(texts)
        self._check_ready()
        plan = Plan(prompt, count_tokens(prompt),
                    self._max_tokens(req, "max_completion_tokens", "max_tokens"),
                    bool(req.get("ignore_eos")), self.state.context_length)
        model = req.get("model") or self.state.served_model_name
        cid = "chatcmpl-" + plan.rid
        created = int(time.time())
        usage = {"prompt_tokens": plan.prompt_tokens, "completion_tokens": plan.completion_tokens,
                 "total_tokens": plan.prompt_tokens + plan.completion_tokens,
                 "prompt_tokens_details": None}

        if not req.get("stream"):
            run_generation(self.state, plan, lambda a, b: None, self._alive)
            self._send(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(plan.words),
                                                     "reasoning_content": None, "tool_calls": None},
                             "logprobs": None, "finish_reason": plan.finish, "matched_stop": None}],
                "usage": usage})
            self._served()
            return

        def chunk(delta, finish=None):
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                    "usage": None}

        self._start_stream()
        first = [True]

        def emit(a, b):
            if first[0]:
                first[0] = False
                self._chunk(chunk({"role": "assistant", "content": ""}))
            self._chunk(chunk({"content": "".join(plan.piece(i) for i in range(a, b))}))

        run_generation(self.state, plan, emit, self._alive)
        try:
            if first[0]:
                self._chunk(chunk({"role": "assistant", "content": ""}))
            self._chunk(chunk({}, plan.finish))
            if (req.get("stream_options") or {}).get("include_usage"):
                self._chunk({"id": cid, "object": "chat.completion.chunk", "created": created,
                             "model": model, "choices": [], "usage": usage})
            self._end_stream()
        except (OSError, ValueError):
            raise ClientGone()
        self._served()

    def h_completions(self, body):
        req = self._parse_json(body)
        prompt = req.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
            prompt_text, prompt_tokens = " ".join(str(t) for t in prompt), len(prompt)
        elif isinstance(prompt, str):
            prompt_text, prompt_tokens = prompt, count_tokens(prompt)
        else:
            raise Rejected(400, "prompt must be a string or a list of token ids "
                                "(batched prompts are not simulated)")
        self._check_ready()
        # SGLang's CompletionRequest defaults max_tokens to 16, as OpenAI does.
        plan = Plan(prompt_text, prompt_tokens, self._max_tokens(req, "max_tokens", default=16),
                    bool(req.get("ignore_eos")), self.state.context_length)
        model = req.get("model") or self.state.served_model_name
        cid = "cmpl-" + plan.rid
        created = int(time.time())
        usage = {"prompt_tokens": plan.prompt_tokens, "completion_tokens": plan.completion_tokens,
                 "total_tokens": plan.prompt_tokens + plan.completion_tokens,
                 "prompt_tokens_details": None}

        if not req.get("stream"):
            run_generation(self.state, plan, lambda a, b: None, self._alive)
            text = " ".join(plan.words)
            if req.get("echo"):
                text = prompt_text + text
            self._send(200, {
                "id": cid, "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": text, "logprobs": None,
                             "finish_reason": plan.finish, "matched_stop": None}],
                "usage": usage})
            self._served()
            return

        def chunk(text, finish=None):
            return {"id": cid, "object": "text_completion", "created": created, "model": model,
                    "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
                    "usage": None}

        self._start_stream()
        run_generation(self.state, plan,
                       lambda a, b: self._chunk(chunk("".join(plan.piece(i) for i in range(a, b)))),
                       self._alive)
        try:
            self._chunk(chunk("", plan.finish))
            if (req.get("stream_options") or {}).get("include_usage"):
                self._chunk({"id": cid, "object": "text_completion", "created": created,
                             "model": model, "choices": [], "usage": usage})
            self._end_stream()
        except (OSError, ValueError):
            raise ClientGone()
        self._served()

    def h_generate(self, body):
        req = self._parse_json(body)
        text, ids = req.get("text"), req.get("input_ids")
        if isinstance(text, list) and len(text) == 1:
            text = text[0]
        if isinstance(text, str):
            prompt_text, prompt_tokens = text, count_tokens(text)
        elif isinstance(ids, list) and all(isinstance(t, int) for t in ids):
            prompt_text, prompt_tokens = " ".join(str(t) for t in ids), len(ids)
        else:
            raise Rejected(400, "Either text or input_ids should be provided "
                                "(batched requests are not simulated)")
        sp = req.get("sampling_params") or {}
        if not isinstance(sp, dict):
            raise Rejected(400, "sampling_params must be an object")
        self._check_ready()
        # SGLang's SamplingParams default max_new_tokens is 128.
        plan = Plan(prompt_text, prompt_tokens, self._max_tokens(sp, "max_new_tokens", default=128),
                    bool(sp.get("ignore_eos")), self.state.context_length)
        rid = req.get("rid") if isinstance(req.get("rid"), str) else plan.rid

        def out(upto, done, e2e=None):
            finish = None
            if done:
                finish = ({"type": "length", "length": upto} if plan.finish == "length"
                          else {"type": "stop", "matched": None})
            meta = {"id": rid, "finish_reason": finish, "prompt_tokens": plan.prompt_tokens,
                    "completion_tokens": upto, "cached_tokens": 0, "weight_version": "default"}
            if e2e is not None:
                meta["e2e_latency"] = e2e
            return {"text": " ".join(plan.words[:upto]), "meta_info": meta}

        if not req.get("stream"):
            _ttft, e2e = run_generation(self.state, plan, lambda a, b: None, self._alive)
            self._send(200, out(plan.completion_tokens, True, e2e))
            self._served()
            return

        self._start_stream()
        n = plan.completion_tokens

        def emit(a, b):
            self._chunk(out(b, b == n))

        _ttft, _e2e = run_generation(self.state, plan, emit, self._alive)
        try:
            if n == 0:
                self._chunk(out(0, True))
            self._end_stream()
        except (OSError, ValueError):
            raise ClientGone()
        self._served()


def _label(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(st):
    labels = f'model_name="{_label(st.served_model_name)}"'
    out = []

    def metric(name, mtype, doc, value):
        out.append(f"# HELP {name} {doc}")
        out.append(f"# TYPE {name} {mtype}")
        out.append(f"{name}{{{labels}}} {value}")

    def histogram(name, doc, h):
        out.append(f"# HELP {name} {doc}")
        out.append(f"# TYPE {name} histogram")
        cumulative = 0
        for b, c in zip(h.buckets, h.counts):
            cumulative = c  # counts are already cumulative (v <= b for every b above v)
            out.append(f'{name}_bucket{{{labels},le="{float(b)}"}} {cumulative}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {h.count}')
        out.append(f"{name}_sum{{{labels}}} {h.sum}")
        out.append(f"{name}_count{{{labels}}} {h.count}")

    throughput = st.gen_throughput()
    with st.lock:
        metric("sglang:num_running_reqs", "gauge", "The number of running requests.", st.running)
        metric("sglang:num_queue_reqs", "gauge", "The number of requests in the waiting queue.", len(st.queue))
        metric("sglang:num_used_tokens", "gauge", "The number of used tokens.", st.used_tokens)
        metric("sglang:token_usage", "gauge", "The token usage.", round(st.used_tokens / st.max_total_tokens, 6))
        metric("sglang:gen_throughput", "gauge", "The generation throughput (token/s).", throughput)
        metric("sglang:cache_hit_rate", "gauge", "The prefix cache hit rate.", 0.0)
        metric("sglang:prompt_tokens_total", "counter", "Number of prefill tokens processed.",
               st.prompt_tokens_total)
        metric("sglang:generation_tokens_total", "counter", "Number of generation tokens processed.",
               st.generation_tokens_total)
        metric("sglang:cached_tokens_total", "counter", "Number of cached prompt tokens.", 0)
        metric("sglang:num_requests_total", "counter", "Number of requests processed.", st.num_requests_total)
        metric("sglang:num_aborted_requests_total", "counter", "Number of requests aborted.",
               st.num_aborted_total)
        histogram("sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", st.ttft)
        histogram("sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", st.itl)
        histogram("sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds",
                  st.e2e)
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- process

class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a benchmark opens many connections at once

    def __init__(self, address, handler):
        if ":" in address[0]:  # IPv6 host such as "::"
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


# ----------------------------------------------------------------------------- multi-node

HELLO_TIMEOUT = 10.0  # seconds either side waits for the other's join line


def _send_line(sock, obj):
    sock.sendall(json.dumps(obj).encode() + b"\n")


def _why(exc):
    """Short reason for a socket error, e.g. 'connection refused'."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


class HeadGroup:
    """Node rank 0's side of the simulated distributed init (torch/NCCL rendezvous).

    Listens on the --dist-init-addr port; every worker rank sends one JSON hello
    line {"rank", "nnodes", "tp_size", ...} and gets {"ok": true|false, ...} back,
    then keeps the connection open. When the last rank joins, all_joined is set and
    the workers get {"event": "all_joined"}. A joined rank that drops calls on_lost
    (the head then exits 1, as a real head does when NCCL breaks).
    """

    def __init__(self, args, on_lost):
        self.args = args
        self.nnodes = args.nnodes
        self.addr = args.dist_init_addr
        self.port = parse_dist_init_addr(args.dist_init_addr)[1]
        self.bind_host = os.environ.get("SGLANG_SIM_DIST_BIND_HOST", "").strip() or "0.0.0.0"
        self.on_lost = on_lost
        self.lock = threading.Lock()
        self.members = {}  # rank -> {"peer": "ip:port", "joined_at": epoch, "sock": socket}
        self.all_joined = threading.Event()
        self.closing = False
        self.listener = None

    def bind(self):
        """Open the listener; returns an error message or None."""
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.bind_host, self.port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            return (f"Cannot listen on the dist-init port {self.bind_host}:{self.port} "
                    f"(--dist-init-addr {self.addr}): {_why(exc)}. Is another SGLang head "
                    "(or another program) using that port?")
        self.listener = sock
        return None

    def start(self):
        a = self.args
        log(f"node rank 0 of {self.nnodes} (head): distributed init on "
            f"{self.bind_host}:{self.port} (--dist-init-addr {self.addr}); no HTTP on "
            f"{a.host}:{a.port} until node rank(s) {self._missing_text()} join")
        threading.Thread(target=self._accept_loop, name="dist-accept", daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                conn, peer = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve_peer, args=(conn, f"{peer[0]}:{peer[1]}"),
                             name="dist-peer", daemon=True).start()

    # -- state for HTTP
    def _missing(self):
        return [r for r in range(1, self.nnodes) if r not in self.members]

    def _missing_text(self):
        return ", ".join(str(r) for r in self._missing())

    def joined_ranks(self):
        with self.lock:
            return [0] + sorted(self.members)

    def describe(self):
        with self.lock:
            return {"nnodes": self.nnodes, "node_rank": 0, "dist_init_addr": self.addr,
                    "dist_bind": f"{self.bind_host}:{self.port}",
                    "joined_ranks": [0] + sorted(self.members), "missing_ranks": self._missing(),
                    "workers": {str(r): {"peer": m["peer"], "joined_at": m["joined_at"]}
                                for r, m in sorted(self.members.items())}}

    # -- one worker connection
    def _check_hello(self, hello):
        a = self.args
        rank, nnodes = hello.get("rank"), hello.get("nnodes")
        if nnodes != self.nnodes:
            return (f"nnodes mismatch: the joining node runs --nnodes {nnodes}, "
                    f"the head runs --nnodes {self.nnodes}")
        if not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank < self.nnodes:
            return f"node rank {rank!r} is not a worker rank of this group (1..{self.nnodes - 1})"
        if rank in self.members:
            return f"node rank {rank} already joined (from {self.members[rank]['peer']})"
        if hello.get("tp_size") != a.tp_size:
            return (f"tp_size mismatch: the joining node runs --tp-size {hello.get('tp_size')}, "
                    f"the head runs --tp-size {a.tp_size}")
        return None

    def _serve_peer(self, conn, peer):
        rank = None
        try:
            conn.settimeout(HELLO_TIMEOUT)
            reader = conn.makefile("rb")
            line = reader.readline(65536)
            if not line:
                log(f"dist-init: {peer} closed the connection without a join message", "warning")
                return
            try:
                hello = json.loads(line)
                if not isinstance(hello, dict):
                    raise ValueError("not an object")
            except ValueError:
                log(f"dist-init: rejected a connection from {peer}: not a join message", "warning")
                _send_line(conn, {"ok": False, "error": "not a join message"})
                return
            with self.lock:
                err = None if not self.closing else "the head is shutting down"
                err = err or self._check_hello(hello)
                if err is None:
                    rank = hello["rank"]
                    self.members[rank] = {"peer": peer, "joined_at": time.time(), "sock": conn}
                    joined, complete = len(self.members) + 1, not self._missing()
            if err:
                log(f"dist-init: rejected the join of node rank {hello.get('rank')!r} from {peer}: {err}",
                    "warning")
                _send_line(conn, {"ok": False, "error": err})
                return
            _send_line(conn, {"ok": True, "nnodes": self.nnodes, "joined": joined})
            log(f"dist-init: node rank {rank} joined from {peer} ({joined} of {self.nnodes} nodes)")
            if complete:
                self._announce_complete()
            conn.settimeout(None)
            reason = "connection closed"
            try:
                while reader.readline(65536):
                    pass  # nothing is expected after the hello; read until the peer goes
            except OSError as exc:
                reason = _why(exc)
            self._lost(rank, peer, reason)
        except OSError as exc:
            if rank is not None:
                self._lost(rank, peer, _why(exc))
            else:
                log(f"dist-init: connection from {peer} failed during the join: {_why(exc)}", "warning")
        finally:
            if rank is None:
                conn.close()

    def _announce_complete(self):
        log(f"dist-init: all {self.nnodes} nodes joined (ranks 0..{self.nnodes - 1}); "
            "starting the model (simulated)")
        with self.lock:
            socks = [m["sock"] for m in self.members.values()]
        for s in socks:
            try:
                _send_line(s, {"event": "all_joined", "nnodes": self.nnodes})
            except OSError:
                pass
        self.all_joined.set()

    def _lost(self, rank, peer, reason):
        with self.lock:
            m = self.members.pop(rank, None)
            closing = self.closing
        if m:
            try:
                m["sock"].close()
            except OSError:
                pass
        if not closing:
            self.on_lost(f"node rank {rank} ({peer}) left the distributed group: {reason}. "
                         "Simulated NCCL failure: the head cannot continue without it.")

    def close(self):
        with self.lock:
            self.closing = True
            socks = [m["sock"] for m in self.members.values()]
        for s in [self.listener, *socks]:
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass


class DummyHealthHandler(Handler):
    """What a node rank > 0 serves on --host/--port once its schedulers are ready, as SGLang
    0.5.3.post3's launch_dummy_health_check_server (sglang/srt/utils/common.py:2217-2259, called
    by entrypoints/engine.py:845-847): a FastAPI app with GET /health and GET /health_generate
    (200, no body) and, with --enable-metrics, the Prometheus app mounted at /metrics
    (add_prometheus_middleware, common.py:1425-1435: any path that begins with /metrics; neither
    the Mount nor prometheus_client's ASGI app checks the method). No API key middleware. Other paths get FastAPI's 404, other methods its 405.
    Which samples a rank > 0 exports is not simulated: /metrics has none."""

    ROUTES = {"/health": ("GET", None), "/health_generate": ("GET", None)}
    enable_metrics = False  # set on the subclass made per server

    def log_request(self, code="-", size="-"):
        pass  # upstream runs this uvicorn with log_level="warning": no access lines

    def _dispatch(self, _method):
        path = urlsplit(self.path).path
        self._read_body()
        if self.enable_metrics and path.startswith("/metrics"):
            self._send(200, b"", "text/plain; version=0.0.4; charset=utf-8")
        elif path not in self.ROUTES:
            self._send(404, {"detail": "Not Found"})
        elif self.command != "GET":
            self._send(405, {"detail": "Method Not Allowed"}, extra_headers={"Allow": "GET"})
        else:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_OPTIONS(self):
        self._dispatch("OPTIONS")


class WorkerNode:
    """Node rank > 0: joins the head at --dist-init-addr and stays while joined; once every rank
    has joined, serves the dummy health server (DummyHealthHandler) on --host/--port."""

    def __init__(self, server):
        self.server = server
        self.args = server.args
        self.stop = server.stop
        self.sock = None
        self.httpd = None
        self.lock = threading.Lock()
        self.bind_failed = False

    def _tag(self):
        return f"node rank {self.args.node_rank}"

    def connect(self, host, port, timeout):
        """Retry every 0.5 s until `timeout`; returns a socket, None on stop, or an error text."""
        deadline = time.monotonic() + timeout
        next_note = time.monotonic() + 10
        while True:
            left = deadline - time.monotonic()
            try:
                return socket.create_connection((host, port), timeout=min(max(left, 0.2), 5.0))
            except OSError as exc:
                last = _why(exc)
            if time.monotonic() >= deadline:
                return (f"{self._tag()}: cannot reach the head at {self.args.dist_init_addr} "
                        f"(dist-init-addr) after {timeout:g} s: {last}")
            if time.monotonic() >= next_note:
                log(f"{self._tag()}: still waiting for the head at {self.args.dist_init_addr} ({last})")
                next_note += 10
            if self.stop.wait(min(0.5, max(deadline - time.monotonic(), 0.0))):
                return None

    def run(self):
        a = self.args
        addr = a.dist_init_addr
        host, port = parse_dist_init_addr(addr)
        timeout = max(_env_float("SGLANG_SIM_DIST_CONNECT_TIMEOUT", 60.0), 0.0)
        log(f"{self._tag()} of {a.nnodes}: worker node, serves no API (only node rank 0 does; "
            f"{a.host}:{a.port} gets a health check server once every node has joined). "
            f"Joining the head at {addr} (dist-init-addr), retrying for up to {timeout:g} s")
        got = self.connect(host, port, timeout)
        if got is None:
            log("Shutdown complete (simulated).")
            return 0
        if isinstance(got, str):
            log(got, "error")
            return 1
        self.sock = got
        try:
            self.sock.settimeout(HELLO_TIMEOUT)
            _send_line(self.sock, {"rank": a.node_rank, "nnodes": a.nnodes, "tp_size": a.tp_size,
                                   "dp_size": a.dp_size, "model_path": a.model_path,
                                   "version": __version__})
            reader = self.sock.makefile("rb")
            line = reader.readline(65536)
            reply = json.loads(line) if line else None
        except (OSError, ValueError) as exc:
            reply, line = None, None
            log(f"{self._tag()}: join at {addr} failed: {_why(exc) if isinstance(exc, OSError) else exc}",
                "error")
        if not isinstance(reply, dict):
            if line == b"":
                log(f"{self._tag()}: the head at {addr} (dist-init-addr) closed the connection "
                    "without accepting the join", "error")
            self.sock.close()
            return 1
        if not reply.get("ok"):
            log(f"{self._tag()}: the head at {addr} (dist-init-addr) rejected the join: "
                f"{reply.get('error')}", "error")
            self.sock.close()
            return 1
        log(f"{self._tag()}: joined the head at {addr} ({reply.get('joined')} of {a.nnodes} nodes); "
            "serving as a worker node")
        self.sock.settimeout(None)
        threading.Thread(target=self._watch, args=(reader,), name="dist-head", daemon=True).start()
        while not self.stop.wait(0.5):
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            httpd, self.httpd = self.httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self.bind_failed:
            log("Exiting with status 1.", "error")
            return 1
        if self.server.fatal:
            log("Exiting with status 1 (simulated NCCL failure; systemd restarts the node and it "
                "joins again).", "error")
            return 1
        log("Shutdown complete (simulated).")
        return 0

    def serve_health(self):
        """As engine.py:833-847: once this node's schedulers are ready (the sim: once the group is
        complete), the dummy health check server on --host/--port, until the node exits."""
        a = self.args
        handler = type("BoundDummyHealthHandler", (DummyHealthHandler,),
                       {"state": self.server.state, "enable_metrics": bool(a.enable_metrics)})
        with self.lock:
            if self.stop.is_set() or self.httpd is not None:
                return
            log(f"Starting dummy health check server at {a.host}:{a.port}")
            try:
                self.httpd = SimHTTPServer((a.host, a.port), handler)
            except OSError as exc:
                self.httpd = None
                failed = exc
            else:
                failed = None
                threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                 name="health", daemon=True).start()
        if failed is not None:
            self.bind_failed = True
            self.server._fatal(f"{self._tag()}: cannot bind the health check server to "
                               f"{a.host}:{a.port}: {failed}")

    def _watch(self, reader):
        reason = "connection closed"
        try:
            while True:
                line = reader.readline(65536)
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict) and msg.get("event") == "all_joined":
                    log(f"{self._tag()}: all {msg.get('nnodes')} nodes joined; loading the model "
                        "shard (simulated)")
                    self.serve_health()
        except OSError as exc:
            reason = _why(exc)
        self.server._fatal(f"{self._tag()}: lost the connection to the head at "
                           f"{self.args.dist_init_addr} (dist-init-addr): {reason}. "
                           "Simulated NCCL failure: this node cannot continue without the head.")


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
        global _log_threshold
        _log_threshold = LOG_LEVELS.get(str(a.log_level).lower(), 20)
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
