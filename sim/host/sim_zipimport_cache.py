"""Bytecode cache for modules imported from zip files, on SIMULATED hosts only (test-bed speed-up).

Ansible runs every module from a zip payload (AnsiballZ) through zipimport, which cannot use or write
.pyc files: each task compiles ansible's module_utils again. Measured in a sim host, a module run
took 0.19-0.24 s of CPU without this and 0.15 s with it (docs/simulated-fleet.md); on a 2-core machine
that runs a whole fleet of sim hosts, every task pays it. This keeps the compiled code of each source text under
/var/cache/sim-zipimport, keyed by the hash of the source, so the next task loads it instead.

Nothing else changes: the source is the one in the zip, the code objects get the zip's path as their
file name, and any error falls back to zipimport's own compile. A real host runs without it.
Loaded by sim-zipimport-cache.pth in the interpreter's dist-packages (sim/images/build.sh).
"""
import os
import sys
import zipimport

CACHE = "/var/cache/sim-zipimport"
_MAGIC = sys.implementation.cache_tag.encode()
_compile_source = zipimport._compile_source


def _renamed(code, filename):
    consts = tuple(_renamed(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _cached_compile_source(pathname, source):
    import hashlib  # here, not at start-up: every python3 on the host loads this file
    import marshal

    key = hashlib.sha256(_MAGIC + b"\0" + source).hexdigest()
    path = os.path.join(CACHE, key)
    try:
        with open(path, "rb") as f:
            return _renamed(marshal.load(f), pathname)
    except Exception:  # not cached yet, or unreadable: compile as zipimport does
        pass
    code = _compile_source(pathname, source)
    try:
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as f:
            marshal.dump(code, f)
        os.replace(tmp, path)  # whole files only: tasks run side by side
    except OSError:  # a task that runs as an unprivileged user cannot write the cache
        pass
    return code


if os.path.isdir(CACHE):
    zipimport._compile_source = _cached_compile_source
