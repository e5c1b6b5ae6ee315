"""SGLang's Prometheus metrics at /metrics: the sglang:* gauges, counters and latency histograms."""

TTFT_BUCKETS = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400]
E2E_BUCKETS = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400,
               600, 1200, 1800, 2400]
ITL_BUCKETS = [0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040,
               0.060, 0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.0, 2.0, 4.0, 6.0, 8.0]



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
