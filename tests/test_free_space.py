"""library/free_space.py: the disk probe that spark_host's and model_cache's preflights share."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sglang_sim_helpers import REPO, run_ansible_module  # noqa: E402

MODULE = REPO / "library" / "free_space.py"


def test_a_path_not_there_yet_is_measured_on_its_nearest_parent_and_its_mount(tmp_path):
    wanted = tmp_path / "not" / "there" / "yet"
    result, _ = run_ansible_module(MODULE, {"paths": [str(wanted), "/"]}, tmp_path, check_mode=True)
    here, root = result["free"]
    stat = os.statvfs(tmp_path)
    assert here["path"] == str(wanted) and here["measured"] == str(tmp_path)
    assert os.path.ismount(here["mount"]) and str(tmp_path.resolve()).startswith(here["mount"])
    # The bytes free change as the machine writes: the same file system within a few MB of statvfs.
    assert abs(here["bytes_free"] - stat.f_bavail * stat.f_frsize) < 64 * 2**20
    assert root["measured"] == root["mount"] == "/"
    assert result["min_bytes_free"] == min(here["bytes_free"], root["bytes_free"]) and result["changed"] is False


def test_a_relative_path_is_refused_naming_it(tmp_path):
    result, _ = run_ansible_module(MODULE, {"paths": ["/var/lib", "var/lib"]}, tmp_path)
    assert result["failed"] and result["msg"] == "paths must be absolute, got var/lib"
