"""The molecule scenarios can run side by side (make test runs them at once): every container and network of
a scenario carries the scenario's name, no two scenarios share one, and the tests take their hosts from the
scenario's inventory instead of naming them; every host is built as the shared config builds it."""
import ipaddress
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = yaml.safe_load((REPO / ".config" / "molecule" / "config.yml").read_text())
SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))


def platforms(scenario):
    """The scenario's platforms (its own, or the shared ones), with ${MOLECULE_SCENARIO_NAME} filled in."""
    own = yaml.safe_load((REPO / "molecule" / scenario / "molecule.yml").read_text())
    found = own.get("platforms") or SHARED["platforms"]
    return yaml.safe_load(yaml.safe_dump(found).replace("${MOLECULE_SCENARIO_NAME}", scenario))


def test_there_are_scenarios():
    assert {"default", "fleet", "multinode"} <= set(SCENARIOS), SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_container_and_network_carries_the_scenario_name(scenario):
    for platform in platforms(scenario):
        assert platform["name"].startswith(f"{scenario}-"), platform["name"]
        for network in platform.get("networks", []) + platform.get("docker_networks", []):
            assert network["name"] == f"spark-sim-{scenario}", (platform["name"], network)


def test_no_two_scenarios_share_a_container_or_network():
    seen = {}
    for scenario in SCENARIOS:
        names = {p["name"] for p in platforms(scenario)}
        names |= {n["name"] for p in platforms(scenario) for n in p.get("networks", [])}
        for name in names:
            assert name not in seen, f"{name} is in scenarios {seen[name]} and {scenario}"
            seen[name] = scenario


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_tests_name_no_host_of_their_own(scenario):
    # Hosts come from playbook_run.hosts(group); a literal host name would tie a test to one scenario's names.
    literal = re.compile(r"""["'](?:spark-sim-\d|gateway-\d|sim-infra|(?:default|fleet|multinode)-(?:spark|gateway|sim-infra)[-\w]*)["']""")
    for path in sorted((REPO / "molecule" / scenario / "tests").glob("*.py")):
        found = literal.findall(path.read_text())
        assert not found, f"{path.relative_to(REPO)} names hosts: {found}"


# What makes a host the shared config's sim Spark (systemd, the inner dockerd's capabilities and mounts) or its
# sim-infra; a scenario with more hosts restates them (molecule replaces a list, YAML anchors stay in their file),
# and this keeps every copy equal to the shared one. Only the name, the groups and the network may differ.
OWN_KEYS = {"name", "groups", "networks", "docker_networks"}


def shape(platform):
    return {k: v for k, v in platform.items() if k not in OWN_KEYS}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_host_is_built_as_the_shared_config_builds_it(scenario):
    spark, infra = (shape(p) for p in SHARED["platforms"])
    for platform in platforms(scenario):
        wanted = infra if "sim_infra" in platform["groups"] else spark
        assert shape(platform) == wanted, (scenario, platform["name"])


def host_vars(scenario):
    own = yaml.safe_load((REPO / "molecule" / scenario / "molecule.yml").read_text())
    return own["provisioner"]["inventory"].get("host_vars") or {}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sparks_and_gateways_are_reached_over_ssh_at_their_fixed_address(scenario):
    """Each Spark and gateway is reached over SSH at the address its container gets; sim-infra keeps the docker
    connection. The addresses come from the scenario's own subnet, outside the range Docker hands out itself."""
    found = host_vars(scenario)
    for platform in platforms(scenario):
        (network,) = platform["networks"]
        if "sim_infra" in platform["groups"]:
            assert "ipv4_address" not in network and platform["name"] not in found, platform["name"]
            continue
        (ipam,) = next(n for p in platforms(scenario) for n in p.get("docker_networks", []))["ipam_config"]
        address = ipaddress.ip_address(network["ipv4_address"])
        assert address in ipaddress.ip_network(ipam["subnet"]) and address not in ipaddress.ip_network(ipam["iprange"])
        assert found[platform["name"]]["ansible_connection"] == "ssh", platform["name"]
        assert found[platform["name"]]["ansible_host"] == network["ipv4_address"], platform["name"]


def test_no_two_scenarios_share_a_subnet_nor_the_demos():
    subnets = {s: {n["ipam_config"][0]["subnet"] for p in platforms(s) for n in p.get("docker_networks", [])} for s in SCENARIOS}
    demo = yaml.safe_load((REPO / "inventory" / "sim" / "group_vars" / "all" / "sim.yml").read_text())["sim_network_subnet"]
    assert all(len(found) == 1 for found in subnets.values()), subnets
    assert len({demo, *(found.pop() for found in subnets.values())}) == len(SCENARIOS) + 1, subnets
