"""scripts/test_suite.py runs every stage with the venv's tools, whatever PATH it was started with."""
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
