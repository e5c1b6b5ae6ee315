"""The Grafana dashboard dashboards/sglang-fleet.json: importable, and honest about its metrics.

Every metric a panel queries is checked against what really gets exported: the `sglang:`
names against a sim server started with --enable-metrics (after it served a request), the
router names against the REAL sglang-router (0.3.2, from the project venv) in front of a sim
server (after it routed a request), started exactly as in test_router_contract.py. The job
and label names are the ones of the Prometheus scrape config the project generates: job
`sglang` (labels `host`, `sglang_instance`) and job `sglang-router` (label `host`).
"""

import json
import re
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sglang_sim_helpers import LOCALHOST, REPO, module_server  # noqa: E402
from test_router_contract import WORKER_ARGS, WORKER_ENV, Router  # noqa: E402

DASHBOARD = REPO / "dashboards" / "sglang-fleet.json"
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SERVER_JOB = "sglang"
ROUTER_JOB = "sglang-router"
# What the dashboard promises to show (the panels' subjects), as metric families.
SERVER_FAMILIES = {
    "sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:gen_throughput", "sglang:token_usage",
    "sglang:cache_hit_rate", "sglang:prompt_tokens_total", "sglang:generation_tokens_total",
    "sglang:num_requests_total", "sglang:time_to_first_token_seconds_bucket",
    "sglang:inter_token_latency_seconds_bucket", "sglang:e2e_request_latency_seconds_bucket",
}

# ----------------------------------------------------------------------------- dashboard

def load():
    return json.loads(DASHBOARD.read_text())


def panels(dash):
    """Every panel, rows and the panels inside collapsed rows included, in file order."""
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def row_members(dash):
    """{row title: [its non-row panels]} (a row owns the panels after it, or its own if collapsed)."""
    rows, current = {}, None
    for p in dash["panels"]:
        if p["type"] == "row":
            current = rows.setdefault(p["title"], [])
            current.extend(p.get("panels", []))
        elif current is not None:
            current.append(p)
    return rows


def targets(dash):
    return [(p, t) for p in panels(dash) for t in p.get("targets", [])]


def exprs(dash):
    return [t["expr"] for _, t in targets(dash)]


# ----------------------------------------------------------------------------- PromQL (the subset used)

_TOKEN = re.compile(r'\{(?:[^}"]|"(?:[^"\\]|\\.)*")*\}'           # label matchers
                    r'|"(?:[^"\\]|\\.)*"'                           # string literal
                    r'|\[[^\]]*\]'                                  # range / subquery
                    r'|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)'
                    r'|\d[\w.]*'                                     # number, duration
                    r'|[A-Za-z_:][A-Za-z0-9_:]*'                    # identifier
                    r'|\S')
_MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}
_GROUP = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def selectors(expr):
    """[(metric name, {label: (op, value)})] for every vector selector in a PromQL expression."""
    toks = [m.group() for m in _TOKEN.finditer(expr)]
    out = []
    for i, tok in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        prev = toks[i - 1] if i else ""
        if tok.startswith("{"):
            if re.match(r"[A-Za-z_:]", prev) and prev not in _KEYWORDS:
                continue  # belongs to the metric name before it
            matchers = {k: (op, v) for k, op, v in _MATCHER.findall(tok)}
            out.append((matchers.get("__name__", (None, None))[1], matchers))
        elif re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", tok) and tok not in _KEYWORDS:
            if nxt == "(" or re.match(r"(by|without)\b", nxt):
                continue  # a function or an aggregation
            matchers = {k: (op, v) for k, op, v in _MATCHER.findall(nxt)} if nxt.startswith("{") else {}
            out.append((tok, matchers))
    return out


def metric_names(expr):
    return {name for name, _ in selectors(expr)}


def parse_exposition(text):
    """{sample name: metric type} for every sample whose family has a `# TYPE` line.

    A histogram X is queried as X_bucket / X_sum / X_count, a counter X as X_total (or X when
    the exposition, like the sim's, already declares the type under the _total name).
    """
    types, samples = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, mtype = line.split(None, 3)
            types[name] = mtype.strip()
        elif line.strip() and not line.startswith("#"):
            samples.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group())
    exported = {}
    for s in samples:
        if s in types:
            exported[s] = types[s]
            continue
        for suffix, kinds in (("_bucket", {"histogram"}), ("_sum", {"histogram", "summary"}),
                              ("_count", {"histogram", "summary"}), ("_total", {"counter"})):
            base = s[: -len(suffix)]
            if s.endswith(suffix) and types.get(base) in kinds:
                exported[s] = types[base] if suffix == "_total" else types[base] + suffix
    return exported


def assert_queried_correctly(used, exported, dash):
    """Every name in `used` is exported and queried as its type wants."""
    missing = sorted(n for n in used if n not in exported)
    assert not missing, f"not exported: {missing}; exported: {sorted(exported)}"
    for expr in exprs(dash):
        for name in metric_names(expr) & set(used):
            kind = exported[name]
            in_rate = re.search(r"\b(?:rate|irate|increase)\(\s*" + re.escape(name) + r"\s*[{\[]", expr)
            if kind in ("counter", "histogram_bucket", "histogram_sum", "histogram_count"):
                assert in_rate, f"{name} ({kind}) must be queried through rate(): {expr}"
            else:
                assert not in_rate, f"{name} ({kind}) must not be queried through rate(): {expr}"
            if kind == "histogram_bucket":
                assert expr.startswith("histogram_quantile("), expr
                groups = [g.replace(" ", "").split(",") for g in _GROUP.findall(expr)]
                assert groups and all("le" in g for g in groups), f"aggregate {name} by le: {expr}"


# ----------------------------------------------------------------------------- live processes

class MetricsRouter(Router):
    """The contract test's router, plus the URL of its Prometheus endpoint."""

    @property
    def metrics_url(self):
        return f"http://{LOCALHOST}:{self.cmd[self.cmd.index('--prometheus-port') + 1]}/metrics"


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = module_server(tmp_path_factory, WORKER_ARGS, WORKER_ENV, "dashboard-worker")
    try:
        yield w
    finally:
        w.kill()


@pytest.fixture(scope="module")
def sim_exported(worker):
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "one request"}], "max_tokens": 4}
    r = worker.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    return parse_exposition(worker.get("/metrics").text)


@pytest.fixture(scope="module")
def router_exported(worker, tmp_path_factory):
    router = MetricsRouter([worker.url], tmp_path_factory.mktemp("dashboard-router") / "router.log")
    try:
        router.wait_workers([worker.url])
        r = router.chat("one routed request")
        assert r.status_code == 200, r.text
        wanted = {n for e in exprs(load()) for n in metric_names(e)
                  if not n.startswith("sglang:") and n != "up"}
        # The router registers a metric when it first records it: poll (bounded) until all show.
        deadline = time.monotonic() + 5
        while True:
            exported = parse_exposition(requests.get(router.metrics_url, timeout=5).text)
            if wanted <= set(exported) or time.monotonic() > deadline:
                return exported
            time.sleep(0.2)
    finally:
        router.kill()


# ----------------------------------------------------------------------------- tests

def test_dashboard_is_importable_with_a_datasource_input():
    dash = load()
    assert dash["uid"] == "sglang-fleet"
    assert dash["title"] == "SGLang fleet (spark-sglang)"
    assert dash["schemaVersion"] == 39
    assert dash.get("id") is None  # an import must not carry a database id
    assert dash["__inputs"] == [{"name": "DS_PROMETHEUS", "label": "Prometheus",
                                 "description": dash["__inputs"][0].get("description", ""),
                                 "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}]
    required = {(r["type"], r["id"]) for r in dash["__requires"]}
    assert {("grafana", "grafana"), ("datasource", "prometheus")} <= required
    kinds = {p["type"] for p in panels(dash)}
    assert kinds <= {"row", "stat", "timeseries"}, kinds
    assert {("panel", k) for k in kinds - {"row"}} <= required
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), ids
    for p in panels(dash):
        assert p.get("datasource") == DS, (p["title"], p.get("datasource"))
        if p["type"] != "row":
            assert p.get("targets"), p["title"]
            for t in p["targets"]:
                assert t.get("datasource") == DS, (p["title"], t)
                assert t.get("expr", "").strip(), (p["title"], t)
    for v in dash["templating"]["list"]:
        assert v.get("datasource") == DS, v["name"]
    # No datasource is named other than through the input (Grafana's own annotations aside).
    uids = set(re.findall(r'"uid":\s*"([^"]*)"', DASHBOARD.read_text()))
    assert uids <= {"${DS_PROMETHEUS}", "sglang-fleet", "-- Grafana --"}, uids
    # Panels fit the 24-column grid and do not overlap.
    boxes = [(p["title"], p["gridPos"]) for p in panels(dash)]
    for title, g in boxes:
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, (title, g)
    for i, (t1, a) in enumerate(boxes):
        for t2, b in boxes[i + 1:]:
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
            assert apart, f"{t1!r} overlaps {t2!r}"


def test_server_metrics_are_exported_by_the_sim(sim_exported):
    dash = load()
    used = {n for e in exprs(dash) for n in metric_names(e) if n.startswith("sglang:")}
    assert SERVER_FAMILIES <= used, sorted(SERVER_FAMILIES - used)
    for title, members in row_members(dash).items():
        if "router" not in title.lower():
            names = {n for p in members for t in p["targets"] for n in metric_names(t["expr"])}
            assert all(n.startswith("sglang:") or n == "up" for n in names), (title, sorted(names))
    assert_queried_correctly(used, sim_exported, dash)


def test_router_metrics_are_exported_by_the_real_router(router_exported):
    dash = load()
    router_rows = [title for title in row_members(dash) if "router" in title.lower()]
    assert len(router_rows) == 1, list(row_members(dash))
    router_panels = row_members(dash)[router_rows[0]]
    assert 2 <= len(router_panels) <= 4, [p["title"] for p in router_panels]
    in_row = {n for p in router_panels for t in p["targets"] for n in metric_names(t["expr"])}
    assert not {n for n in in_row if n.startswith("sglang:")}, in_row
    # Anything that is neither a server metric nor `up` must be a real router metric.
    used = {n for e in exprs(dash) for n in metric_names(e) if not n.startswith("sglang:") and n != "up"}
    assert used and used <= in_row, (used, in_row)
    assert_queried_correctly(used, router_exported, dash)


def test_template_variables_filter_the_panels():
    dash = load()
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert set(variables) == {"host", "sglang_instance"}
    assert variables["host"]["query"] == 'label_values(up{job="sglang"}, host)'
    for name, v in variables.items():
        assert v["type"] == "query" and v["multi"] is True and v["includeAll"] is True, name
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"])
        assert m and m.group(2) == name, v["query"]  # each variable holds the label it is named after
        assert ("job", ("=", SERVER_JOB)) in selectors(m.group(1))[0][1].items(), v["query"]
    all_selectors = [s for e in exprs(dash) for s in selectors(e)]
    # Every variable's label is filtered on in the exprs ...
    for name in variables:
        assert any(m.get(name) == ("=~", "$" + name) for _, m in all_selectors), name
    # ... and on every selector of the server job (its `up` included), which every sglang: metric names.
    for name, m in all_selectors:
        assert name, m
        if name.startswith("sglang:"):
            assert m.get("job") == ("=", SERVER_JOB), (name, m)
        elif name == "up":
            assert m.get("job") in {("=", SERVER_JOB), ("=", ROUTER_JOB)}, m
        else:
            assert m.get("job") == ("=", ROUTER_JOB), (name, m)
        if m.get("job") == ("=", SERVER_JOB):
            for var in variables:
                assert m.get(var) == ("=~", "$" + var), (name, var, m)


def test_legends_name_labels_that_survive_the_aggregation():
    for p, t in targets(load()):
        groups = _GROUP.findall(t["expr"])
        if not groups:
            continue
        kept = {label.strip() for g in groups for label in g.split(",")} - {"le"}
        shown = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")))
        assert shown <= kept, (p["title"], t["expr"], shown - kept)
