"""lesson_path: the lesson's layout under a user's home, the one place the roles' home-dir defaults come from."""
from ansible.errors import AnsibleFilterError

# The lesson's directories: the Hugging Face cache, the models kept by name, the operator venv.
LAYOUT = {"hf_home": ".cache/huggingface", "models": "gb10/models", "venv": "venv/gb10-training"}


def lesson_path(home, what):
    """<home>/<the lesson's directory for what>."""
    if what not in LAYOUT:
        raise AnsibleFilterError(f"lesson_path: {what!r} is not one of {', '.join(LAYOUT)}")
    return f"{str(home).rstrip('/')}/{LAYOUT[what]}"


class FilterModule:
    def filters(self):
        return {"lesson_path": lesson_path}
