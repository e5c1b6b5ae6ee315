"""scripts/copied_blocks.py: no block of six or more identical lines twice in product code (issue: rules, not prose)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("copied_blocks", ROOT / "scripts" / "copied_blocks.py")
blocks = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(blocks)

RULE = "".join(f"    total += step_{i}(value)\n" for i in range(6))


def test_the_project_has_no_copied_block():
    found = blocks.copied_blocks()
    assert not found, "\n".join(f"{p}:{line} as in {o}:{o_line}" for p, line, o, o_line in found)


def test_a_rule_written_twice_is_found_and_comments_imports_and_module_docs_are_not(tmp_path):
    (tmp_path / "library").mkdir()
    (tmp_path / "plugins" / "filter").mkdir(parents=True)
    (tmp_path / "roles" / "r" / "files").mkdir(parents=True)
    (tmp_path / "library" / "a.py").write_text("import os\n\ndef a(value):\n    total = 0\n" + RULE)
    # The same lines, indented otherwise and with a comment and a blank line among them.
    (tmp_path / "roles" / "r" / "files" / "b.py").write_text(
        "def b(value):\n" + RULE.replace("    total += step_2", "\n# why\n        total += step_2"))
    docs = 'DOCUMENTATION = r"""\n' + "".join(f"  line {i}\n" for i in range(8)) + '"""\n'
    imports = "".join(f"import m{i}\n" for i in range(8))
    (tmp_path / "plugins" / "filter" / "c.py").write_text(docs + imports)
    (tmp_path / "plugins" / "filter" / "d.py").write_text(docs + imports)
    assert blocks.copied_blocks(tmp_path) == [(Path("roles/r/files/b.py"), 2, Path("library/a.py"), 5)]
