#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: Apache-2.0
"""Verify one SGLang instance end to end (health, model list, API key, chat, stream, metrics)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sglang_probe
short_description: Verify one SGLang server end to end and measure its latency
description:
  - Checks one SGLang HTTP server, stopping at the first failure. C(GET /health) must answer 200
    (SGLang answers 503 until weights are loaded and warmup is done). C(GET /v1/models) must list
    O(model). With O(api_key), C(GET /v1/models) without the key and with a wrong key must answer 401.
  - "C(POST /v1/chat/completions) with one user message must answer 200 with a non-empty
    C(content) (or C(reasoning_content)) and a C(finish_reason); with O(stream) the same request as
    server-sent events must give content, a C(finish_reason) and a final C(data: [DONE])."
  - With O(metrics), C(GET /metrics) must have C(sglang:) samples (SGLang's C(--enable-metrics)).
  - Read-only; RV(changed) is always false.
author:
  - spark-sglang contributors
options:
  url:
    description: Base URL, for example C(http://127.0.0.1:30000). A path in it is used as a prefix.
    type: str
    required: true
  name:
    description: Instance name, used in messages and in RV(summary).
    type: str
    default: main
  model:
    description: The served model name that C(/v1/models) must list (C(--served-model-name)).
    type: str
    required: true
  api_key:
    description: The server's C(--api-key), sent as a Bearer token. Empty means no key.
    type: str
    default: ""
  prompt:
    description: The user message of the chat requests.
    type: str
    default: What is artificial intelligence?
  max_tokens:
    description: C(max_tokens) of the chat requests.
    type: int
    default: 100
  temperature:
    description: C(temperature) of the chat requests.
    type: float
    default: 0.7
  stream:
    description: Also check a streaming chat request.
    type: bool
    default: true
  metrics:
    description: Also check C(GET /metrics).
    type: bool
    default: false
  timeout:
    description: Seconds allowed for each request (for a stream, for the whole stream).
    type: int
    default: 120
notes:
  - Uses only the Python standard library on the managed host. The API key never appears in results.
attributes:
  check_mode:
    support: full
    description: The probe is read-only, so it also runs in check mode.
  diff_mode:
    support: none
    description: No diff is reported.
"""

EXAMPLES = r"""
- name: Verify the SGLang server and measure latency
  sglang_probe:
    url: "http://127.0.0.1:30000"
    model: qwen3-8b
    api_key: "{{ sglang_api_key }}"
    metrics: true
  register: probe
"""

RETURN = r"""
changed:
  description: Always false.
  returned: always
  type: bool
checks:
  description: The requests made (on failure, up to the failing one), each with C(endpoint)
    (method and path, with C((no key)), C((wrong key)) or C((stream)) appended where it applies),
    C(status) (null without a response) and C(ok).
  returned: always
  type: list
  elements: dict
  sample: [{"endpoint": "GET /health", "status": 200, "ok": true}]
model:
  description: The model name found in C(/v1/models).
  returned: success
  type: str
chat:
  description: The non-streaming chat check - C(ttfb_ms) (to the response headers), C(total_ms),
    C(finish_reason), C(completion_tokens) (from C(usage), else null), C(content_field)
    (C(content) or C(reasoning_content)) and C(content_preview) (80 characters).
  returned: success
  type: dict
  sample: {"ttfb_ms": 310.2, "total_ms": 312.0, "finish_reason": "length", "completion_tokens": 100,
           "content_field": "content", "content_preview": "Artificial intelligence is"}
stream:
  description: The streaming check (null with O(stream=false)) - C(ttft_ms) (to the first content),
    C(total_ms) (to the final event), C(chunks) (JSON events) and C(finish_reason).
  returned: success
  type: dict
  sample: {"ttft_ms": 12.1, "total_ms": 330.4, "chunks": 102, "finish_reason": "length"}
metrics_lines:
  description: The number of C(sglang:) lines in C(/metrics), null with O(metrics=false).
  returned: success
  type: int
  sample: 42
summary:
  description: A one-line summary.
  returned: success
  type: str
  sample: "main: health ok, model qwen3-8b listed, 401 without key, chat 312 ms (ttfb 310 ms, finish=length),
    stream ttft 12 ms / 330 ms, metrics 42 lines"
"""

import json
import time

from http.client import HTTPException

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sglang_http import Base, HTTPURLError, request_body, snippet as _snippet

WRONG_KEYS = ("sglang-probe-wrong-key", "sglang-probe-other-wrong-key")


class ProbeError(Exception):
    """A check failed; the message is complete except for the instance prefix."""


def _ms(start, end):
    return round((end - start) * 1000.0, 1)


def _http_error(label, status, raw, hint=""):
    return ProbeError("%s: HTTP %d%s%s" % (label, status, ": " + _snippet(raw) if raw else "", hint))


class Prober:
    def __init__(self, url, api_key, timeout):
        try:
            self.base = Base(url)
        except HTTPURLError as exc:
            raise ProbeError("invalid %s" % exc)
        self.url, self.prefix = url, self.base.prefix
        self.api_key, self.timeout, self.checks = api_key, timeout, []

    def _error(self, label, exc, what=""):
        return ProbeError("%s: %s%s (%s)" % (label, what, self.base.why(exc, self.timeout), self.url))

    def open(self, method, path, label, body=None, key=None):
        """Send one request; returns (connection, response, start time, headers time, label)."""
        label = "%s %s%s%s" % (method, self.prefix, path, label)
        conn = self.base.connect(self.timeout)
        headers, body = request_body(self.api_key if key is None else key, body)
        start = time.monotonic()
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
            resp = conn.getresponse()
        except (OSError, HTTPException) as exc:
            conn.close()
            self.checks.append(dict(endpoint=label, status=None, ok=False))
            raise self._error(label, exc)
        return conn, resp, start, time.monotonic(), label

    def call(self, method, path, label="", body=None, key=None, expect=200):
        """One request read to the end; returns (status, raw body, info dict)."""
        conn, resp, start, headers_at, label = self.open(method, path, label, body, key)
        try:
            raw = resp.read()
        except (OSError, HTTPException) as exc:
            self.checks.append(dict(endpoint=label, status=resp.status, ok=False))
            raise self._error(label, exc, "reading the body: ")
        finally:
            conn.close()
        end = time.monotonic()
        self.checks.append(dict(endpoint=label, status=resp.status, ok=resp.status == expect))
        if expect == 200 and resp.status != 200:
            hint = ""
            if resp.status == 401:
                hint = " (the API key was refused)" if self.api_key else " (the server needs an API key)"
            raise _http_error(label, resp.status, raw, hint)
        return resp.status, raw, dict(ttfb_ms=_ms(start, headers_at), total_ms=_ms(start, end), label=label)

    def fail_last(self, label, why):
        self.checks[-1]["ok"] = False
        raise ProbeError("%s: %s" % (label, why))

    def json(self, raw, label):
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError:
            self.fail_last(label, "invalid JSON: %s" % _snippet(raw))

    def stream(self, body):
        conn, resp, start, _, label = self.open("POST", "/v1/chat/completions", " (stream)", body)
        ttft, chunks, text, finish, done = None, 0, [], None, False
        try:
            self.checks.append(dict(endpoint=label, status=resp.status, ok=resp.status == 200))
            if resp.status != 200:
                raw = resp.read()
                raise _http_error(label, resp.status, raw)
            while time.monotonic() - start <= self.timeout:
                try:
                    raw = resp.readline()
                except (OSError, HTTPException) as exc:
                    self.checks[-1]["ok"] = False
                    raise self._error(label, exc, "after %d chunk(s): " % chunks)
                if not raw:  # end of the body
                    break
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):  # blank separators, comments, other fields
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    done = True
                    break
                try:
                    event = json.loads(payload)
                except ValueError:
                    self.fail_last(label, "invalid JSON event: %s" % payload[:300])
                chunks += 1
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or {}
                    piece = delta.get("content") or delta.get("reasoning_content")
                    if piece:
                        text.append(piece)
                        ttft = ttft or time.monotonic()
                    finish = choice.get("finish_reason") or finish
            end = time.monotonic()
        finally:
            conn.close()
        if not done:
            why = "timed out after %d s" % self.timeout if end - start > self.timeout else "the stream ended"
            self.fail_last(label, "%s without data: [DONE] after %d chunk(s)" % (why, chunks))
        if not "".join(text).strip():
            self.fail_last(label, "no content in %d chunk(s)" % chunks)
        if finish is None:
            self.fail_last(label, "no finish_reason in %d chunk(s)" % chunks)
        return dict(ttft_ms=_ms(start, ttft), total_ms=_ms(start, end), chunks=chunks, finish_reason=finish)


def probe(p, result):
    prober = Prober(p["url"], p["api_key"], p["timeout"])
    result["checks"] = prober.checks
    prober.call("GET", "/health")
    parts = ["health ok"]

    _, raw, info = prober.call("GET", "/v1/models")
    listing = prober.json(raw, info["label"])
    data = listing.get("data") if isinstance(listing, dict) else None
    ids = [m.get("id") for m in data if isinstance(m, dict)] if isinstance(data, list) else None
    if p["model"] not in (ids or []):
        prober.fail_last(info["label"], "model %r not listed (got: %r)" % (p["model"], ids))
    result["model"] = p["model"]
    parts.append("model %s listed" % p["model"])

    if p["api_key"]:
        # A chat request: SGLang guards every path but /health*, /metrics (0.5.23: and /ready), the router
        # only its own API and the generation paths (it answers /v1/models to anyone).
        wrong = WRONG_KEYS[p["api_key"] == WRONG_KEYS[0]]
        tiny = {"model": p["model"], "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
        for label, key, what in ((" (no key)", "", "without the API key"),
                                 (" (wrong key)", wrong, "with a wrong API key")):
            status, _, info = prober.call("POST", "/v1/chat/completions", label, body=tiny, key=key, expect=401)
            if status != 401:
                raise ProbeError("%s: answers %s (HTTP %d, expected 401)" % (info["label"], what, status))
        parts.append("401 without key")

    body = {"model": p["model"], "messages": [{"role": "user", "content": p["prompt"]}],
            "max_tokens": p["max_tokens"], "temperature": p["temperature"], "stream": False}
    _, raw, info = prober.call("POST", "/v1/chat/completions", body=body)
    reply = prober.json(raw, info["label"])
    try:
        choice = reply["choices"][0]
        message = choice.get("message") or {}
        field = "content" if message.get("content") else "reasoning_content"
    except (KeyError, IndexError, TypeError, AttributeError):
        prober.fail_last(info["label"], "no choices[0].message in %s" % _snippet(raw))
    if not message.get(field):
        prober.fail_last(info["label"], "empty reply (no content or reasoning_content): %s" % _snippet(raw))
    if choice.get("finish_reason") is None:
        prober.fail_last(info["label"], "finish_reason is null: %s" % _snippet(raw))
    usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else {}
    chat = result["chat"] = dict(ttfb_ms=info["ttfb_ms"], total_ms=info["total_ms"],
                                 finish_reason=choice["finish_reason"],
                                 completion_tokens=usage.get("completion_tokens"),
                                 content_field=field, content_preview=str(message[field])[:80])
    parts.append("chat %.0f ms (ttfb %.0f ms, finish=%s)"
                 % (chat["total_ms"], chat["ttfb_ms"], chat["finish_reason"]))

    if p["stream"]:
        body["stream"] = True
        stream = result["stream"] = prober.stream(body)
        parts.append("stream ttft %.0f ms / %.0f ms" % (stream["ttft_ms"], stream["total_ms"]))

    if p["metrics"]:
        _, raw, info = prober.call("GET", "/metrics")
        lines = [ln for ln in raw.decode("utf-8", "replace").splitlines() if ln.startswith("sglang:")]
        if not lines:
            prober.fail_last(info["label"], "no sglang: metric lines in %d line(s)" % len(raw.splitlines()))
        result["metrics_lines"] = len(lines)
        parts.append("metrics %d lines" % len(lines))
    result["summary"] = "%s: %s" % (p["name"], ", ".join(parts))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            name=dict(type="str", default="main"),
            model=dict(type="str", required=True),
            api_key=dict(type="str", default="", no_log=True),
            prompt=dict(type="str", default="What is artificial intelligence?"),
            max_tokens=dict(type="int", default=100),
            temperature=dict(type="float", default=0.7),
            stream=dict(type="bool", default=True),
            metrics=dict(type="bool", default=False),
            timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, checks=[], model=None, chat=None, stream=None, metrics_lines=None)
    if p["timeout"] < 1 or p["max_tokens"] < 1:
        module.fail_json(msg="instance %s: timeout and max_tokens must be at least 1" % p["name"], **result)
    try:
        probe(p, result)
    except ProbeError as exc:
        module.fail_json(msg="instance %s: %s" % (p["name"], exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
