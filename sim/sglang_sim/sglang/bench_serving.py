"""SIMULATED sglang.bench_serving (sglang-sim) - a real load generator, simulated tokenizer.

A stand-in for `python3 -m sglang.bench_serving` (SGLang 0.5.3.post3) that needs no
torch/transformers: standard library only (threads + http.client). It REALLY sends
concurrent streaming requests to a server (the simulated one or any SGLang-compatible
endpoint) and measures TTFT, ITL, TPOT and end-to-end latency from the bytes as they
arrive, then prints the same summary block and appends the same JSON line
(--output-file) as the real tool.

What is simulated:
  - Tokenizer: one token = one whitespace-separated word. --tokenizer is accepted and
    ignored (a note is printed).
  - Datasets: `random`, `random-ids` and `generated-shared-prefix` are generated from a
    word list, seeded by --seed. The real `random` samples text from ShareGPT and
    downloads it when --dataset-path is not given; the simulation does not (a note is
    printed), so offline fleets must still ship the file for the real tool.
    `sharegpt` needs a local --dataset-path: there is no internet, nothing is downloaded.
  - --apply-chat-template is accepted and has no effect (no tokenizer templates).

Bounds (environment variables, not flags, so the command line stays the real one's):
  SGLANG_SIM_BENCH_REQUEST_TIMEOUT  seconds per request (default 600)
  SGLANG_SIM_BENCH_MAX_DURATION     seconds for the whole run; requests still open then
                                    count as failed (default 3600)
  SGLANG_SIM_BENCH_SETTLE           pause after warmup, like the real 1 s (default 1.0)
The API key is read from OPENAI_API_KEY like the real tool; --api-key is a sim-only
convenience that does the same (prefer the environment variable: argv is visible).
"""

import argparse
import http.client
import json
import math
import os
import random
import sys
import threading
import time
from datetime import datetime
from urllib.parse import urlsplit

from sglang import NEW, __version__

SIM_NOTE = f"[sglang-sim] SIMULATED bench_serving ({__version__}): whitespace tokenizer, real HTTP load"

_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there had been one all we their has would "
    "when if so what more can who will about up out them some time could into only other "
    "new then than its also two first any may these like our over such after most made "
    "system model token server request cache memory spark fleet batch prefill decode "
    "latency throughput answer question reason explain summary detail example"
).split()


# ----------------------------------------------------------------------------- helpers

def count_tokens(text):
    return len(text.split()) if text else 0


def percentile(values, p):
    """numpy.percentile with linear interpolation; 0 for an empty list (like np on [0])."""
    if not values:
        return 0.0
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return float(s[int(k)])
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def mean(values):
    return sum(values) / len(values) if values else 0.0


def std(values):
    """Population standard deviation, as numpy.std."""
    if not values:
        return 0.0
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def auth_headers(args):
    key = args.api_key or os.environ.get("OPENAI_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def fail(msg, code=1):
    print(f"ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


class DatasetRow:
    __slots__ = ("prompt", "prompt_len", "output_len")

    def __init__(self, prompt, prompt_len, output_len):
        self.prompt, self.prompt_len, self.output_len = prompt, prompt_len, output_len


class Output:
    def __init__(self, prompt_len):
        self.generated_text = ""
        self.success = False
        self.start_time = 0.0
        self.latency = 0.0
        self.ttft = 0.0
        self.itl = []
        self.prompt_len = prompt_len
        self.error = ""
        self.output_len = 0


# ----------------------------------------------------------------------------- HTTP

class Target:
    def __init__(self, base_url):
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https"):
            fail(f"unsupported base url {base_url!r}")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.prefix = u.path.rstrip("/")

    def conn(self, timeout):
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout)

    def get_json(self, path, headers, timeout=30):
        c = self.conn(timeout)
        try:
            c.request("GET", self.prefix + path, headers=headers)
            r = c.getresponse()
            body = r.read()
            return r.status, (json.loads(body) if body else None)
        finally:
            c.close()


def stream_lines(resp, deadline):
    """Yield stripped non-empty lines of an SSE body, enforcing the request deadline."""
    while True:
        if time.perf_counter() > deadline:
            raise TimeoutError("request timed out")
        line = resp.readline()
        if not line:
            return
        line = line.strip()
        if line:
            yield line.decode("utf-8", "replace")


def remove_prefix(text, prefix):
    return text[len(prefix):] if text.startswith(prefix) else text


def do_request(target, backend, path, row, model, args, headers, deadline):
    """One streaming request, parsed the way the real bench_serving parses it."""
    out = Output(row.prompt_len)
    if backend == "sglang":
        payload = {"text": row.prompt,
                   "sampling_params": {"temperature": 0.0, "max_new_tokens": row.output_len,
                                       "ignore_eos": not args.disable_ignore_eos},
                   "stream": not args.disable_stream}
    elif backend == "sglang-oai":
        payload = {"model": model, "prompt": row.prompt, "temperature": 0.0, "best_of": 1,
                   "max_tokens": row.output_len, "stream": not args.disable_stream,
                   "ignore_eos": not args.disable_ignore_eos}
    else:  # sglang-oai-chat
        payload = {"model": model, "messages": [{"role": "user", "content": row.prompt}],
                   "temperature": 0.0, "max_tokens": row.output_len,
                   "stream": not args.disable_stream, "ignore_eos": not args.disable_ignore_eos}
    payload.update(args.extra_body)
    body = json.dumps(payload).encode()
    hdrs = {"Content-Type": "application/json", **headers}

    output_len = row.output_len
    generated = ""
    ttft = 0.0
    st = out.start_time = time.perf_counter()
    last = st
    last_output_len = 0
    latency = 0.0
    conn = None
    try:
        conn = target.conn(timeout=max(0.1, deadline - st))
        conn.request("POST", target.prefix + path, body=body, headers=hdrs)
        resp = conn.getresponse()
        if resp.status != 200:
            out.error = f"HTTP {resp.status} {resp.reason}: {resp.read()[:200]!r}"
            return out
        if args.disable_stream:
            data = json.loads(resp.read())
            latency = time.perf_counter() - st
            if backend == "sglang":
                generated = data.get("text", "")
                output_len = data.get("meta_info", {}).get("completion_tokens", output_len)
            elif backend == "sglang-oai":
                generated = data["choices"][0]["text"]
                output_len = (data.get("usage") or {}).get("completion_tokens", output_len)
            else:
                generated = data["choices"][0]["message"]["content"]
                output_len = (data.get("usage") or {}).get("completion_tokens", output_len)
            out.ttft = latency
        else:
            for line in stream_lines(resp, deadline):
                chunk = remove_prefix(line, "data: ")
                latency = time.perf_counter() - st
                if chunk == "[DONE]":
                    continue
                data = json.loads(chunk)
                now = time.perf_counter()
                if backend == "sglang":
                    if data.get("text"):
                        generated = data["text"]
                        output_len = data["meta_info"]["completion_tokens"]
                        if ttft == 0.0:
                            ttft = now - st
                            out.ttft = ttft
                        else:
                            new = output_len - last_output_len
                            if new == 0:
                                continue
                            out.itl.extend([(now - last) / new] * new)
                        last = now
                        last_output_len = output_len
                else:
                    choices = data.get("choices") or [{}]
                    if backend == "sglang-oai":
                        piece = choices[0].get("text") or ""
                    else:
                        piece = (choices[0].get("delta") or {}).get("content") or ""
                    if piece:
                        if ttft == 0.0:
                            ttft = now - st
                            out.ttft = ttft
                        else:
                            out.itl.append(now - last)
                        last = now
                        generated += piece
                    output_len = (data.get("usage") or {}).get("completion_tokens", output_len)
        out.generated_text = generated
        out.success = True
        out.latency = latency
        out.output_len = output_len
    except Exception as exc:  # noqa: BLE001 - every failure is a failed request, as in the real tool
        out.success = False
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        if conn is not None:
            conn.close()
    return out


# ----------------------------------------------------------------------------- datasets

def random_text(rng, n):
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def sample_sharegpt(args, rng):
    if args.sharegpt_output_len is not None and args.sharegpt_output_len < 4:
        fail("output_len too small")
    if not args.dataset_path:
        fail("the simulated bench_serving cannot download the ShareGPT dataset (no internet in "
             "the simulation). Pass --dataset-path with a local ShareGPT JSON file "
             "(a list of {\"conversations\": [{\"from\": \"human\", \"value\": ...}, "
             "{\"from\": \"gpt\", \"value\": ...}]}).")
    try:
        with open(args.dataset_path, encoding="utf-8") as f:
            dataset = json.load(f)
    except (OSError, ValueError) as exc:
        fail(f"cannot read ShareGPT dataset {args.dataset_path}: {exc}")
    if not isinstance(dataset, list):
        fail(f"{args.dataset_path}: expected a JSON list of conversations")
    pairs = []
    for d in dataset:
        conv = d.get("conversations", d.get("conversation", [])) if isinstance(d, dict) else []
        if len(conv) >= 2:
            pairs.append((str(conv[0].get("value", "")), str(conv[1].get("value", ""))))
    rng.shuffle(pairs)
    rows = []
    for prompt, completion in pairs:
        if len(rows) == args.num_prompts:
            break
        prompt_len = count_tokens(prompt)
        output_len = (count_tokens(completion) if args.sharegpt_output_len is None
                      else args.sharegpt_output_len)
        if prompt_len < 2 or output_len < 2:
            continue
        if args.sharegpt_context_len and prompt_len + output_len > args.sharegpt_context_len:
            continue
        rows.append(DatasetRow(prompt, prompt_len, output_len))
    print(f"#Input tokens: {sum(r.prompt_len for r in rows)}")
    print(f"#Output tokens: {sum(r.output_len for r in rows)}")
    return rows


def sample_random(args, rng):
    lo_in = max(int(args.random_input_len * args.random_range_ratio), 1)
    lo_out = int(args.random_output_len * args.random_range_ratio)
    input_lens = [rng.randint(lo_in, args.random_input_len) for _ in range(args.num_prompts)]
    output_lens = [rng.randint(lo_out, args.random_output_len) for _ in range(args.num_prompts)]
    if args.dataset_name == "random" and not args.dataset_path:
        print("[sglang-sim] note: the real bench_serving samples `random` prompts from ShareGPT "
              "and downloads it without --dataset-path; the simulation generates words instead.")
    source = None
    if args.dataset_name == "random" and args.dataset_path:
        args_copy = argparse.Namespace(**vars(args))
        args_copy.num_prompts = 10 ** 9
        args_copy.sharegpt_output_len = None
        args_copy.sharegpt_context_len = None
        source = [r.prompt.split() for r in sample_sharegpt(args_copy, rng)] or None
    rows = []
    for i in range(args.num_prompts):
        if source:
            words = source[i % len(source)]
            words = (words * (input_lens[i] // len(words) + 1))[:input_lens[i]]
            prompt = " ".join(words)
        else:
            prompt = random_text(rng, input_lens[i])
        rows.append(DatasetRow(prompt, input_lens[i], output_lens[i]))
    print(f"#Input tokens: {sum(input_lens)}")
    print(f"#Output tokens: {sum(output_lens)}")
    return rows


def sample_gsp(args, rng):
    systems = [random_text(rng, args.gsp_system_prompt_len) for _ in range(args.gsp_num_groups)]
    rows = []
    for g in range(args.gsp_num_groups):
        for _ in range(args.gsp_prompts_per_group):
            prompt = f"{systems[g]}\n\n{random_text(rng, args.gsp_question_len)}"
            rows.append(DatasetRow(prompt, count_tokens(prompt), args.gsp_output_len))
    rng.shuffle(rows)
    print("\nGenerated shared prefix dataset statistics:")
    print(f"Number of groups: {args.gsp_num_groups}")
    print(f"Prompts per group: {args.gsp_prompts_per_group}")
    print(f"Total prompts: {len(rows)}")
    print(f"Total input tokens: {sum(r.prompt_len for r in rows)}")
    print(f"Total output tokens: {sum(r.output_len for r in rows)}")
    return rows


def get_dataset(args, rng):
    if args.dataset_name == "sharegpt":
        return sample_sharegpt(args, rng)
    if args.dataset_name in ("random", "random-ids"):
        return sample_random(args, rng)
    return sample_gsp(args, rng)


# ----------------------------------------------------------------------------- benchmark

def peaks(outputs):
    """0.5.23's max_output_tokens_per_s and max_concurrent_requests: the most tokens that arrived, and the
    most requests that were open, in one whole second counted from the first request's start."""
    done = [o for o in outputs if o.success]
    if not done:
        return {"max_output_tokens_per_s": 0.0, "max_concurrent_requests": 0}
    t0 = min(o.start_time for o in done)
    tokens, open_requests = {}, {}
    for o in done:
        t = o.start_time + o.ttft
        for arrival in [t, *[t := t + gap for gap in o.itl]]:
            tokens[int(arrival - t0)] = tokens.get(int(arrival - t0), 0) + 1
        for second in range(int(o.start_time - t0), int(o.start_time + o.latency - t0) + 1):
            open_requests[second] = open_requests.get(second, 0) + 1
    return {"max_output_tokens_per_s": float(max(tokens.values())),
            "max_concurrent_requests": max(open_requests.values())}


def calculate_metrics(rows, outputs, dur_s):
    output_lens, itls, tpots, ttfts, e2e = [], [], [], [], []
    total_input = completed = 0
    retok = 0
    for row, o in zip(rows, outputs):
        if o.success:
            output_lens.append(o.output_len)
            retok += count_tokens(o.generated_text)
            total_input += row.prompt_len
            if o.output_len > 1:
                tpots.append((o.latency - o.ttft) / (o.output_len - 1))
            itls += o.itl
            ttfts.append(o.ttft)
            e2e.append(o.latency)
            completed += 1
        else:
            output_lens.append(0)
    total_output = sum(output_lens)
    return {
        "completed": completed,
        "total_input": total_input,
        "total_output": total_output,
        "total_output_retokenized": retok,
        "request_throughput": completed / dur_s,
        "input_throughput": total_input / dur_s,
        "output_throughput": total_output / dur_s,
        "total_throughput": (total_input + total_output) / dur_s,
        **{f"p{p}_{name}_ms": percentile(values, p) * 1000 for p in (90, 95)
           for name, values in (("ttft", ttfts), ("tpot", tpots), ("itl", itls), ("e2e_latency", e2e))},
        **peaks(outputs),
        "mean_ttft_ms": mean(ttfts) * 1000, "median_ttft_ms": percentile(ttfts, 50) * 1000,
        "std_ttft_ms": std(ttfts) * 1000, "p99_ttft_ms": percentile(ttfts, 99) * 1000,
        "mean_tpot_ms": mean(tpots) * 1000, "median_tpot_ms": percentile(tpots, 50) * 1000,
        "std_tpot_ms": std(tpots) * 1000, "p99_tpot_ms": percentile(tpots, 99) * 1000,
        "mean_itl_ms": mean(itls) * 1000, "median_itl_ms": percentile(itls, 50) * 1000,
        "std_itl_ms": std(itls) * 1000, "p95_itl_ms": percentile(itls, 95) * 1000,
        "p99_itl_ms": percentile(itls, 99) * 1000, "max_itl_ms": max(itls or [0]) * 1000,
        "mean_e2e_latency_ms": mean(e2e) * 1000, "median_e2e_latency_ms": percentile(e2e, 50) * 1000,
        "std_e2e_latency_ms": std(e2e) * 1000, "p99_e2e_latency_ms": percentile(e2e, 99) * 1000,
        "concurrency": sum(e2e) / dur_s,
    }


def run_all(target, backend, path, rows, model, args, headers, run_deadline, req_timeout):
    outputs = [None] * len(rows)
    sem = threading.Semaphore(args.max_concurrency) if args.max_concurrency else None
    rng = random.Random(args.seed)
    done = [0]
    lock = threading.Lock()

    def worker(i):
        acquired = False
        try:
            if sem is not None:
                while not acquired and time.perf_counter() < run_deadline:
                    acquired = sem.acquire(timeout=0.5)
            if time.perf_counter() >= run_deadline:
                o = Output(rows[i].prompt_len)
                o.error = "benchmark time limit reached before the request started"
                outputs[i] = o
                return
            deadline = min(time.perf_counter() + req_timeout, run_deadline)
            outputs[i] = do_request(target, backend, path, rows[i], model, args, headers, deadline)
        finally:
            if acquired:
                sem.release()
            with lock:
                done[0] += 1
                if not args.disable_tqdm and (done[0] % max(1, len(rows) // 10) == 0 or done[0] == len(rows)):
                    print(f"  {done[0]}/{len(rows)} requests done", file=sys.stderr, flush=True)

    # Arrivals follow --request-rate whatever the concurrency limit (as in the real tool,
    # where each arrival becomes a task that then waits on the semaphore).
    threads = []
    for i in range(len(rows)):
        if time.perf_counter() >= run_deadline:
            break
        t = threading.Thread(target=worker, args=(i,), daemon=True)
        t.start()
        threads.append(t)
        if args.request_rate != float("inf") and i < len(rows) - 1:
            time.sleep(min(rng.expovariate(args.request_rate), max(0.0, run_deadline - time.perf_counter())))
    for t in threads:
        t.join(max(0.0, run_deadline - time.perf_counter()) + 1.0)
    for i, o in enumerate(outputs):
        if o is None:
            o = Output(rows[i].prompt_len)
            o.error = "not finished within SGLANG_SIM_BENCH_MAX_DURATION"
            outputs[i] = o
    return outputs


def print_summary(backend, request_rate, max_concurrency, m, duration):
    print("\n{s:{c}^{n}}".format(s=" Serving Benchmark Result ", n=50, c="="))
    print("{:<40} {:<10}".format("Backend:", backend))
    print("{:<40} {:<10}".format("Traffic request rate:", request_rate))
    print("{:<40} {:<10}".format("Max request concurrency:", max_concurrency if max_concurrency else "not set"))
    print("{:<40} {:<10}".format("Successful requests:", m["completed"]))
    print("{:<40} {:<10.2f}".format("Benchmark duration (s):", duration))
    print("{:<40} {:<10}".format("Total input tokens:", m["total_input"]))
    print("{:<40} {:<10}".format("Total generated tokens:", m["total_output"]))
    print("{:<40} {:<10}".format("Total generated tokens (retokenized):", m["total_output_retokenized"]))
    print("{:<40} {:<10.2f}".format("Request throughput (req/s):", m["request_throughput"]))
    print("{:<40} {:<10.2f}".format("Input token throughput (tok/s):", m["input_throughput"]))
    print("{:<40} {:<10.2f}".format("Output token throughput (tok/s):", m["output_throughput"]))
    print("{:<40} {:<10.2f}".format("Total token throughput (tok/s):", m["total_throughput"]))
    print("{:<40} {:<10.2f}".format("Concurrency:", m["concurrency"]))
    print("{s:{c}^{n}}".format(s="End-to-End Latency", n=50, c="-"))
    print("{:<40} {:<10.2f}".format("Mean E2E Latency (ms):", m["mean_e2e_latency_ms"]))
    print("{:<40} {:<10.2f}".format("Median E2E Latency (ms):", m["median_e2e_latency_ms"]))
    print("{s:{c}^{n}}".format(s="Time to First Token", n=50, c="-"))
    print("{:<40} {:<10.2f}".format("Mean TTFT (ms):", m["mean_ttft_ms"]))
    print("{:<40} {:<10.2f}".format("Median TTFT (ms):", m["median_ttft_ms"]))
    print("{:<40} {:<10.2f}".format("P99 TTFT (ms):", m["p99_ttft_ms"]))
    print("{s:{c}^{n}}".format(s="Time per Output Token (excl. 1st token)", n=50, c="-"))
    print("{:<40} {:<10.2f}".format("Mean TPOT (ms):", m["mean_tpot_ms"]))
    print("{:<40} {:<10.2f}".format("Median TPOT (ms):", m["median_tpot_ms"]))
    print("{:<40} {:<10.2f}".format("P99 TPOT (ms):", m["p99_tpot_ms"]))
    print("{s:{c}^{n}}".format(s="Inter-Token Latency", n=50, c="-"))
    print("{:<40} {:<10.2f}".format("Mean ITL (ms):", m["mean_itl_ms"]))
    print("{:<40} {:<10.2f}".format("Median ITL (ms):", m["median_itl_ms"]))
    print("{:<40} {:<10.2f}".format("P95 ITL (ms):", m["p95_itl_ms"]))
    print("{:<40} {:<10.2f}".format("P99 ITL (ms):", m["p99_itl_ms"]))
    print("{:<40} {:<10.2f}".format("Max ITL (ms):", m["max_itl_ms"]))
    print("=" * 50, flush=True)


def run_benchmark(args):
    print(SIM_NOTE, flush=True)
    if args.tokenizer:
        print(f"[sglang-sim] note: --tokenizer {args.tokenizer} ignored; tokens are whitespace words.")
    if args.apply_chat_template:
        print("[sglang-sim] note: --apply-chat-template has no effect in the simulation.")
    try:
        args.extra_body = json.loads(args.extra_request_body) if args.extra_request_body else {}
    except ValueError as exc:
        fail(f"--extra-request-body is not valid JSON: {exc}")
    if args.port is None:
        args.port = 30000
    base_url = args.base_url.rstrip("/") if args.base_url else f"http://{args.host}:{args.port}"
    path = {"sglang": "/generate", "sglang-native": "/generate", "sglang-oai": "/v1/completions",
            "sglang-oai-chat": "/v1/chat/completions"}[args.backend]
    backend = "sglang" if args.backend == "sglang-native" else args.backend
    target = Target(base_url)
    headers = auth_headers(args)
    req_timeout = float(os.environ.get("SGLANG_SIM_BENCH_REQUEST_TIMEOUT", "600"))
    max_duration = float(os.environ.get("SGLANG_SIM_BENCH_MAX_DURATION", "3600"))
    settle = float(os.environ.get("SGLANG_SIM_BENCH_SETTLE", "1.0"))

    if args.model is None:
        try:
            status, data = target.get_json("/v1/models", headers)
            models = (data or {}).get("data", []) if status == 200 else []
            args.model = models[0]["id"] if models else None
        except Exception as exc:  # noqa: BLE001
            print(f"Failed to fetch model from {base_url}/v1/models. Error: {exc}")
            print("Please specify the correct host and port using `--host` and `--port`.")
            sys.exit(1)
    if args.model is None:
        print("No model specified or found. Please provide a model using `--model`.")
        sys.exit(1)
    print(f"benchmark_args={vars(args)}\n")

    rng = random.Random(args.seed)
    rows = get_dataset(args, rng)
    if not rows:
        fail("the dataset produced no requests")

    # Warmup, as the real tool: the first prompt, at most 32 output tokens.
    print(f"Starting warmup with {args.warmup_requests} sequences...")
    if args.warmup_requests > 0:
        w = rows[0]
        wrow = DatasetRow(w.prompt, w.prompt_len, min(w.output_len, 32))
        outs = []
        lock = threading.Lock()

        def warm():
            o = do_request(target, backend, path, wrow, args.model, args, headers,
                           time.perf_counter() + req_timeout)
            with lock:
                outs.append(o)

        ts = [threading.Thread(target=warm, daemon=True) for _ in range(args.warmup_requests)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(req_timeout + 5)
        if not any(o.success for o in outs):
            err = outs[0].error if outs else "timeout"
            fail("Warmup failed - Please make sure benchmark arguments are correctly specified. "
                 f"Error: {err}")
    print(f"Warmup completed with {args.warmup_requests} sequences. Starting main benchmark run...")
    time.sleep(settle)

    start = time.perf_counter()
    outputs = run_all(target, backend, path, rows, args.model, args, headers,
                      start + max_duration, req_timeout)
    duration = time.perf_counter() - start

    accept_length = None
    try:  # the real tool asks without auth headers and tolerates failure
        status, info = target.get_json("/get_server_info", {}, timeout=10)
        if status == 200 and isinstance(info, dict):
            accept_length = (info.get("internal_states") or [{}])[0].get("avg_spec_accept_length")
    except Exception:  # noqa: BLE001
        pass

    m = calculate_metrics(rows, outputs, duration)
    if m["completed"] == 0:
        print("WARNING: All requests failed. This is likely due to a misconfiguration on the "
              "benchmark arguments.", file=sys.stderr)
    failed = [o.error for o in outputs if not o.success]
    if failed:
        print(f"[sglang-sim] {len(failed)} request(s) failed; first error: {failed[0]}", file=sys.stderr)
    print_summary(args.backend, args.request_rate, args.max_concurrency, m, duration)

    result = {
        "backend": args.backend,
        "dataset_name": args.dataset_name,
        "request_rate": args.request_rate,
        "max_concurrency": args.max_concurrency,
        "sharegpt_output_len": args.sharegpt_output_len,
        "random_input_len": args.random_input_len,
        "random_output_len": args.random_output_len,
        "random_range_ratio": args.random_range_ratio,
        "duration": duration,
        "completed": m["completed"],
        "total_input_tokens": m["total_input"],
        "total_input_text_tokens": m["total_input"],  # text only: no vision tokens
        "total_input_vision_tokens": 0,
        "total_output_tokens": m["total_output"],
        "total_output_tokens_retokenized": m["total_output_retokenized"],
        "request_throughput": m["request_throughput"],
        "input_throughput": m["input_throughput"],
        "output_throughput": m["output_throughput"],
    }
    for k in ("mean_e2e_latency_ms", "median_e2e_latency_ms", "std_e2e_latency_ms", "p99_e2e_latency_ms",
              "mean_ttft_ms", "median_ttft_ms", "std_ttft_ms", "p99_ttft_ms",
              "mean_tpot_ms", "median_tpot_ms", "std_tpot_ms", "p99_tpot_ms",
              "mean_itl_ms", "median_itl_ms", "std_itl_ms", "p95_itl_ms", "p99_itl_ms",
              "concurrency"):
        result[k] = m[k]
    result["accept_length"] = accept_length
    if NEW:
        # 0.5.23 (benchmark/serving.py:1847-1912) adds these keys; it asks /server_info with the key
        # and writes the answer, the key in it, into the line (docs/upstream.md).
        status, info = target.get_json("/server_info", headers, timeout=10)
        result.update({"tag": args.tag, "server_info": info if status == 200 else None,
                       **{k: m[k] for k in m if k.startswith(("p90_", "p95_", "max_output", "max_concurrent"))},
                       "total_throughput": m["total_throughput"]})
    # The keys above are the release's (tests/test_upstream_contract.py); these two mark the sim.
    result["simulated"] = True
    result["sim_version"] = __version__

    if args.output_file:
        name = args.output_file
    else:
        now = datetime.now().strftime("%m%d")
        if args.dataset_name.startswith("random"):
            name = f"{args.backend}_{now}_{args.num_prompts}_{args.random_input_len}_{args.random_output_len}.jsonl"
        else:
            name = f"{args.backend}_{now}_{args.num_prompts}_sharegpt.jsonl"
    details = {"input_lens": [o.prompt_len for o in outputs],
               "output_lens": [o.output_len if o.success else 0 for o in outputs],
               "ttfts": [o.ttft for o in outputs], "itls": [o.itl for o in outputs],
               "generated_texts": [o.generated_text for o in outputs],
               "errors": [o.error for o in outputs]}
    with open(name, "a", encoding="utf-8") as f:
        f.write(json.dumps({**result, **details} if args.output_details else result) + "\n")
    return result


def build_parser():
    p = argparse.ArgumentParser(
        prog="python3 -m sglang.bench_serving",
        description="SIMULATED sglang.bench_serving (sglang-sim): benchmark the online serving "
                    "throughput with real HTTP requests and a simulated (whitespace) tokenizer.")
    p.add_argument("--backend", type=str, default="sglang",
                   choices=["sglang", "sglang-native", "sglang-oai", "sglang-oai-chat"],
                   help="sglang uses /generate, sglang-oai /v1/completions, sglang-oai-chat /v1/chat/completions.")
    p.add_argument("--base-url", type=str, default=None, help="Server or API base url if not using http host and port.")
    p.add_argument("--host", type=str, default="0.0.0.0", help="Default host is 0.0.0.0.")
    p.add_argument("--port", type=int, default=None, help="Server port (default 30000).")
    p.add_argument("--dataset-name", type=str, default="sharegpt",
                   choices=["sharegpt", "random", "random-ids", "generated-shared-prefix"],
                   help="Name of the dataset to benchmark on.")
    p.add_argument("--dataset-path", type=str, default="", help="Path to the dataset.")
    p.add_argument("--model", type=str, default=None,
                   help="Name of the model. If not set, it is read from /v1/models.")
    p.add_argument("--tokenizer", type=str, default=None,
                   help="Accepted and ignored: the simulation counts whitespace words.")
    p.add_argument("--num-prompts", type=int, default=1000, help="Number of prompts to process. Default is 1000.")
    p.add_argument("--sharegpt-output-len", type=int, default=None,
                   help="Output length for each request. Overrides the output length from the ShareGPT dataset.")
    p.add_argument("--sharegpt-context-len", type=int, default=None,
                   help="Requests longer than this context length are dropped (ShareGPT).")
    p.add_argument("--random-input-len", type=int, default=1024, help="Number of input tokens per request (random).")
    p.add_argument("--random-output-len", type=int, default=1024, help="Number of output tokens per request (random).")
    p.add_argument("--random-range-ratio", type=float, default=0.0,
                   help="Range of sampled ratio of input/output length (random).")
    p.add_argument("--request-rate", type=float, default=float("inf"),
                   help="Requests per second; inf sends all at time 0, otherwise Poisson arrivals (seeded).")
    p.add_argument("--max-concurrency", type=int, default=None, help="Maximum number of concurrent requests.")
    p.add_argument("--output-file", type=str, default=None, help="Output JSONL file name (one line appended per run).")
    p.add_argument("--output-details", action="store_true", help="Output details of benchmarking.")
    p.add_argument("--disable-tqdm", action="store_true", help="Specify to disable the progress output.")
    p.add_argument("--disable-stream", action="store_true", help="Disable streaming mode.")
    p.add_argument("--return-logprob", action="store_true", help="Accepted; no effect in the simulation.")
    p.add_argument("--seed", type=int, default=1, help="The random seed.")
    p.add_argument("--disable-ignore-eos", action="store_true", help="Disable ignoring EOS.")
    p.add_argument("--extra-request-body", type=str, default=None, metavar='{"key1": "value1"}',
                   help="Append given JSON object to the request payload.")
    p.add_argument("--apply-chat-template", action="store_true", help="Accepted; no effect in the simulation.")
    p.add_argument("--prompt-suffix", type=str, default="", help="Accepted; no effect in the simulation.")
    p.add_argument("--flush-cache", action="store_true", help="Accepted; no effect in the simulation.")
    p.add_argument("--warmup-requests", type=int, default=1, help="Number of warmup requests to run before the benchmark.")
    if NEW:
        p.add_argument("--tag", type=str, default=None, help="The tag to be dumped to output (0.5.23).")
    p.add_argument("--api-key", type=str, default=None,
                   help="Sim-only: bearer token for the server (the real tool reads OPENAI_API_KEY, "
                        "which the simulation reads too; prefer it).")
    g = p.add_argument_group("generated-shared-prefix dataset arguments")
    g.add_argument("--gsp-num-groups", type=int, default=64, help="Number of system prompt groups.")
    g.add_argument("--gsp-prompts-per-group", type=int, default=16, help="Number of prompts per system prompt group.")
    g.add_argument("--gsp-system-prompt-len", type=int, default=2048, help="Target length in tokens for system prompts.")
    g.add_argument("--gsp-question-len", type=int, default=128, help="Target length in tokens for questions.")
    g.add_argument("--gsp-output-len", type=int, default=256, help="Target length in tokens for outputs.")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.num_prompts < 1:
        fail("--num-prompts must be at least 1")
    if args.max_concurrency is not None and args.max_concurrency < 1:
        fail("--max-concurrency must be at least 1")
    if args.request_rate <= 0:
        fail("--request-rate must be positive")
    run_benchmark(args)
    return 0


if __name__ == "__main__":
    if NEW:  # 0.5.23's sglang/bench_serving.py is a shim of sglang.benchmark.serving that says so
        import warnings
        warnings.warn("`sglang.bench_serving` is deprecated and will be removed in a future release; use "
                      "`sglang.benchmark.serving` instead (e.g. `python -m sglang.benchmark.serving`).",
                      FutureWarning, stacklevel=1)
    sys.exit(main())
