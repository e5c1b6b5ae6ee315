"""scripts/jinja_spans.py finds the Jinja expressions too long to read at a glance (issue: rules, not prose).

The project has none: a new one becomes a tested filter, a var of its own or one rule per task."""
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("jinja_spans", ROOT / "scripts" / "jinja_spans.py")
spans = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(spans)


def test_the_project_has_no_long_expression():
    found = spans.too_long()
    assert not found, "\n".join(f"{p}:{line}: {n} lines, {c} characters" for p, line, n, c in found)


def test_long_braces_and_long_bare_conditions_are_found_and_short_ones_are_not(tmp_path):
    # A bare condition in a block scalar is its three lines, not the `>-` line before them.
    tasks = tmp_path / "roles" / "demo" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(
        "- name: Short\n"
        "  ansible.builtin.debug:\n"
        "    msg: \"{{ a | b }}\"\n"
        "  when: >-\n"
        "    a is defined\n"
        "    and b is defined\n"
        "    and c is defined\n"
        "- name: Four lines\n"
        "  ansible.builtin.debug:\n"
        "    msg: >-\n"
        "      {{ a\n"
        "         | b\n"
        "         | c\n"
        "         | d }}\n"
        "- name: Long condition\n"
        "  ansible.builtin.assert:\n"
        "    that:\n"
        "      - " + " and ".join(["x%d is defined" % i for i in range(30)]) + "\n")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    found = spans.too_long(tmp_path)
    assert [(str(p), line, n) for p, line, n, _ in found] == [
        ("roles/demo/tasks/main.yml", 11, 4), ("roles/demo/tasks/main.yml", 18, 1)], found
    assert found[1][3] > spans.MAX_CHARS


def test_the_script_prints_the_count_and_fails_while_there_is_any():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "jinja_spans.py"), "--count"],
                         capture_output=True, text=True, check=False)
    count = len(spans.too_long())
    assert run.stdout.strip() == f"{count} Jinja expressions over 3 lines or 300 characters"
    assert run.returncode == (1 if count else 0)
