"""Unit tests of the lesson_path filter (plugins/filter/lesson.py): the roles' home-dir defaults."""
import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

SPEC = importlib.util.spec_from_file_location(
    "lesson_filter", Path(__file__).resolve().parents[1] / "plugins" / "filter" / "lesson.py")
plugin = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(plugin)


@pytest.mark.parametrize("what, path", [("hf_home", "/home/spark/.cache/huggingface"),
                                        ("models", "/home/spark/gb10/models"),
                                        ("venv", "/home/spark/venv/gb10-training")])
def test_each_directory_is_the_lessons_under_the_home(what, path):
    assert plugin.lesson_path("/home/spark", what) == path
    assert plugin.lesson_path("/home/spark/", what) == path


def test_root_s_home_and_an_unknown_name():
    assert plugin.lesson_path("/", "models") == "/gb10/models"
    with pytest.raises(AnsibleFilterError, match="'cache' is not one of hf_home, models, venv"):
        plugin.lesson_path("/root", "cache")


def test_the_filter_is_registered():
    assert plugin.FilterModule().filters() == {"lesson_path": plugin.lesson_path}
