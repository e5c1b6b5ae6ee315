#!/bin/sh
# Runs inside the sim-infra container: the simulated fleet's stand-in for the internet.
#   :5000  the upstream container registry (stands in for Docker Hub; .sim/registry, filled by
#          sim/images/build.sh with lmsysorg/sglang = the sglang-sim image)
#   :8080  the stub NVIDIA Container Toolkit apt repository (.sim/apt, signed)
#   :8081  the test Hugging Face hub (sim/hub/testhub.py)
# Every request is logged on stdout (docker logs), which is how tests count what was fetched.
set -eu
cat >/tmp/registry.yml <<'CONF'
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: /srv/registry
  delete:
    enabled: false
http:
  addr: 0.0.0.0:5000
CONF
docker-registry serve /tmp/registry.yml &
python3 -m http.server --bind 0.0.0.0 --directory /srv/apt 8080 &
# One gated repo (sim-org/Gated-sim) with a test-only token: sim/infra/hub.args.
# shellcheck disable=SC2046
exec python3 /srv/sim/hub/testhub.py --host 0.0.0.0 --port 8081 $(cat /srv/sim/infra/hub.args)
