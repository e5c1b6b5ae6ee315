#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: Apache-2.0
"""Replace one SGLang instance behind the SGLang router without dropping requests."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sglang_rollover
short_description: Restart one SGLang instance behind the SGLang router without dropping requests
description:
  - "Takes one SGLang instance out of the SGLang router (C(sglang-router) 0.3.x API:
    C(GET /workers), C(DELETE /workers/{id}) with the worker's id, C(POST /workers)), waits for
    its in-flight requests to finish, restarts it, waits for C(GET /health) to answer 200 and puts
    it back into the router, waiting until the router lists it as healthy."
  - "The whole critical section is this one task: run it with C(throttle: 1) so that only one
    instance of the fleet is out of the router at a time."
  - With an empty O(router_url) there is no router; the instance is only restarted and waited for.
  - "If the restarted instance does not become healthy within O(ready_timeout), it is B(not) put
    back into the router and the task does B(not) fail: it returns RV(healthy=false) so that the
    playbook can roll back and then call the module again with O(restart=false)."
  - "If the restart command fails, the worker is put back into the router first (it may still be
    serving), then the task fails with the command's exit code and output."
  - With O(restart=false) it only makes sure that the instance is healthy and registered in the
    router (registering it if missing) and that the router lists it as healthy.
author:
  - spark-sglang contributors
options:
  name:
    description: Instance name, used in messages and in RV(summary).
    type: str
    required: true
  health_url:
    description: The instance's health URL, for example C(http://127.0.0.1:30000/health).
      Ready means HTTP 200 (SGLang answers 503 until weights are loaded and warmup is done).
    type: str
    required: true
  metrics_url:
    description:
      - The instance's Prometheus C(/metrics) URL (SGLang's C(--enable-metrics)). While draining,
        the module waits until the sum of all C(sglang:num_running_reqs) and C(sglang:num_queue_reqs)
        samples is 0.
      - Empty means no metrics; the drain is then a plain wait of O(drain_grace) seconds.
    type: str
    default: ""
  router_url:
    description: The router's base URL, for example C(http://10.0.0.2:30080). Empty means no router.
    type: str
    default: ""
  worker_url:
    description: This instance's URL as the router knows it, for example C(http://10.0.0.11:30000).
      Required with O(router_url). Compared without a trailing C(/).
    type: str
    default: ""
  router_api_key:
    description: The router's C(--api-key), sent as a Bearer token to C(/workers), and given to the router
      with C(POST /workers) as the key it uses towards this worker (the servers' key). Empty means no key.
    type: str
    default: ""
  restart:
    description:
      - true - take the instance out of the router, drain, restart it, wait for health and put it back.
      - false - only make sure the instance is healthy and registered in the router (used after
        a rollback, when other tasks restarted the instance). Here an instance that is not healthy
        within O(ready_timeout) fails the task (and is not registered).
    type: bool
    default: true
  drain_only:
    description:
      - Only take the instance out of the router and wait for its in-flight requests (no restart,
        no re-registration). Used for the head of a multi-node group, whose members the playbook
        then restarts together. Needs O(router_url).
    type: bool
    default: false
  restart_command:
    description: The command that restarts the instance, as a list of arguments (no shell).
      Empty means C(systemctl restart <unit>).
    type: list
    elements: str
    default: []
  unit:
    description: The systemd unit for the default O(restart_command). Required when O(restart=true)
      and O(restart_command) is empty.
    type: str
    default: ""
  drain_timeout:
    description: Seconds to wait for the in-flight requests to finish (with O(metrics_url)). When
      they do not, the restart goes ahead anyway and RV(drain_timed_out) is true. Also bounds the wait
      for the router to stop listing the worker after C(DELETE) (at least O(request_timeout)).
    type: int
    default: 120
  drain_grace:
    description: Seconds to wait after the removal from the router before the restart. Without
      O(metrics_url) this is the whole drain; with it, it is the minimum settle time (requests that
      the router proxied just before the removal reach the instance), after which the metrics must
      show no running or queued request.
    type: float
    default: 2
  ready_timeout:
    description: Seconds allowed for the restarted instance to answer 200 on O(health_url), and
      again for the router to list it as healthy after C(POST /workers).
    type: int
    default: 1800
  interval:
    description: Seconds between polls (health, metrics, router).
    type: float
    default: 1
  request_timeout:
    description: Seconds allowed for each HTTP request.
    type: int
    default: 10
notes:
  - Uses only the Python standard library on the managed host. The router API key never appears in results.
  - "With sglang-router 0.3.x C(POST /workers) answers 202 and registers the worker in the
    background; a URL that is already registered also answers 202 (the background job then fails
    with C(already exists), which is harmless)."
  - The drain is skipped without O(router_url) (nothing stops new requests from arriving).
attributes:
  check_mode:
    support: full
    description: With O(restart=true) nothing is contacted and RV(changed) is true. With
      O(restart=false) only C(GET /workers) and one health request are made; RV(changed) tells
      whether the worker would be registered.
  diff_mode:
    support: none
    description: No diff is reported.
"""

EXAMPLES = r"""
- name: Restart the instance behind the router, one instance of the fleet at a time
  sglang_rollover:
    name: main
    health_url: "http://127.0.0.1:30000/health"
    metrics_url: "http://127.0.0.1:30000/metrics"
    router_url: "http://10.0.0.2:30080"
    worker_url: "http://10.0.0.11:30000"
    router_api_key: "{{ sglang_router_api_key }}"
    unit: sglang-main.service
  throttle: 1
  register: rollover

- name: After a rollback, put the (restarted) old version back into the router
  sglang_rollover:
    name: main
    health_url: "http://127.0.0.1:30000/health"
    router_url: "http://10.0.0.2:30080"
    worker_url: "http://10.0.0.11:30000"
    restart: false
  throttle: 1
  when: not rollover.healthy
"""

RETURN = r"""
changed:
  description: True when the instance was restarted (or would be, in check mode) or the worker
    was registered with C(POST /workers).
  returned: always
  type: bool
healthy:
  description: Whether O(health_url) answered 200 (after the restart). Null when not checked
    (check mode with O(restart=true), or a failure before).
  returned: always
  type: bool
  sample: true
removed:
  description: Whether the worker was listed by the router and removed from it before the restart.
  returned: always
  type: bool
readded:
  description: Whether the worker was registered again (C(POST /workers)) and listed as healthy.
  returned: always
  type: bool
drained_s:
  description: Seconds spent draining (removal to restart). Null when there was no drain (no router,
    O(restart=false), check mode).
  returned: always
  type: float
  sample: 2.1
drain_timed_out:
  description: True when the metrics still showed running or queued requests after O(drain_timeout).
  returned: always
  type: bool
ready_s:
  description: Seconds from the end of the restart command to the first 200 from O(health_url)
    (with O(restart=false), to the first 200).
  returned: always
  type: float
  sample: 3.1
readd_s:
  description: Seconds from C(POST /workers) (or from the start of the check, when it was listed
    already) until the router listed the worker as healthy.
  returned: always
  type: float
  sample: 0.1
summary:
  description: A one-line summary.
  returned: always
  type: str
  sample: "main: out of the router, drained in 2.0 s, restarted, healthy in 3.1 s, back in the router in 0.1 s"
"""

import json
import time

from http.client import HTTPException
from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sglang_http import Base, HTTPURLError, request_body, snippet as _snippet

GAUGES = ("sglang:num_running_reqs", "sglang:num_queue_reqs")


class RolloverError(Exception):
    """A step failed; the message is complete except for the instance prefix."""


def _norm(url):
    return (url or "").strip().rstrip("/")


def _s(seconds):
    return round(seconds, 1)


class Endpoint:
    """One HTTP base URL (the router) or one full URL (health, metrics)."""

    def __init__(self, what, url, timeout, api_key=""):
        try:
            self.base = Base(url)
        except HTTPURLError as exc:
            raise RolloverError("invalid %s %s" % (what, exc))
        self.what, self.url, self.timeout, self.api_key = what, url, timeout, api_key
        self.parts, self.prefix = self.base.parts, self.base.prefix

    def request(self, method, path="", body=None, timeout=None):
        """Returns (status, raw body); raises OSError/HTTPException without a response."""
        conn = self.base.connect(self.timeout if timeout is None else timeout)
        headers, body = request_body(self.api_key, body)
        target = (self.prefix + path) if path else (self.parts.path or "/")
        if not path and self.parts.query:
            target += "?" + self.parts.query
        try:
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def why(self, exc, timeout=None):
        return self.base.why(exc, self.timeout if timeout is None else timeout)


class Router(Endpoint):
    def __init__(self, url, timeout, api_key):
        Endpoint.__init__(self, "router", url, timeout, api_key)

    def label(self, method, path):
        return "router %s %s %s" % (self.url, method, self.prefix + path)

    def call(self, method, path, body=None, ok=(200,)):
        label = self.label(method, path)
        try:
            status, raw = self.request(method, path, body)
        except (OSError, HTTPException) as exc:
            raise RolloverError("%s: %s" % (label, self.why(exc)))
        if status not in ok:
            hint = ""
            if status == 401:
                hint = " (the router refused the API key)" if self.api_key else " (the router needs an API key)"
            raise RolloverError("%s: HTTP %d%s%s" % (label, status, ": " + _snippet(raw) if raw else "", hint))
        return status, raw

    def workers(self):
        _, raw = self.call("GET", "/workers")
        try:
            listing = json.loads(raw.decode("utf-8"))
            workers = listing["workers"]
            if not isinstance(workers, list):
                raise TypeError
            return [w for w in workers if isinstance(w, dict)]
        except (ValueError, KeyError, TypeError):
            raise RolloverError("%s: unexpected answer (no workers list): %s"
                                % (self.label("GET", "/workers"), _snippet(raw)))


def _mine(workers, worker_url):
    return [w for w in workers if _norm(w.get("url")) == _norm(worker_url)]


def _listing(workers):
    if not workers:
        return "no workers"
    return ", ".join("%s (%s)" % (w.get("url"), "healthy" if w.get("is_healthy") else "unhealthy")
                     for w in workers)


def metric_sum(text, names):
    """Sum of all samples of the given metric names in Prometheus text; None if none is present."""
    total, found = 0.0, False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "}" in line:
            sample, rest = line.rsplit("}", 1)
            name = sample.split("{", 1)[0].strip()
            fields = rest.split()
        else:
            fields = line.split()
            name, fields = fields[0], fields[1:]
        if name in names and fields:
            try:
                total += float(fields[0])
                found = True
            except ValueError:
                pass
    return total if found else None


class Rollover:
    def __init__(self, module):
        self.module = module
        p = self.p = module.params
        self.result = dict(changed=False, healthy=None, removed=False, readded=False, drained_s=None,
                           drain_timed_out=False, ready_s=None, readd_s=None, summary="")
        self.parts = []
        self.health = Endpoint("health", p["health_url"], p["request_timeout"])
        self.metrics = Endpoint("metrics", p["metrics_url"], p["request_timeout"]) if p["metrics_url"] else None
        self.router = Router(p["router_url"], p["request_timeout"], p["router_api_key"]) if p["router_url"] else None

    # -- helpers
    def sleep(self, deadline=None):
        delay = self.p["interval"]
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - time.monotonic()))
        if delay > 0:
            time.sleep(delay)

    def _capped(self, deadline):
        return max(0.5, min(self.p["request_timeout"], deadline - time.monotonic()))

    def health_once(self, timeout=None):
        """(ok, what came back)."""
        try:
            status, _ = self.health.request("GET", timeout=timeout)
        except (OSError, HTTPException) as exc:
            return False, self.health.why(exc, timeout)
        return status == 200, "HTTP %d" % status

    def wait_healthy(self, timeout):
        start = time.monotonic()
        deadline = start + timeout
        while True:
            ok, last = self.health_once(self._capped(deadline))
            if ok:
                return True, time.monotonic() - start, last
            if time.monotonic() >= deadline:
                return False, time.monotonic() - start, last
            self.sleep(deadline)

    # -- step 1
    def remove(self):
        listed = _mine(self.router.workers(), self.p["worker_url"])
        if not listed:
            self.parts.append("not in the router")
            return False
        for w in listed:
            wid = str(w.get("id") or "")
            if not wid:
                raise RolloverError("%s: worker %s has no id: %s"
                                    % (self.router.label("GET", "/workers"), self.p["worker_url"], w))
            # 404: already gone (removed by someone else in between)
            self.router.call("DELETE", "/workers/" + quote(wid, safe=""), ok=(200, 202, 204, 404))
        self.result["removed"] = True
        bound = max(self.p["request_timeout"], self.p["drain_timeout"])
        deadline = time.monotonic() + bound
        while True:
            workers = self.router.workers()
            if not _mine(workers, self.p["worker_url"]):
                break
            if time.monotonic() >= deadline:
                raise RolloverError("%s: worker %s still listed %d s after DELETE /workers/%s (router lists: %s)"
                                    % (self.router.label("GET", "/workers"), self.p["worker_url"], bound,
                                       listed[0].get("id"), _listing(workers)))
            self.sleep(deadline)
        self.parts.append("out of the router")
        return True

    # -- step 2
    def read_inflight(self, deadline):
        """Running + queued requests; None when the metrics cannot tell (warned); 0 when the server is down."""
        timeout = self._capped(deadline)
        try:
            status, raw = self.metrics.request("GET", timeout=timeout)
        except ConnectionRefusedError:
            return 0.0
        except (OSError, HTTPException) as exc:
            return "%s %s: %s" % (self.metrics.what, self.metrics.url, self.metrics.why(exc, timeout))
        if status != 200:
            self.module.warn("instance %s: metrics %s: HTTP %d; drained by time only (drain_grace)"
                             % (self.p["name"], self.metrics.url, status))
            return None
        value = metric_sum(raw.decode("utf-8", "replace"), GAUGES)
        if value is None:
            self.module.warn("instance %s: metrics %s: no %s samples; drained by time only (drain_grace)"
                             % (self.p["name"], self.metrics.url, " or ".join(GAUGES)))
        return value

    def drain(self, since):
        p = self.p
        grace_until = since + p["drain_grace"]
        timed_out, left = False, None
        if self.metrics is not None:
            deadline = since + max(p["drain_timeout"], 0)
            while True:
                left = self.read_inflight(deadline)
                if left is None:  # the metrics cannot tell: fall back to the grace period
                    break
                now = time.monotonic()
                if left == 0 and now >= grace_until:
                    break
                if now >= deadline:
                    timed_out = left != 0
                    break
                self.sleep(grace_until if left == 0 else deadline)
        now = time.monotonic()
        if now < grace_until and not timed_out:
            time.sleep(grace_until - now)
        self.result["drained_s"] = _s(time.monotonic() - since)
        if timed_out:
            self.result["drain_timed_out"] = True
            what = ("%g still running or queued" % left) if isinstance(left, float) else left
            self.module.warn("instance %s: in-flight requests did not finish within %d s (%s); restarting anyway"
                             % (p["name"], p["drain_timeout"], what))
            self.parts.append("drain timed out after %.1f s (%s)" % (self.result["drained_s"], what))
        else:
            self.parts.append("drained in %.1f s" % self.result["drained_s"])

    # -- step 5
    def register(self, wait):
        """POST the worker if missing, then wait until the router lists it as healthy."""
        p, router = self.p, self.router
        start = time.monotonic()
        posted = False
        workers = router.workers()
        if not _mine(workers, p["worker_url"]):
            # sglang-router 0.3.x answers 202 (with the existing worker_id) for a URL it has already;
            # other versions may answer 409 or 400 "... already exists": all fine.
            try:
                # The router talks to a worker added at run time with the key given here (its own
                # --api-key only covers the workers it started with).
                body = {"url": p["worker_url"], **({"api_key": p["router_api_key"]} if p["router_api_key"] else {})}
                router.call("POST", "/workers", body=body, ok=(200, 201, 202, 409))
            except RolloverError as exc:
                if "already exists" not in str(exc).lower():
                    raise
            posted = True
            self.result["changed"] = True
        deadline = start + wait
        while True:
            mine = _mine(workers, p["worker_url"])
            if any(w.get("is_healthy") is True for w in mine):
                break
            if time.monotonic() >= deadline:
                state = "listed but not healthy" if mine else "not listed"
                raise RolloverError("%s: worker %s %s %d s after %s (router lists: %s)"
                                    % (router.label("GET", "/workers"), p["worker_url"], state, wait,
                                       "POST /workers" if posted else "the first look", _listing(workers)))
            self.sleep(deadline)
            workers = router.workers()
        self.result["readd_s"] = _s(time.monotonic() - start)
        self.result["readded"] = posted
        return posted

    # -- the whole thing
    def run(self):
        p, r = self.p, self.result
        if self.module.check_mode:
            return self.check()
        if not p["restart"]:
            return self.ensure_registered()
        if p["drain_only"]:
            r["changed"] = True
            self.remove()
            self.drain(time.monotonic())
            return

        if self.router is not None:
            self.remove()
            self.drain(time.monotonic())

        cmd = p["restart_command"] or ["systemctl", "restart", p["unit"]]
        r["changed"] = True
        rc, out, err = self.module.run_command(cmd)
        if rc != 0:
            msg = "restart command %s failed (rc=%d): %s" % (
                " ".join(cmd), rc, _snippet((err or out or "").encode("utf-8"), 500) or "no output")
            if r["removed"]:
                msg += "; " + self.readd_after_failure()
            raise RolloverError(msg)
        self.parts.append("restarted")

        healthy, ready_s, last = self.wait_healthy(p["ready_timeout"])
        r["healthy"], r["ready_s"] = healthy, _s(ready_s)
        if not healthy:
            left = "left out of the router" if self.router is not None else "no router"
            self.parts.append("NOT healthy after %d s at %s (last: %s), %s"
                              % (p["ready_timeout"], p["health_url"], last, left))
            self.module.warn("instance %s: not healthy after %d s at %s (last: %s); %s"
                             % (p["name"], p["ready_timeout"], p["health_url"], last,
                                "not put back into the router" if self.router is not None else "no router"))
            return
        self.parts.append("healthy in %.1f s" % ready_s)
        if self.router is not None:
            posted = self.register(p["ready_timeout"])
            self.parts.append("%s the router in %.1f s" % ("back in" if r["removed"] else
                                                          ("added to" if posted else "already in"), r["readd_s"]))

    def readd_after_failure(self):
        try:
            self.register(self.p["request_timeout"])
        except RolloverError as exc:
            return "putting the worker back into the router failed: %s" % exc
        return "the worker was put back into the router"

    def ensure_registered(self):
        p, r = self.p, self.result
        healthy, ready_s, last = self.wait_healthy(p["ready_timeout"])
        r["healthy"], r["ready_s"] = healthy, _s(ready_s)
        if not healthy:
            raise RolloverError("health %s: not healthy after %d s (last: %s)%s"
                                % (p["health_url"], p["ready_timeout"], last,
                                   "; not registered in the router" if self.router is not None else ""))
        self.parts.append("healthy")
        if self.router is not None:
            posted = self.register(p["ready_timeout"])
            self.parts.append("added to the router in %.1f s" % r["readd_s"] if posted else "already in the router")

    def check(self):
        p, r = self.p, self.result
        if p["restart"] and p["drain_only"]:
            r["changed"] = True
            self.parts.append("would take it out of the router and drain (check mode)")
            return
        if p["restart"]:
            r["changed"] = True
            self.parts.append("would %srestart%s (check mode)"
                              % ("take it out of the router, drain, " if self.router is not None else "",
                                 " and put it back" if self.router is not None else ""))
            return
        ok, _ = self.health_once()
        r["healthy"] = ok
        self.parts.append("healthy" if ok else "not healthy")
        if self.router is not None:
            mine = _mine(self.router.workers(), p["worker_url"])
            r["changed"] = not mine
            self.parts.append("already in the router" if mine else "would be added to the router (check mode)")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            health_url=dict(type="str", required=True),
            metrics_url=dict(type="str", default=""),
            router_url=dict(type="str", default=""),
            worker_url=dict(type="str", default=""),
            router_api_key=dict(type="str", default="", no_log=True),
            restart=dict(type="bool", default=True),
            drain_only=dict(type="bool", default=False),
            restart_command=dict(type="list", elements="str", default=[]),
            unit=dict(type="str", default=""),
            drain_timeout=dict(type="int", default=120),
            drain_grace=dict(type="float", default=2.0),
            ready_timeout=dict(type="int", default=1800),
            interval=dict(type="float", default=1.0),
            request_timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problems = []
    if p["router_url"] and not p["worker_url"]:
        problems.append("worker_url is required with router_url")
    if p["drain_only"] and not p["router_url"]:
        problems.append("drain_only needs router_url")
    if p["restart"] and not p["drain_only"] and not p["restart_command"] and not p["unit"]:
        problems.append("unit (or restart_command) is required with restart=true")
    if p["request_timeout"] < 1 or p["ready_timeout"] < 0 or p["drain_timeout"] < 0:
        problems.append("request_timeout must be at least 1, ready_timeout and drain_timeout at least 0")
    if p["interval"] <= 0 or p["drain_grace"] < 0:
        problems.append("interval must be above 0 and drain_grace at least 0")
    result = dict(changed=False, healthy=None, removed=False, readded=False, drained_s=None,
                  drain_timed_out=False, ready_s=None, readd_s=None, summary="")
    if problems:
        module.fail_json(msg="instance %s: %s" % (p["name"], "; ".join(problems)), **result)
    try:
        job = Rollover(module)
    except RolloverError as exc:
        module.fail_json(msg="instance %s: %s" % (p["name"], exc), **result)
    try:
        job.run()
    except RolloverError as exc:
        job.result["summary"] = "%s: %s" % (p["name"], ", ".join(job.parts + ["FAILED"]))
        module.fail_json(msg="instance %s: %s" % (p["name"], exc), **job.result)
    job.result["summary"] = "%s: %s" % (p["name"], ", ".join(job.parts))
    module.exit_json(**job.result)


if __name__ == "__main__":
    main()
