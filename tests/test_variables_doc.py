"""docs/variables.md is generated from the roles' argument specs and must stay current.

scripts/role_variables_doc.py writes it; these tests run its --check, show that --check notices a
changed spec, and check that no role default is missing from the document (that is: from the
role's meta/argument_specs.yml, which Ansible validates the inputs against).
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "role_variables_doc.py"
DOC = ROOT / "docs" / "variables.md"
STALE = "docs/variables.md is out of date: run python3 scripts/role_variables_doc.py"


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          check=False)


def test_committed_document_is_current():
    result = run_script("--check")
    assert result.returncode == 0, result.stdout + result.stderr


def copy_roles(tmp_path):
    """The roles' specs and defaults files, in a copy of roles/ (what the document is written from)."""
    roles = tmp_path / "roles"
    for source in sorted([*ROOT.glob("roles/*/meta/argument_specs.yml"), *ROOT.glob("roles/*/defaults/main.yml")]):
        dest = roles / source.relative_to(ROOT / "roles")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)
    return roles


def test_check_fails_when_a_spec_gains_a_variable(tmp_path):
    roles = copy_roles(tmp_path)
    # The unchanged copy passes, so the failure below comes from the added variable alone.
    assert run_script("--check", "--roles-dir", str(roles)).returncode == 0

    spec_file = roles / "sglang_verify" / "meta" / "argument_specs.yml"
    specs = yaml.safe_load(spec_file.read_text())
    specs["argument_specs"]["main"]["options"]["sglang_verify_new_knob"] = {
        "type": "int", "default": 1, "description": "A variable docs/variables.md does not know yet."}
    spec_file.write_text(yaml.safe_dump(specs, sort_keys=False))

    committed = DOC.read_text()
    result = run_script("--check", "--roles-dir", str(roles))
    assert result.returncode == 1
    assert STALE in result.stderr
    assert DOC.read_text() == committed  # --check reports, it never rewrites the document
    out = tmp_path / "variables.md"
    assert run_script("--roles-dir", str(roles), "--output", str(out)).returncode == 0
    assert "| `sglang_verify_new_knob` | int | no | `1` |" in out.read_text()


def documented_variables():
    """Variable names per role section (`## role`) of docs/variables.md."""
    sections = re.split(r"^## (\S+)\n", DOC.read_text(), flags=re.M)[1:]
    return {role: set(re.findall(r"^\| `([^`]+)` \|", body, flags=re.M))
            for role, body in zip(sections[::2], sections[1::2])}


def test_every_role_default_is_documented():
    documented = documented_variables()
    missing = []
    for defaults in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        role = defaults.parent.parent.name
        names = yaml.safe_load(defaults.read_text()) or {}
        missing += [f"{role}: {name}" for name in names if name not in documented.get(role, set())]
    assert not missing, ("role defaults missing from meta/argument_specs.yml (so from docs/variables.md):\n  "
                         + "\n  ".join(missing))


def spec_options(role_dir):
    """{entry point: {option: spec}} of a role's meta/argument_specs.yml."""
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return {entry: spec.get("options") or {} for entry, spec in specs.items()}


def disagreements(role_dir):
    """Where a role's spec and its defaults/main.yml disagree. defaults/main.yml holds every default (Ansible applies
    only it, not a spec's `default`: ansible/ansible#77664); the spec repeats a default for the docs, and must
    repeat it exactly, and has none for a variable the defaults file does not set."""
    path = role_dir / "defaults" / "main.yml"
    defaults = (yaml.safe_load(path.read_text()) if path.is_file() else None) or {}
    found = []
    for entry, options in spec_options(role_dir).items():
        for name, spec in options.items():
            if "default" not in spec:
                continue
            if name not in defaults:
                found.append(f"{role_dir.name} {entry}: {name} has a spec default {spec['default']!r} "
                             "but no value in defaults/main.yml")
            elif spec["default"] != defaults[name]:
                found.append(f"{role_dir.name} {entry}: {name} is {spec['default']!r} in the spec "
                             f"and {defaults[name]!r} in defaults/main.yml")
    return found


def test_every_spec_default_is_the_roles_default():
    found = [problem for role in sorted(ROOT.glob("roles/*/")) for problem in disagreements(role)]
    assert not found, "\n  ".join(["meta/argument_specs.yml and defaults/main.yml disagree:", *found])


def test_the_agreement_check_notices_a_changed_default(tmp_path):
    role = tmp_path / "roles" / "demo_role"
    shutil.copytree(ROOT / "roles" / "sglang_verify", role)
    assert disagreements(role) == []
    defaults = role / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text().replace("sglang_verify_max_tokens: 100", "sglang_verify_max_tokens: 64"))
    spec = role / "meta" / "argument_specs.yml"
    specs = yaml.safe_load(spec.read_text())
    specs["argument_specs"]["main"]["options"]["sglang_verify_unset"] = {"type": "str", "default": "x",
                                                                         "description": "Only in the spec."}
    spec.write_text(yaml.safe_dump(specs))
    found = disagreements(role)
    assert any("main: sglang_verify_max_tokens is 100 in the spec and 64 in defaults/main.yml" in p for p in found), found
    assert any("main: sglang_verify_unset has a spec default 'x' but no value in defaults/main.yml" in p
               for p in found), found


def test_a_new_default_sglang_flag_is_one_edit_in_defaults_and_the_generated_docs(tmp_path):
    roles = copy_roles(tmp_path)
    defaults = roles / "sglang_server" / "defaults" / "main.yml"
    edited = defaults.read_text().replace("sglang_server_default_args:\n", "sglang_server_default_args:\n  log_level: info\n")
    assert edited != defaults.read_text()
    defaults.write_text(edited)  # the one edit by hand
    assert disagreements(roles / "sglang_server") == []
    assert run_script("--check", "--roles-dir", str(roles)).returncode == 1  # the docs now say too little
    out = tmp_path / "variables.md"
    assert run_script("--roles-dir", str(roles), "--output", str(out)).returncode == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| `sglang_server_default_args` |"))
    assert '`{"log_level": "info", "host": "0.0.0.0", "port": 30000, ' in row, row
