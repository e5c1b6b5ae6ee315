#!/usr/bin/env python3
"""Fetch the pinned upstream packages the contract tests read (tests/test_upstream_contract.py).

`pip download --no-deps` each pin into .cache/upstream/wheels/ and unpack the wheel (a zip) into
.cache/upstream/<name>-<version>/. Only what is missing is fetched: a re-run is instant. Nothing of
them is imported or copied into the repository; the tests parse the files with `ast`.

Usage: scripts/fetch_upstream.py [--dest DIR]   (make upstream)
"""
import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def required(name):
    """The version requirements.txt pins for name: the contracts check what the project installs."""
    for line in (REPO / "requirements.txt").read_text().splitlines():
        req, _, version = line.split("#", 1)[0].strip().partition("==")
        if req.replace("-", "_") == name:
            return version
    sys.exit(f"requirements.txt pins no {name}")


# name: versions (wheel names use "_"). Why each one: docs/upstream.md.
PINS = {
    "sglang": ["0.5.3.post3", "0.5.23"],  # what lmsysorg/sglang:spark ships; the newest
    "sglang_router": [required("sglang_router")],
    "huggingface_hub": [required("huggingface_hub")],
}


def unpacked_dirs():
    return {f"{name}-{version}": (name, version) for name, versions in PINS.items() for version in versions}


def fetch(dest):
    wheels = dest / "wheels"
    for dirname, (name, version) in unpacked_dirs().items():
        target = dest / dirname
        if (target / ".complete").exists():
            continue
        found = sorted(wheels.glob(f"{name}-{version}-*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            "--only-binary=:all:", "--dest", str(wheels), f"{name}=={version}"], check=True)
            found = sorted(wheels.glob(f"{name}-{version}-*.whl"))
        if not found:
            sys.exit(f"pip downloaded no wheel {name}-{version}-*.whl into {wheels}")
        partial = dest / (dirname + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(found[0]) as whl:
            whl.extractall(partial)
        (partial / ".complete").write_text(found[0].name + "\n")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        print(f"upstream: {target.relative_to(REPO) if target.is_relative_to(REPO) else target} from {found[0].name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--dest", type=Path, default=REPO / ".cache" / "upstream")
    fetch(parser.parse_args().dest.resolve())


if __name__ == "__main__":
    main()
