"""SIMULATED SGLang server (sglang-sim) - no GPU.

`python3 -m sglang.launch_server --model-path M [...]` starts a simulated SGLang
HTTP server. The flags, endpoints and simulation knobs (SGLANG_SIM_* environment
variables) are documented in sglang/_sim_server.py.
"""

import sys

from sglang._sim_server import main

if __name__ == "__main__":
    sys.exit(main())
