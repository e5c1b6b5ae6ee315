"""model_cache's filters: the hub's refusals as messages, where each model lands and how it is copied,
and the hf download command of one model."""

TOKEN_VARS = "model_cache_token or model_cache_token_file"


def model_cache_revision_problems(results, has_token, endpoint):
    """One message per model whose revision the hub did not resolve (the uri results of the revision API)."""
    problems = []
    for r in results:
        status = r["status"]
        if status == 200:
            continue
        if status in (401, 403):
            why = (f"the hub refused the token (HTTP {status})" if has_token else
                   f"private or missing: the hub wants a token ({TOKEN_VARS})")
        else:
            why = f"not found on {endpoint} ({r.get('x_error_code') or 'HTTP 404'})"
        problems.append(f"model_cache_models: {r['item']['repo']}@{r['item']['revision']}: {why}")
    return problems


def model_cache_access_problems(results, has_token):
    """One message per gated model the token does not open (the uri results of the auth-check API)."""
    problems = []
    for r in results:
        if r["status"] not in (401, 403):
            continue
        why = (f"gated: the hub refuses the token ({TOKEN_VARS}) for it (HTTP {r['status']}); ask for access on the hub"
               if has_token else f"gated: the hub wants a token ({TOKEN_VARS}) to download it")
        problems.append(f"model_cache_models: {r['item']['repo']}: {why}")
    return problems


def model_cache_download_argv(model, hf):
    """The hf download command of one plan entry: its commit, its patterns, its own directory if it has one."""
    argv = [hf, "download", model["repo"], "--revision", model["sha"]]
    argv += [f"--include={p}" for p in model["include"]] + [f"--exclude={p}" for p in model["exclude"]]
    return argv + (["--local-dir", model["path"]] if model["local_dir"] else [])


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
        return {"model_cache_plan": model_cache_plan, "model_cache_revision_problems": model_cache_revision_problems,
                "model_cache_access_problems": model_cache_access_problems,
                "model_cache_download_argv": model_cache_download_argv}
