#!/usr/bin/env python3
"""Generate docs/variables.md from every role's meta/argument_specs.yml and defaults/main.yml.

argument_specs.yml is what Ansible validates the inputs against, so documenting from it keeps
the reference and the checks in one place; a default comes from defaults/main.yml, the value Ansible
applies (the spec may repeat it: tests/test_variables_doc.py holds the two equal). `--check` makes a
stale document fail the tests.

    python3 scripts/role_variables_doc.py            # write docs/variables.md
    python3 scripts/role_variables_doc.py --check    # exit 1 when docs/variables.md is out of date
"""
import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "python3 scripts/role_variables_doc.py"
# A long list or dict default would stretch the table; the full value is in the role's
# argument_specs.yml, so the table shows its first items. Scalars (paths, URLs) stay whole.
MAX_DEFAULT = 72

HEADER = f"""# Role variables

Generated file, do not edit: it is written from each role's `meta/argument_specs.yml` and
`defaults/main.yml` by `{COMMAND}`, and `{COMMAND} --check` fails when it is out of date.
Defaults are the roles' `defaults/main.yml` values, as JSON; `—` means none, or one computed at run
time from other variables, as the description says.
"""


def one_line(text, code=False):
    """A table cell: one line, `|` escaped; outside code spans `<` too (Markdown would take it for HTML)."""
    if isinstance(text, list):  # argument_specs allows a description as a list of paragraphs
        text = " ".join(map(str, text))
    text = " ".join(str(text).split())
    if not code:  # odd chunks between backticks are code spans, where a backslash would show
        text = "`".join(p if i % 2 else p.replace("<", "\\<") for i, p in enumerate(text.split("`")))
    return text.replace("|", "\\|")


def default_of(name, spec, defaults):
    """(True, value) of an option's default: defaults/main.yml's literal value, else the spec's; (False, None) when
    there is none, or it is computed at run time (a template)."""
    if name in defaults and "{{" not in json.dumps(defaults[name], default=str):
        return True, defaults[name]
    return ("default" in spec and name not in defaults), spec.get("default")


def render_default(found, value):
    if not found:
        return "—"
    text = json.dumps(value, ensure_ascii=False, default=str)  # YAML dates etc. as text
    if isinstance(value, (list, dict)) and len(text) > MAX_DEFAULT:
        cut = text[:MAX_DEFAULT]
        comma = cut.rfind(", ")  # end on a whole item when there is one, then close the bracket
        text = (cut[: comma + 1] if comma > 0 else cut) + " …" + text[-1]
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{one_line(text, code=True)}{pad}{fence}"


def render_type(spec):
    kind = spec.get("type", "str")  # Ansible's default type
    return f"{kind} of {spec['elements']}" if kind == "list" and "elements" in spec else kind


def rows(options, defaults, prefix=""):
    """Table rows, sorted by name; nested options of dicts and list items as `parent[].key` rows."""
    for name in sorted(options):
        spec = options[name] or {}
        full = prefix + name
        desc = one_line(spec.get("description", ""))
        if "choices" in spec:
            desc += " Choices: " + ", ".join(f"`{one_line(c, code=True)}`" for c in spec["choices"]) + "."
        if spec.get("no_log"):
            desc += " *(no_log)*"
        required = "yes" if spec.get("required") else "no"
        found, value = default_of(name, spec, defaults if not prefix else {})
        yield f"| `{full}` | {render_type(spec)} | {required} | {render_default(found, value)} | {desc.strip()} |"
        if spec.get("options"):
            yield from rows(spec["options"], {}, full + ("[]." if spec.get("type") == "list" else "."))


def table(options, defaults):
    head = ["| Variable | Type | Required | Default | Description |", "| --- | --- | --- | --- | --- |"]
    return "\n".join(head + list(rows(options, defaults))) + "\n"


def role_section(role, specs, defaults):
    main = specs.get("main") or {}
    main_options = main.get("options") or {}
    out = [f"## {role}\n"]
    for key in ("short_description", "description"):
        if main.get(key):
            out.append(one_line(main[key]) + "\n")
    out.append(table(main_options, defaults) if main_options else "No variables.\n")
    same = []
    for entry in sorted(e for e in specs if e != "main"):
        options = specs[entry].get("options") or {}
        extra = {k: v for k, v in options.items() if k not in main_options}
        if extra:  # an entry point with inputs of its own gets a table of just those
            out.append(f"Entry point `{entry}` also takes:\n\n" + table(extra, defaults))
        else:
            same.append(f"`{entry}`")
    if same:
        out.append(f"Other entry points: {', '.join(same)} (options from `main`).\n")
    return "\n".join(out)


def generate(roles_dir):
    sections = []
    for spec_file in sorted(Path(roles_dir).glob("*/meta/argument_specs.yml")):
        specs = yaml.safe_load(spec_file.read_text())["argument_specs"]
        defaults_file = spec_file.parent.parent / "defaults" / "main.yml"
        defaults = (yaml.safe_load(defaults_file.read_text()) if defaults_file.is_file() else None) or {}
        sections.append(role_section(spec_file.parent.parent.name, specs, defaults))
    return "\n".join([HEADER] + sections)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the output file is not current")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "variables.md")
    parser.add_argument("--roles-dir", type=Path, default=ROOT / "roles")
    args = parser.parse_args(argv)
    text = generate(args.roles_dir)
    if args.check:
        current = args.output.read_text() if args.output.exists() else None
        if current != text:
            shown = args.output.resolve()
            shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
            print(f"{shown} is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
