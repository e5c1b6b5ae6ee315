"""SIMULATED sglang.benchmark: 0.5.23 has it (benchmark/serving.py); 0.5.3.post3 has not, so as that
release the sim has no such package either."""
from sglang import NEW

if not NEW:
    raise ModuleNotFoundError("No module named 'sglang.benchmark'", name="sglang.benchmark")
