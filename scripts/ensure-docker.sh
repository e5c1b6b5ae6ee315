#!/usr/bin/env bash
# Make sure a Docker daemon answers on this machine (the test runner, not a Spark).
# A bare CI machine has only the docker client: as root we install Debian's docker.io and
# start dockerd in the background; otherwise we say exactly what is missing.
set -euo pipefail

log() { echo "ensure-docker: $*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if ! command -v docker >/dev/null 2>&1; then
    log "no docker client found. Install Docker (e.g. 'sudo apt-get install docker.io') and start it."
  else
    log "no Docker daemon answers for user $(id -un). Start it ('sudo systemctl start docker')"
    log "and make sure this user can reach it (member of the 'docker' group), then re-run."
  fi
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Debian's docker.io (no dockerd on this machine)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

# Prefer the init system where there is one; fall back to a background dockerd
# (containers and CI machines often have no systemd as PID 1).
if [ -d /run/systemd/system ] && systemctl start docker >/dev/null 2>&1; then
  :
else
  mkdir -p /var/log
  log "starting dockerd in the background (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "Docker daemon is up: $(docker version --format '{{.Server.Version}}')"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; see /var/log/dockerd.log"
exit 1
