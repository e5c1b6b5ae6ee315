"""The simulated scheduler and GPU timing: FIFO decode slots, generation plans, tokens in real time."""

import collections
import os
import threading
import time
import uuid

from sglang._sim.logs import _env_float, _env_int
from sglang._sim.metrics import E2E_BUCKETS, ITL_BUCKETS, TTFT_BUCKETS, Histogram
from sglang._sim.model import natural_length, read_model_config, simulated_words


class ClientGone(Exception):
    pass


class Rejected(Exception):
    def __init__(self, status, message, err_type="BadRequestError"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type


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
