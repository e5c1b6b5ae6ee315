"""sglang-sim: a SIMULATED stand-in for the SGLang package.

This is NOT SGLang. It loads no weights and needs no GPU. It exists so the
project can test its Ansible roles against something that behaves like an
SGLang server on the wire (flags, endpoints, readiness, metrics, timing).

Entry points (same module paths as the real package):
    python3 -m sglang.launch_server ...   simulated server   (sglang/_sim_server.py)
    python3 -m sglang.bench_serving ...   simulated bench client, real HTTP load

Python standard library only: it runs in a minimal Debian bookworm image.
"""

# The SGLang release this simulation follows, marked as simulated.
__version__ = "0.5.3.post3-sim"
SIMULATED = True
