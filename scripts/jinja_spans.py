#!/usr/bin/env python3
"""List the Jinja expressions in roles/ and playbooks/ that are too long to read at a glance.

An expression is a `{{ ... }}` or `{% ... %}` in a YAML or template file, or the bare condition of a
`when`, `that`, `until`, `changed_when` or `failed_when`. It is too long when it spans more than
MAX_LINES source lines or has more than MAX_CHARS characters (runs of whitespace count as one).

    python3 scripts/jinja_spans.py            # the list and the count; exit 1 if there is any
    python3 scripts/jinja_spans.py --count    # the count only
"""
import re
import sys
from pathlib import Path

import yaml

MAX_LINES = 3
MAX_CHARS = 300
ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = {"when", "that", "until", "changed_when", "failed_when"}
BRACES = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


def _measure(text):
    return text.count("\n") + 1, len(" ".join(text.split()))


def _condition(node, source):
    """(line, text) of a bare condition as written; a block scalar's indicator line (`>-`, `|`) is not part of it."""
    text, line = source[node.start_mark.index:node.end_mark.index], node.start_mark.line + 1
    if node.style in (">", "|"):
        text, line = text.split("\n", 1)[1] if "\n" in text else "", line + 1
    return line, text.rstrip()


def _conditions(node, source, found):
    """The bare conditions under node: (line, text) of each scalar under a condition key."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in CONDITIONS:
                items = value.value if isinstance(value, yaml.SequenceNode) else [value]
                found += [_condition(item, source) for item in items
                          if isinstance(item, yaml.ScalarNode) and "{{" not in item.value]
            else:
                _conditions(value, source, found)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _conditions(item, source, found)
    return found


def expressions(path):
    """(line, text) of every expression in a file."""
    source = path.read_text()
    found = [(source.count("\n", 0, m.start()) + 1, m.group()) for m in BRACES.finditer(source)]
    if path.suffix in (".yml", ".yaml"):
        for document in yaml.compose_all(source, Loader=yaml.SafeLoader):
            found += _conditions(document, source, [])
    return sorted(found)


def too_long(root=ROOT):
    """[(path, line, lines, chars)] of the expressions over either limit."""
    files = sorted(p for d in ("roles", "playbooks") for p in (root / d).rglob("*")
                   if p.is_file() and p.suffix in (".yml", ".yaml", ".j2"))
    measured = [(path.relative_to(root), line, *_measure(text)) for path in files for line, text in expressions(path)]
    return [found for found in measured if found[2] > MAX_LINES or found[3] > MAX_CHARS]


def main(argv):
    found = too_long()
    if "--count" not in argv:
        for path, line, lines, chars in found:
            print(f"{path}:{line}: {lines} lines, {chars} characters")
    print(f"{len(found)} Jinja expressions over {MAX_LINES} lines or {MAX_CHARS} characters")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
