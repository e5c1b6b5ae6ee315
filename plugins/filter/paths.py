"""owned_path_problems: the directories a role creates, chmods, chowns or removes must be its own.

A role that takes a directory from inventory sets its mode and owner and may remove it on teardown, so
it refuses one that is not a path of its own: relative, with a control character (it reaches units,
env files and argv), or a system directory."""
import json
import posixpath

# Directories whose children are the system's, not a role's: /usr/lib, /var/lib, a user's home.
SYSTEM_PARENTS = ("/usr", "/var", "/home", "/boot", "/run", "/proc", "/sys", "/dev")
# System directories under /etc that a role's configuration directory could be mistaken for.
SYSTEM_ETC = ("apt", "cdi", "default", "docker", "network", "nvidia-container-runtime", "pam.d", "security", "ssh",
              "ssl", "sudoers.d", "systemd")


def system_directory(path):
    """True for /, a top-level directory, one directly under SYSTEM_PARENTS, or a system one under /etc."""
    parent, name = posixpath.split(path)
    return parent == "/" or parent in SYSTEM_PARENTS or (parent == "/etc" and name in SYSTEM_ETC)


def owned_path_problems(paths):
    """{variable name: path} -> one message per path that cannot be a role's own directory."""
    problems = []
    for name, path in paths.items():
        path = str(path)
        if any(ord(c) < 32 or ord(c) == 127 for c in path):
            problems.append(f"{name} must not hold a control character ({json.dumps(path)})")
        elif not posixpath.isabs(path):
            problems.append(f"{name} must be an absolute path ({path})")
        elif system_directory("/" + posixpath.normpath(path).lstrip("/")):
            problems.append(f"{name}: {path} is a system directory; the role sets its owner and mode and may remove "
                            "it, so give it a directory of its own")
    return problems


class FilterModule:
    def filters(self):
        return {"owned_path_problems": owned_path_problems}
