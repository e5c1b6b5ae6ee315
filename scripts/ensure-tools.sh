#!/usr/bin/env bash
# Make sure this machine (the test runner, not a Spark) has the Debian tools that the sim build and
# the tests run: as root the missing packages are installed, otherwise they are named.
#   systemd-analyze  the ExecStart= quoting tests check against systemd itself
#   apt-ftparchive   sim/toolkit/build-repo.sh (the stub toolkit's signed apt repository)
#   debootstrap, skopeo, docker-registry   sim/images/build.sh
set -euo pipefail

log() { echo "ensure-tools: $*" >&2; }

missing=()
for pair in systemd-analyze:systemd apt-ftparchive:apt-utils gpgv:gpgv gpg:gnupg \
            debootstrap:debootstrap skopeo:skopeo docker-registry:docker-registry; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  log "missing: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) and re-run"
  exit 1
fi
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
