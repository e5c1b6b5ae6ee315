"""model_cache_plan: where each model lands and how it is copied, from the hub's answers."""


def model_cache_plan(tree_results, models_path, hf_home):
    """One entry per model from the registered results of the role's tree listing (hub_tree, every page).

    A model with `local_dir` lands in <models_path>/<local_dir>; one without keeps the HF
    cache layout under <hf_home>/hub, where the files to verify are its snapshot and the
    fan-out copies the whole repo folder (blobs, snapshots, refs)."""
    plan = []
    for result in tree_results:
        model = result["item"]["item"]
        sha = result["item"]["json"]["sha"]
        local_dir = model.get("local_dir") or ""
        if local_dir:
            path = f"{models_path}/{local_dir}"
            sync_src, sync_dest = f"models/{local_dir}", path
        else:
            folder = "models--" + model["repo"].replace("/", "--")
            sync_src, sync_dest = f"hub/{folder}", f"{hf_home}/hub/{folder}"
            path = f"{sync_dest}/snapshots/{sha}"
        plan.append({
            "repo": model["repo"], "sha": sha, "tree": result["tree"],
            "include": model.get("include") or [], "exclude": model.get("exclude") or [],
            "local_dir": local_dir, "path": path, "sync_src": sync_src, "sync_dest": sync_dest,
        })
    return plan


class FilterModule:
    def filters(self):
        return {"model_cache_plan": model_cache_plan}
