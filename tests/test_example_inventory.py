"""inventory/example (the README's starting point for a real fleet): it parses, has the groups the
playbooks use, and every variable it sets is one a role documents (a typo would be silently ignored)."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "inventory" / "example"
CONNECTION_VARS = {"ansible_user", "ansible_become", "ansible_host"}


def documented_variables():
    names = set()
    for spec in REPO.glob("roles/*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            names.update(entry.get("options", {}))
    return names


def test_example_inventory_parses_with_sparks_and_a_gateway():
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(EXAMPLE / "hosts.yml"), "--list"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    inv = json.loads(out)
    assert len(inv["sparks"]["hosts"]) >= 1 and len(inv["gateway"]["hosts"]) == 1


def test_every_example_variable_is_a_documented_role_variable():
    known = documented_variables() | CONNECTION_VARS
    used = set()
    for f in EXAMPLE.glob("group_vars/*/*.yml"):
        used.update(yaml.safe_load(f.read_text()) or {})
    assert used, "no variables found in inventory/example/group_vars"
    assert sorted(used - known) == []


def test_readme_and_example_name_the_current_image_line():
    """The line docs/upstream.md records as NVIDIA's current one for the Spark, pinned by digest in the example."""
    current = "lmsysorg/sglang:latest-cu130"
    assert f"**`{current}`**" in (REPO / "docs" / "upstream.md").read_text()
    assert f"IMAGE=docker.io/{current}\n" in (REPO / "README.md").read_text()
    sparks = (EXAMPLE / "group_vars" / "sparks" / "main.yml").read_text()
    assert current in sparks and "lmsysorg/sglang:spark" not in sparks
    images = yaml.safe_load(sparks)["registry_mirror_images"]
    assert all("@sha256:" in image for image in images), images
