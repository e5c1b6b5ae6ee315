"""sglang_rollout_summary: what a rollout did to each host, from the facts sglang_server left.

sglang_server records sglang_server_replaced (instances restarted with a new configuration) and
sglang_server_rolled_back (instances put back on their last good one); the deploy play records
sglang_rollout_state ("reached" when a host's batch started, "failed" when it failed)."""


def _host_line(host, facts):
    rolled_back = list(facts.get("sglang_server_rolled_back") or [])
    replaced = list(facts.get("sglang_server_replaced") or [])
    state = facts.get("sglang_rollout_state")
    if rolled_back:
        return f"{host}: ROLLED BACK {', '.join(rolled_back)} (the new configuration never got healthy)"
    if state == "failed":
        return f"{host}: FAILED" + (f" after replacing {', '.join(replaced)}" if replaced else "")
    if replaced:
        return f"{host}: changed ({', '.join(replaced)} replaced)"
    if state == "reached":
        return f"{host}: unchanged"
    return f"{host}: untouched (its batch never started)"


def sglang_rollout_summary(hostvars, hosts):
    """One line per host, in inventory order."""
    return [_host_line(host, hostvars[host]) for host in hosts]


class FilterModule:
    def filters(self):
        return {"sglang_rollout_summary": sglang_rollout_summary}
