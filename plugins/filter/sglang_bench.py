"""sglang_bench_runs: bench profiles (inventory data) -> one bench_serving run per concurrency level.

A profile is a dict of `sglang.bench_serving` flags; its max_concurrency may be a list (a sweep).
The flags the role sets itself are refused here, so a profile cannot point a run elsewhere."""
import json

from ansible.errors import AnsibleFilterError

DATASETS = ("sharegpt", "random", "random-ids", "generated-shared-prefix")
# Datasets read from --dataset-path (the others are generated).
FILE_DATASETS = ("sharegpt", "random")
RESERVED = ("host", "port", "base_url", "output_file", "dataset_path", "tokenizer", "api_key", "model")


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def sglang_bench_runs(profiles, names):
    """[{profile, concurrency, needs_dataset, args}] for the profiles named, in order."""
    if not isinstance(profiles, dict):
        raise AnsibleFilterError(f"sglang_bench_profiles must be a mapping of profile name to flags, got {profiles!r}")
    if not isinstance(names, list) or not names:
        raise AnsibleFilterError(f"sglang_bench_run must be a non-empty list of profile names, got {names!r}")
    runs = []
    for name in names:
        if name not in profiles:
            raise AnsibleFilterError(f"sglang_bench_run: no profile {name!r} in sglang_bench_profiles ({', '.join(sorted(profiles))})")
        profile = profiles[name]
        where = f"sglang_bench_profiles.{name}"
        if not isinstance(profile, dict):
            raise AnsibleFilterError(f"{where} must be a mapping of bench_serving flags, got {profile!r}")
        reserved = sorted(set(profile) & set(RESERVED))
        if reserved:
            raise AnsibleFilterError(f"{where} must not set {', '.join(reserved)}: the role sets them")
        dataset = profile.get("dataset_name", "sharegpt")
        if dataset not in DATASETS:
            raise AnsibleFilterError(f"{where}.dataset_name must be one of {', '.join(DATASETS)}, got {dataset!r}")
        if "num_prompts" in profile and not _positive_int(profile["num_prompts"]):
            raise AnsibleFilterError(f"{where}.num_prompts must be a positive integer, got {profile['num_prompts']!r}")
        levels = profile.get("max_concurrency")
        levels = levels if isinstance(levels, list) else [levels]
        if not levels or not all(level is None or _positive_int(level) for level in levels):
            raise AnsibleFilterError(f"{where}.max_concurrency must be a positive integer or a list of them, got {profile.get('max_concurrency')!r}")
        for level in levels:
            args = {key: value for key, value in profile.items() if key != "max_concurrency"}
            args["dataset_name"] = dataset
            if level is not None:
                args["max_concurrency"] = level
            runs.append({"profile": name, "concurrency": level, "needs_dataset": dataset in FILE_DATASETS, "args": args})
    return runs


def sglang_bench_host_meta(inspect_results, host, targets, models):
    """meta.json of one host: what ran (each instance's container, read by the role's inspect task) and the
    models' revisions. The inspect results are in the order of the targets."""
    containers = [json.loads(r["stdout"]) for r in inspect_results]
    return {
        "host": host,
        "image": " ".join(dict.fromkeys(c["image"] for c in containers)),
        "model_revisions": {m["repo"]: m["revision"] for m in models},
        "instances": {t["name"]: c for t, c in zip(targets, containers)},
    }


class FilterModule:
    def filters(self):
        return {"sglang_bench_runs": sglang_bench_runs, "sglang_bench_host_meta": sglang_bench_host_meta}
