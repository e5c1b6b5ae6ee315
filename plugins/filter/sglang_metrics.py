"""sglang_metrics_scrape_configs: Prometheus scrape configs for the fleet, from inventory.

sglang_server's validate tasks leave, per host, sglang_server_serving_plan (the instances that
serve the API, with their flags: none on a multi-node worker, whose port has only SGLang's dummy
health server, not scraped) and sglang_server_worker_urls (their URLs, in the same order);
sglang_router's leave sglang_router_metrics_address. Only instances with enable_metrics have a
/metrics page, so only they become targets."""
from urllib.parse import urlsplit


def _is_on(value):
    return value is True or str(value).strip().lower() in ("true", "yes", "1", "on")


def _server_targets(hostvars, hosts):
    groups = []
    for host in hosts:
        facts = hostvars[host]
        plan = facts.get("sglang_server_serving_plan") or []
        urls = facts.get("sglang_server_worker_urls") or []
        for instance, url in zip(plan, urls):
            if _is_on((instance.get("args") or {}).get("enable_metrics")):
                groups.append({"targets": [urlsplit(url).netloc],
                               "labels": {"host": host, "sglang_instance": instance["name"]}})
    return groups


def sglang_metrics_scrape_configs(hostvars, worker_hosts, router_hosts=(), interval="15s"):
    """One `sglang` job (every SGLang instance with metrics) and one `sglang-router` job."""
    configs = []
    servers = _server_targets(hostvars, worker_hosts)
    if servers:
        configs.append({"job_name": "sglang", "scrape_interval": interval, "static_configs": servers})
    routers = [{"targets": [hostvars[h]["sglang_router_metrics_address"]], "labels": {"host": h}}
               for h in router_hosts if hostvars[h].get("sglang_router_metrics_address")]
    if routers:
        configs.append({"job_name": "sglang-router", "scrape_interval": interval, "static_configs": routers})
    return configs


def sglang_metrics_unscraped(hostvars, worker_hosts):
    """host/instance of the instances that serve without enable_metrics (no /metrics page)."""
    return [f"{host}/{instance['name']}" for host in worker_hosts
            for instance in hostvars[host].get("sglang_server_serving_plan") or []
            if not _is_on((instance.get("args") or {}).get("enable_metrics"))]


class FilterModule:
    def filters(self):
        return {"sglang_metrics_scrape_configs": sglang_metrics_scrape_configs,
                "sglang_metrics_unscraped": sglang_metrics_unscraped}
