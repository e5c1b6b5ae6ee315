"""scripts/test_suite.py runs every stage with the venv's tools, whatever PATH it was started with, and starts
lint and pytest after the image build."""
import importlib.util
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("test_suite", REPO / "scripts" / "test_suite.py")
test_suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(test_suite)


def test_a_stage_finds_the_venvs_pytest_when_another_comes_first(tmp_path):
    # As on a fresh clone: make's python3 is a pyenv shim, which puts its interpreter's bin (with a
    # pytest that lacks testinfra) before the venv's.
    other = tmp_path / "pyenv-bin"
    other.mkdir()
    (other / "pytest").write_text("#!/bin/sh\nexit 4\n")
    (other / "pytest").chmod(0o755)
    env = test_suite.stage_env({"PATH": f"{other}:/usr/bin:/bin", "HOME": "/root"})
    assert shutil.which("pytest", path=env["PATH"]) == str(REPO / ".venv" / "bin" / "pytest")
    assert env["HOME"] == "/root"


def test_lint_and_pytest_wait_for_the_image_build_to_end_but_not_to_pass():
    chosen = ["venv", "images", "lint", "pytest"]
    needs = {"venv": [], "images": ["venv"], "lint": ["venv"], "pytest": ["venv"]}
    venv_done = {"venv": ("PASS",)}
    assert test_suite.can_start("images", needs, venv_done, chosen)
    assert not test_suite.can_start("lint", needs, venv_done, chosen)
    assert test_suite.can_start("lint", needs, {**venv_done, "images": ("FAIL (exit 2)",)}, chosen)
    # Chosen alone (scripts/test_suite.py lint pytest), they wait for nothing more than the venv.
    assert test_suite.can_start("pytest", {"pytest": []}, {}, ["pytest"])


def test_the_end_of_the_output_shows_why_each_failed_stage_failed(tmp_path):
    (tmp_path / "pytest.log").write_text("".join(f"line {i}\n" for i in range(100)) + "FAILED tests/x.py::y\n")
    (tmp_path / "lint.log").write_text("all good\n")
    tails = test_suite.failure_tails({"pytest": "FAIL (exit 2)", "lint": "PASS"}, logs=tmp_path, lines=3)
    assert "FAILED tests/x.py::y" in tails and "line 98" in tails
    assert "line 96" not in tails and "all good" not in tails
    assert test_suite.failure_tails({"lint": "PASS", "demo": "SKIPPED"}, logs=tmp_path) == ""


def test_the_image_build_starts_beside_the_venv_and_the_scenarios_wait_for_both():
    stages = test_suite.STAGES
    assert stages["images"][1] == [] and "venv" not in stages["images"][0]
    assert test_suite.can_start("images", {n: d for n, (_, d) in stages.items()}, {}, list(stages))
    for name in [n for n in stages if n.startswith("molecule-")] + ["demo"]:
        assert sorted(stages[name][1]) == ["images", "venv"], name
