"""SIMULATED `python -m sglang.benchmark.serving` (0.5.23's bench): the sim's bench_serving."""
import sys

from sglang.bench_serving import main

if __name__ == "__main__":
    sys.exit(main())
