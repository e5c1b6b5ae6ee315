"""Small filters for the roles, where Jinja alone would get clever. Unit-tested in tests/."""
import posixpath


def mount_for_path(mounts, path):
    """The entry of ansible_facts['mounts'] whose mount point holds `path` (longest prefix).

    The path need not exist yet: a model cache that will be created lands on the mount of
    its nearest parent."""
    if not posixpath.isabs(path):
        raise ValueError(f"mount_for_path needs an absolute path, got {path!r}")
    path = posixpath.normpath(path)
    best = None
    for mount in mounts or []:
        point = posixpath.normpath(mount.get("mount", ""))
        inside = path == point or point == "/" or path.startswith(point + "/")
        if inside and (best is None or len(point) > len(posixpath.normpath(best["mount"]))):
            best = mount
    if best is None:
        raise ValueError(f"no mount holds {path!r}")
    return best


class FilterModule:
    def filters(self):
        return {"mount_for_path": mount_for_path}
