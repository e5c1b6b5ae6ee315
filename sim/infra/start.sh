#!/bin/sh
# Runs inside the sim-infra container: the simulated fleet's stand-in for the internet.
#   :8080  the stub NVIDIA Container Toolkit apt repository (.sim/apt, signed)
#   :8081  the test Hugging Face hub (sim/hub/testhub.py)
set -eu
python3 -m http.server --bind 0.0.0.0 --directory /srv/apt 8080 &
exec python3 /srv/sim/hub/testhub.py --host 0.0.0.0 --port 8081
