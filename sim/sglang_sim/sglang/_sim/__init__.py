"""The parts of the SIMULATED SGLang server (sglang-sim), one concern each; sglang/_sim_server.py runs them."""
