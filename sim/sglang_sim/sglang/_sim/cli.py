"""The command line of `sglang.launch_server`: SGLang's server-args flags, their checks, the startup line."""

import argparse

from sglang import NEW, __version__

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
