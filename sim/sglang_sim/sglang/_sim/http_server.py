"""SGLang's HTTP server: the OpenAI-style and native endpoints, the API key check, health and SSE streams."""

import hmac
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from sglang import NEW, __version__
from sglang._sim.generation import ClientGone, Plan, Rejected, run_generation
from sglang._sim.logs import log
from sglang._sim.metrics import render_metrics
from sglang._sim.model import count_tokens

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


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a benchmark opens many connections at once

    def __init__(self, address, handler):
        if ":" in address[0]:  # IPv6 host such as "::"
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
