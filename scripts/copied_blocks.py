#!/usr/bin/env python3
"""List the blocks of six or more identical lines that appear twice in the project's product code (Python in
library/, module_utils/, plugins/, scripts/ and the roles' files/): one copy of each rule.

Lines are compared with their indentation and surrounding blanks removed; blank lines, comments and imports are
skipped, and so is the DOCUMENTATION/EXAMPLES/RETURN text of a module (Ansible's format, not logic).

    python3 scripts/copied_blocks.py    # the list; exit 1 if there is any
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_LINES = 6
PLACES = ("library", "module_utils", "plugins", "scripts", "roles/*/files")
DOC_STRING = re.compile(r'^(DOCUMENTATION|EXAMPLES|RETURN) = r?"""')


def product_files(root=ROOT):
    for place in PLACES:
        for folder in sorted(root.glob(place)):
            yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def code_lines(path):
    """(line number, stripped text) of the lines that count."""
    lines, in_doc = [], False
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.strip()
        if in_doc:
            in_doc = not text.endswith('"""')
            continue
        if DOC_STRING.match(text):
            in_doc = not text.endswith('"""', 20)
            continue
        if text and not text.startswith(("#", "import ", "from ")):
            lines.append((number, text))
    return lines


def copied_blocks(root=ROOT):
    """[(path, line, other path, other line)]: the first line of each window of MIN_LINES lines seen before."""
    seen, found = {}, []
    for path in product_files(root):
        lines = code_lines(path)
        reported_until = -1
        for i in range(len(lines) - MIN_LINES + 1):
            window = tuple(text for _, text in lines[i:i + MIN_LINES])
            where = (path.relative_to(root), lines[i][0])
            first = seen.setdefault(window, where)
            if first != where and i > reported_until:
                found.append((*where, *first))
                reported_until = i + MIN_LINES - 1
    return found


def main():
    found = copied_blocks()
    for path, line, other, other_line in found:
        print(f"{path}:{line}: {MIN_LINES}+ lines as in {other}:{other_line}")
    print(f"{len(found)} copied blocks of {MIN_LINES} or more lines in product code")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
