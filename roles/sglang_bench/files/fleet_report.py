#!/usr/bin/env python3
"""Fleet bench report and regression gate for `sglang.bench_serving` results.

Reads RUN_DIR/<host>/<instance>/<profile>.jsonl (+ optional <host>/meta.json), writes
report.md, report.csv, summary.json, gate.json and plots/*.png into RUN_DIR, and compares
against a baseline summary.json. Exit 0 = pass (or no gate), 1 = regression, 2 = bad input.
"""
import argparse
import csv
import json
import math
import shlex
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs on the Ansible controller and in CI
import matplotlib.pyplot as plt  # noqa: E402

# Metrics kept per row. Old SGLang lines lack many of them; those stay None ("n/a").
METRICS = [
    "completed", "duration", "total_input_tokens", "total_output_tokens",
    "request_throughput", "input_throughput", "output_throughput", "total_throughput",
    "mean_ttft_ms", "median_ttft_ms", "std_ttft_ms", "p99_ttft_ms",
    "mean_tpot_ms", "median_tpot_ms", "std_tpot_ms", "p99_tpot_ms",
    "mean_itl_ms", "median_itl_ms", "std_itl_ms", "p95_itl_ms", "p99_itl_ms",
    "mean_e2e_latency_ms", "median_e2e_latency_ms", "std_e2e_latency_ms", "p99_e2e_latency_ms",
    "concurrency",
]
KEY = ("host", "instance", "profile", "max_concurrency")
# Table columns: (metric, header, decimals).
HOST_TABLE = [("completed", "completed", 0), ("request_throughput", "req/s", 2),
              ("output_throughput", "out tok/s", 1), ("total_throughput", "total tok/s", 1)] + [
    (f"{stat}_{m}_ms", f"{m.upper()} {stat} ms", 1 if m == "ttft" else 2)
    for m in ("ttft", "tpot", "itl") for stat in ("mean", "median", "p99")]
FLEET_TABLE = [("completed", "completed", 0), ("request_throughput", "req/s", 2),
               ("total_throughput", "total tok/s", 1), ("median_ttft_ms", "TTFT median ms", 1),
               ("p99_ttft_ms", "TTFT p99 ms", 1), ("median_tpot_ms", "TPOT median ms", 2),
               ("p99_tpot_ms", "TPOT p99 ms", 2), ("median_itl_ms", "ITL median ms", 2)]
PLOTS = ["throughput.png", "latency.png", "sweep.png"]


class InputError(Exception):
    """Bad input: reported on stderr, exit 2."""


def num(value):
    """A finite number, else None (bool, null, NaN, strings are not metrics)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def normalize(line):
    """One bench_serving JSON line -> metrics dict, whatever SGLang version wrote it."""
    row = {k: num(line.get(k)) for k in METRICS}
    if row["total_throughput"] is None:
        # Before SGLang PR #9790 (Aug 2025) the JSONL had no total_throughput: derive it the
        # way bench_serving computes it, (input + output tokens) / duration.
        inp, out = row["input_throughput"], row["output_throughput"]
        tin, tout, dur = row["total_input_tokens"], row["total_output_tokens"], row["duration"]
        if inp is not None and out is not None:
            row["total_throughput"] = inp + out
        elif None not in (tin, tout) and dur:
            row["total_throughput"] = (tin + tout) / dur
    row["schema"] = "new" if "total_throughput" in line else "old"
    mc = num(line.get("max_concurrency"))
    row["max_concurrency"] = int(mc) if mc is not None else None  # null/absent = unbounded
    rate = line.get("request_rate")
    # Infinity is not valid JSON for other tools: keep it as the string "inf".
    row["request_rate"] = "inf" if rate == float("inf") else rate
    row["backend"], row["dataset_name"] = line.get("backend"), line.get("dataset_name")
    row["simulated"] = line.get("simulated") is True
    return row


def conc_key(c):
    return (c is None, c or 0)  # unbounded sorts after every number


def conc_label(c):
    return "unbounded" if c is None else str(c)


def read_json(path, what):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {what} {path}: {exc}") from exc


def load_run(run_dir):
    """-> (rows sorted by KEY, {host: meta}, notes)."""
    files = sorted(run_dir.glob("*/*/*.jsonl"))
    if not files:
        raise InputError(f"no <host>/<instance>/<profile>.jsonl found in {run_dir}")
    rows, notes = {}, []
    for path in files:
        host, instance, profile = path.parent.parent.name, path.parent.name, path.stem
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from exc
        for lineno, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError as exc:
                raise InputError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
            if not isinstance(line, dict):
                raise InputError(f"{path}:{lineno}: not a JSON object")
            row = {"host": host, "instance": instance, "profile": profile, **normalize(line)}
            key = tuple(row[k] for k in KEY)
            if key in rows:  # the file is appended to: a re-run supersedes the older line
                notes.append(f"{path.relative_to(run_dir)}:{lineno} supersedes an earlier line "
                             f"for concurrency={conc_label(row['max_concurrency'])}")
            rows[key] = row
    if not rows:  # e.g. every bench failed and left empty files
        raise InputError(f"no bench results in {run_dir}: every JSONL file is empty")
    metas = {}
    for host in sorted({r["host"] for r in rows.values()}):
        meta_path = run_dir / host / "meta.json"
        if meta_path.is_file():
            meta = read_json(meta_path, "host meta")
            if not isinstance(meta, dict):
                raise InputError(f"{meta_path}: not a JSON object")
            metas[host] = meta
    ordered = sorted(rows.values(), key=lambda r: (r["host"], r["instance"], r["profile"],
                                                   conc_key(r["max_concurrency"])))
    return ordered, metas, notes


def meta_dict(meta, key):
    value = (meta or {}).get(key)
    return value if isinstance(value, dict) else {}


def revisions(meta):
    revs = meta_dict(meta, "model_revisions")
    return ";".join(f"{repo}={rev}" for repo, rev in sorted(revs.items())) or "n/a"


def launch_flags(cmd):
    """The server flags of a container's Cmd (docker inspect): from the first `--flag` on,
    past the shell wrapper that sglang_server puts in front of launch_server."""
    if not isinstance(cmd, list):
        return None
    start = next((i for i, word in enumerate(cmd) if str(word).startswith("--")), len(cmd))
    return cmd[start:]


def redact(flags):
    """Flags as strings, with any --api-key value hidden: the report is shared."""
    out = [str(f) for f in flags]
    for i, flag in enumerate(out):
        if flag == "--api-key" and i + 1 < len(out):
            out[i + 1] = "REDACTED"
        elif flag.startswith("--api-key="):
            out[i] = "--api-key=REDACTED"
    return out


def fleet_profile(rows):
    profiles = [r["profile"] for r in rows]
    return "lesson" if "lesson" in profiles else profiles[0]


def representative(rows, host, profile):
    """The row that stands for a host in fleet views: first instance, lowest concurrency."""
    return next((r for r in rows if r["host"] == host and r["profile"] == profile), None)


def fmt(value, digits=1):
    if value is None:
        return "n/a"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def find_previous(run_dir):
    """Newest sibling run (names sort by time) older than run_dir that has a summary.json."""
    older = [d for d in run_dir.parent.iterdir()
             if d.is_dir() and d.name < run_dir.name and (d / "summary.json").is_file()]
    return max(older, key=lambda d: d.name) if older else None


def load_baseline(spec, run_dir):
    """-> (label, rows) or (None, None) when there is nothing to compare against."""
    if spec == "none":
        return None, None
    if spec == "previous":
        prev = find_previous(run_dir)
        if prev is None:
            return None, None
        path = prev / "summary.json"
    else:
        path = Path(spec)
        path = path / "summary.json" if path.is_dir() else path
        if not path.is_file():
            raise InputError(f"baseline not found: {path}")
    data = read_json(path, "baseline")
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise InputError(f"baseline {path} has no 'rows' list (not a fleet_report summary.json)")
    return str(path), data["rows"]


def gate(rows, base_rows, drop, growth, ttft_floor=0.0):
    """Compare matched rows; -> dict with regressions, compared, not_compared, skipped."""
    base = {tuple(r.get(k) for k in KEY): r for r in base_rows if isinstance(r, dict)}
    out = {"regressions": [], "compared": 0, "not_compared": [], "skipped": []}
    # (metric, label, unit, sign, limit, floor): a regression is sign * change > limit and an
    # absolute difference above floor (a few ms of p99 TTFT is noise, not a regression).
    checks = [("total_throughput", "total token throughput", "tok/s", -1, drop, 0.0),
              ("p99_ttft_ms", "p99 TTFT", "ms", 1, growth, ttft_floor)]
    for row in rows:
        key = tuple(row[k] for k in KEY)
        where = (f"{row['host']} instance={row['instance']} profile={row['profile']} "
                 f"concurrency={conc_label(row['max_concurrency'])}")
        old = base.pop(key, None)
        if old is None:
            out["not_compared"].append(f"{where}: no baseline row")
            continue
        out["compared"] += 1
        for metric, label, unit, sign, limit, floor in checks:
            was, now = num(old.get(metric)), row[metric]
            if was is None or now is None or was <= 0:
                side = "this run" if now is None else "the baseline"
                out["skipped"].append(f"{where}: {metric} missing in {side}, not gated")
                continue
            change = now / was - 1
            if sign * change > limit and abs(now - was) > floor:
                allowed = f"{'-' if sign < 0 else '+'}{limit * 100:g}%"
                msg = (f"REGRESSION {where}: {label} {was:.1f} -> {now:.1f} {unit} "
                       f"({change * 100:+.1f}%, allowed {allowed})")
                out["regressions"].append({**{k: row[k] for k in KEY}, "metric": metric,
                                           "baseline": was, "current": now,
                                           "change": change, "message": msg})
    out["not_compared"] += [f"{k[0]} instance={k[1]} profile={k[2]} concurrency={conc_label(k[3])}"
                            ": in the baseline, not in this run" for k in base]
    return out


def table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(cells) + " |" for cells in lines]


def render_md(run_dir, rows, metas, notes, verdict, plots):
    simulated = any(r["simulated"] for r in rows)
    hosts = sorted({r["host"] for r in rows})
    md = [f"# {'SIMULATED ' if simulated else ''}Fleet bench report", "",
          f"Run: `{run_dir.name}` - {len(rows)} rows, {len(hosts)} hosts", ""]
    if simulated:
        md += ["> SIMULATED: these numbers come from the simulated bench (no GPU); "
               "they test the pipeline, not the hardware.", ""]
    for host in hosts:
        meta = metas.get(host) or {}
        md += [f"## {host}", "", f"- image: `{meta.get('image') or 'n/a'}`",
               f"- model revisions: `{revisions(meta)}`"]
        instances = meta_dict(meta, "instances")
        for name in sorted({r["instance"] for r in rows if r["host"] == host} | set(instances)):
            inst = meta_dict(instances, name)
            flags = inst.get("flags") or launch_flags(inst.get("cmd"))
            flags = f"`{shlex.join(redact(flags))}`" if isinstance(flags, list) and flags else "n/a"
            md.append(f"- instance `{name}` flags: {flags}")
        md.append("")
        md += table(["instance", "profile", "concurrency"] + [h for _, h, _ in HOST_TABLE],
                    [[r["instance"], r["profile"], conc_label(r["max_concurrency"])]
                     + [fmt(r[k], d) for k, _, d in HOST_TABLE] for r in rows if r["host"] == host])
        md.append("")
    profile = fleet_profile(rows)
    picks = [p for p in (representative(rows, h, profile) for h in hosts) if p]
    best = max((p["total_throughput"] or 0 for p in picks), default=0)
    md += [f"## Fleet: profile `{profile}`", "",
           "One row per host (its first instance, lowest concurrency).", ""]
    md += table(["host", "instance", "concurrency"] + [h for _, h, _ in FLEET_TABLE]
                + ["% of best tok/s"],
                [[p["host"], p["instance"], conc_label(p["max_concurrency"])]
                 + [fmt(p[k], d) for k, _, d in FLEET_TABLE]
                 + [f"{p['total_throughput'] / best:.0%}" if best and p["total_throughput"]
                    else "n/a"] for p in picks])
    md.append("")
    if verdict is not None:
        md += ["## Regression gate", "", f"- baseline: `{verdict['baseline'] or 'none'}`",
               f"- margins: total token throughput -{verdict['max_throughput_drop'] * 100:g}%, "
               f"p99 TTFT +{verdict['max_ttft_p99_growth'] * 100:g}% "
               f"(and more than {verdict['min_ttft_p99_delta_ms']:g} ms)",
               f"- verdict: **{verdict['verdict']}** - {verdict['summary']}", ""]
        md += [f"- `{r['message']}`" for r in verdict["regressions"]]
        md += [f"- not compared: {x}" for x in verdict["not_compared"]]
        md += [f"- note: {x}" for x in verdict["skipped"]]
        md.append("")
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    md += ["## Plots", ""] + [f"![{p}](plots/{p})" for p in plots] + [""]
    return "\n".join(md)


def write_csv(path, rows, metas):
    cols = list(KEY) + ["request_rate", "backend", "dataset_name", "schema", "simulated",
                        "image", "model_revisions"] + METRICS
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(cols)
        for r in rows:
            meta = metas.get(r["host"]) or {}
            extra = {"image": meta.get("image") or "n/a", "model_revisions": revisions(meta)}
            out.writerow(["n/a" if v is None else v for v in
                          ({**r, **extra}.get(c) for c in cols)])


def nan(value):
    return float("nan") if value is None else value  # matplotlib leaves a gap for NaN


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)  # pyplot keeps every figure alive until closed


def write_plots(plot_dir, rows):
    """-> the plot file names written; sweep.png only for a concurrency sweep."""
    plot_dir.mkdir(exist_ok=True)
    sim = " (SIMULATED)" if any(r["simulated"] for r in rows) else ""
    hosts = sorted({r["host"] for r in rows})
    profiles = sorted({r["profile"] for r in rows})
    x = range(len(hosts))
    width = 0.8 / len(profiles)
    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(hosts)), 4))
    for i, prof in enumerate(profiles):
        vals = [nan((representative(rows, h, prof) or {}).get("total_throughput")) for h in hosts]
        ax.bar([j + i * width for j in x], vals, width, label=prof)
    ax.set_xticks([j + width * (len(profiles) - 1) / 2 for j in x], hosts)
    ax.set_ylabel("total token throughput (tok/s)")
    ax.set_title("Total token throughput per host" + sim)
    ax.legend(title="profile")
    save(fig, plot_dir / "throughput.png")

    profile = fleet_profile(rows)
    picks = [representative(rows, h, profile) or {} for h in hosts]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 2.5 * len(hosts)), 4))
    for ax, name in zip(axes, ("ttft", "tpot")):
        for i, stat in enumerate(("median", "p99")):
            vals = [nan(p.get(f"{stat}_{name}_ms")) for p in picks]
            ax.bar([j + i * 0.4 for j in x], vals, 0.4, label=stat)
        ax.set_xticks([j + 0.2 for j in x], hosts)
        ax.set_ylabel(f"{name.upper()} (ms)")
        ax.set_title(f"{name.upper()} - profile {profile}{sim}")
        ax.legend()
    save(fig, plot_dir / "latency.png")

    series = {}
    for r in rows:
        if r["max_concurrency"] is not None:
            series.setdefault((r["host"], r["instance"], r["profile"]), []).append(r)
    series = {k: v for k, v in series.items() if len(v) > 1}
    sweep = plot_dir / "sweep.png"
    if not series:
        sweep.unlink(missing_ok=True)  # a re-run must not keep a stale sweep plot
        return PLOTS[:2]
    one_kind = len({k[1:] for k in series}) == 1
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (host, inst, prof), pts in sorted(series.items()):
        label = host if one_kind else f"{host}/{inst}/{prof}"
        xs = [p["max_concurrency"] for p in pts]
        axes[0].plot(xs, [nan(p["total_throughput"]) for p in pts], marker="o", label=label)
        axes[1].plot(xs, [nan(p["p99_ttft_ms"]) for p in pts], marker="o", label=label)
    for ax, ylabel in zip(axes, ("total token throughput (tok/s)", "p99 TTFT (ms)")):
        ax.set_xlabel("max concurrency")
        ax.set_ylabel(ylabel)
        ax.legend()
    fig.suptitle("Concurrency sweep" + sim)
    save(fig, sweep)
    return PLOTS


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="reports/<run id> with <host>/<instance>/*.jsonl")
    p.add_argument("--baseline", default="none",
                   help="'previous', 'none' (default), a run directory or a summary.json")
    p.add_argument("--max-throughput-drop", type=float, default=0.10,
                   help="allowed fractional drop of total token throughput (default 0.10)")
    p.add_argument("--max-ttft-p99-growth", type=float, default=0.25,
                   help="allowed fractional growth of p99 TTFT (default 0.25)")
    p.add_argument("--min-ttft-p99-delta-ms", type=float, default=0.0,
                   help="p99 TTFT growth below this many ms is never a regression (default 0)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p.parse_args(argv)


def run(args):
    drop, growth = args.max_throughput_drop, args.max_ttft_p99_growth
    if not (math.isfinite(drop) and 0 <= drop < 1):
        raise InputError(f"--max-throughput-drop must be in [0, 1), got {drop}")
    if not (math.isfinite(growth) and growth >= 0):
        raise InputError(f"--max-ttft-p99-growth must be >= 0, got {growth}")
    floor = args.min_ttft_p99_delta_ms
    if not (math.isfinite(floor) and floor >= 0):
        raise InputError(f"--min-ttft-p99-delta-ms must be >= 0, got {floor}")
    run_dir = args.run_dir.resolve()
    if not run_dir.is_dir():
        raise InputError(f"run directory not found: {args.run_dir}")
    rows, metas, notes = load_run(run_dir)
    label, base_rows = load_baseline(args.baseline, run_dir)

    verdict = None
    if args.baseline != "none":
        verdict = {"baseline": label, "max_throughput_drop": drop,
                   "max_ttft_p99_growth": growth, "min_ttft_p99_delta_ms": floor,
                   "regressions": [], "compared": 0,
                   "not_compared": [], "skipped": []}
        if base_rows is None:
            verdict.update(verdict="SKIPPED", summary="no previous run: gate skipped")
        else:
            verdict.update(gate(rows, base_rows, drop, growth, floor))
            n = len(verdict["regressions"])
            verdict.update(verdict="FAIL" if n else "PASS",
                           summary=f"{n} regression(s) in {verdict['compared']} compared row(s)")

    plots = write_plots(run_dir / "plots", rows)
    report = run_dir / "report.md"
    report.write_text(render_md(run_dir, rows, metas, notes, verdict, plots))
    write_csv(run_dir / "report.csv", rows, metas)
    summary = {"run": run_dir.name, "rows": rows}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    gate_doc = verdict or {"baseline": None, "verdict": "NOT RUN", "summary": "--baseline none",
                           "regressions": [], "compared": 0}
    (run_dir / "gate.json").write_text(json.dumps(gate_doc, indent=1) + "\n")

    hosts = len({r["host"] for r in rows})
    if args.json:
        print(json.dumps({"report": str(report), "rows": len(rows), "hosts": hosts,
                          "gate": gate_doc}, indent=1))
    else:
        for reg in gate_doc["regressions"]:
            print(reg["message"])
        for line in gate_doc.get("not_compared", []):
            print(f"not compared: {line}")
        print(f"report: {report}")
        print(f"rows: {len(rows)}, hosts: {hosts}")
        print(f"gate: {gate_doc['verdict']} - {gate_doc['summary']}")
    return 1 if gate_doc["regressions"] else 0


def main(argv=None):
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors; keep main() returning
        return exc.code
    try:
        return run(args)
    except InputError as exc:
        print(f"fleet_report: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
