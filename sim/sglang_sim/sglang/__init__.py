"""sglang-sim: a SIMULATED stand-in for the SGLang package.

This is NOT SGLang. It loads no weights and needs no GPU. It exists so the
project can test its Ansible roles against something that behaves like an
SGLang server on the wire (flags, endpoints, readiness, metrics, timing).

Entry points (same module paths as the real package):
    python3 -m sglang.launch_server ...   simulated server   (sglang/_sim_server.py)
    python3 -m sglang.bench_serving ...   simulated bench client, real HTTP load
    python3 -m sglang.benchmark.serving   the same, 0.5.23 only (there sglang.bench_serving is its shim)

Python standard library only: it runs in a minimal Debian bookworm image.
"""

import os

# The SGLang release this simulation follows, chosen per image (SGLANG_SIM_UPSTREAM in its
# environment, sim/images/build.sh): 0.5.3.post3 (lmsysorg/sglang:spark) or 0.5.23. docs/upstream.md
# lists what differs between them and which the sim speaks.
UPSTREAMS = ("0.5.3.post3", "0.5.23")
UPSTREAM = os.environ.get("SGLANG_SIM_UPSTREAM") or UPSTREAMS[0]
if UPSTREAM not in UPSTREAMS:
    raise SystemExit(f"sglang-sim: SGLANG_SIM_UPSTREAM={UPSTREAM!r} is none of {', '.join(UPSTREAMS)}")
NEW = UPSTREAM == "0.5.23"
__version__ = UPSTREAM + "-sim"
SIMULATED = True
