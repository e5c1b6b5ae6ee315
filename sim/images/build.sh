#!/usr/bin/env bash
# Build the SIMULATED fleet's images locally (no registry is reachable):
#   spark-sim/host:bookworm   a sim Spark: Debian 12, systemd as PID 1, Docker engine, sshd,
#                             a sudo user 'spark' NOT in the docker group, fake nvidia-smi
#   spark-sim/sglang:sim      stands in for lmsysorg/sglang: python3 + sglang-sim
# Each image carries a label with a hash of its inputs and is rebuilt only when they change.
# Root file systems come from debootstrap and are cached as tarballs under .sim/cache/.
# Usage: sim/images/build.sh [--force]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="$repo/.sim/cache"
out="$repo/.sim/images"
mirror=${SIM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
force=${1:-}
mkdir -p "$cache" "$out"

log() { echo "sim-images: $*" >&2; }

"$repo/scripts/ensure-tools.sh"   # debootstrap, skopeo, docker-registry, apt-ftparchive

hash_of() {  # hash of the listed files and directories (content and names)
  (cd "$repo" && find "$@" -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

current_hash() {
  docker image inspect -f '{{ index .Config.Labels "org.spark-sim.inputs" }}' "$1" 2>/dev/null || true
}

# rootfs NAME PACKAGES: a debootstrap'ed tarball, cached by the package list.
rootfs() {
  local name=$1 pkgs=$2 key tarball dir
  key=$(echo "$suite $pkgs" | sha256sum | cut -c1-12)
  tarball="$cache/$name-$key.tar"
  if [ ! -s "$tarball" ]; then
    dir=$(mktemp -d "$cache/$name.XXXX")
    log "debootstrap $name ($suite, minbase) — about a minute"
    debootstrap --variant=minbase --include="$pkgs" "$suite" "$dir" "$mirror" >"$cache/$name.debootstrap.log" 2>&1 \
      || { log "debootstrap failed, see $cache/$name.debootstrap.log"; exit 1; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb
    tar -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  echo "$tarball"
}

sglang_tag=spark-sim/sglang:sim
sglang_hash=$(hash_of sim/sglang_sim sim/images/build.sh)
sglang_pkgs="python3,curl,ca-certificates"
variants="sim sim-never-healthy sim-0.5.23"
infra_tag=spark-sim/infra:bookworm
infra_hash=$(hash_of sim/images/build.sh)
infra_pkgs="python3,docker-registry,ca-certificates,curl"
host_tag=spark-sim/host:bookworm
host_hash=$(hash_of sim/host sim/images/build.sh)
host_pkgs="systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,curl,iproute2,iputils-ping,docker.io,gnupg,openssh-server,rsync,procps,less,acl"
stale() { [ "$force" = --force ] || [ "$(current_hash "$1")" != "$2" ]; }

# The root file systems of the images to build, all at once: each debootstrap mostly waits on the
# mirror, and one after another they took three of the build's four minutes.
pids=()
stale $sglang_tag "$sglang_hash" && { rootfs sglang-base "$sglang_pkgs" >/dev/null & pids+=($!); }
stale $infra_tag "$infra_hash" && { rootfs infra-base "$infra_pkgs" >/dev/null & pids+=($!); }
stale $host_tag "$host_hash" && { rootfs spark-host "$host_pkgs" >/dev/null & pids+=($!); }
for pid in "${pids[@]}"; do wait "$pid"; done

# --- sglang-sim image --------------------------------------------------------------
if stale $sglang_tag "$sglang_hash"; then
  base=$(rootfs sglang-base "$sglang_pkgs")
  work=$(mktemp -d)
  tar -C "$work" -xf "$base"
  mkdir -p "$work/opt/sglang-sim"
  cp -r "$repo/sim/sglang_sim/sglang" "$work/opt/sglang-sim/"
  find "$work/opt/sglang-sim" -name __pycache__ -prune -exec rm -rf {} +
  echo "sglang-sim: SIMULATED SGLang server image (no GPU); inputs $sglang_hash" >"$work/etc/sglang-sim-release"
  tar -C "$work" -cf "$cache/sglang-rootfs.tar" .
  for variant in $variants; do
    # The same files as three images: SGLang 0.5.3.post3 as lmsysorg/sglang:spark ships it; a "bad
    # release" of it whose server never gets healthy; and 0.5.23, the current line's (docs/upstream.md).
    case $variant in
      sim) variant_env=(-c 'ENV SGLANG_SIM_UPSTREAM=0.5.3.post3') ;;
      sim-never-healthy) variant_env=(-c 'ENV SGLANG_SIM_UPSTREAM=0.5.3.post3' -c 'ENV SGLANG_SIM_FAIL=never_healthy') ;;
      sim-0.5.23) variant_env=(-c 'ENV SGLANG_SIM_UPSTREAM=0.5.23') ;;
    esac
    log "importing spark-sim/sglang:$variant"
    docker import \
      -c 'ENV PYTHONPATH=/opt/sglang-sim' \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      "${variant_env[@]}" \
      -c 'WORKDIR /' \
      -c 'CMD ["python3", "-m", "sglang.launch_server", "--help"]' \
      -c "LABEL org.spark-sim.inputs=$sglang_hash org.spark-sim.simulated=true" \
      "$cache/sglang-rootfs.tar" "spark-sim/sglang:$variant" >/dev/null
  done
  rm -f "$cache/sglang-rootfs.tar"
  rm -rf "$work"
  for variant in $variants; do rm -f "$out/sglang-$variant.tar"; done
fi
# The archives that sim hosts 'docker load' (stands in for a registry pull) and that fill the
# upstream registry.
for variant in $variants; do
  archive="$out/sglang-$variant.tar"
  if [ ! -s "$archive" ]; then
    docker save -o "$archive.tmp" "spark-sim/sglang:$variant" && mv "$archive.tmp" "$archive"
  fi
done

# --- the upstream registry's content ---------------------------------------------
# sim-infra serves .sim/registry as the fleet's upstream registry (it stands in for Docker Hub).
# It is filled here, once per image build, so the image's digest is known before any test:
# .sim/images/sglang-sim.digest.
if [ ! -s "$out/sglang-sim.digest" ] || [ ! -s "$out/sglang-sim-0.5.23.digest" ] || [ "$out/sglang-sim.digest" -ot "$out/sglang-sim.tar" ]; then
  rm -rf "$repo/.sim/registry"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$repo/.sim/registry" "$port" >"$cache/registry-fill.yml"
  docker-registry serve "$cache/registry-fill.yml" >"$cache/registry-fill.log" 2>&1 &
  reg_pid=$!
  for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
  push() {  # archive tag digest-file
    skopeo copy -q --dest-tls-verify=false "docker-archive:$1" "docker://127.0.0.1:$port/lmsysorg/sglang:$2"
    curl -fsI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "http://127.0.0.1:$port/v2/lmsysorg/sglang/manifests/$2" \
      | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest" {print $2}' >"$3.tmp"
    grep -q '^sha256:' "$3.tmp" || { log "could not read the digest of lmsysorg/sglang:$2"; kill "$reg_pid"; exit 1; }
    mv "$3.tmp" "$3"
  }
  push "$out/sglang-sim-never-healthy.tar" spark-sim-never-healthy "$out/sglang-sim-never-healthy.digest"
  push "$out/sglang-sim-0.5.23.tar" spark-sim-0.5.23 "$out/sglang-sim-0.5.23.digest"
  push "$out/sglang-sim.tar" spark-sim "$out/sglang-sim.digest"
  kill "$reg_pid"; wait "$reg_pid" 2>/dev/null || true
  log "upstream registry holds lmsysorg/sglang@$(cat "$out/sglang-sim.digest")"
fi

# --- sim-infra image: the simulated internet (upstream registry, apt repo, hub) -------
if stale $infra_tag "$infra_hash"; then
  base=$(rootfs infra-base "$infra_pkgs")
  log "importing $infra_tag"
  docker import \
    -c 'CMD ["/srv/sim/infra/start.sh"]' \
    -c "LABEL org.spark-sim.inputs=$infra_hash org.spark-sim.simulated=true" \
    "$base" "$infra_tag" >/dev/null
fi

# --- sim Spark host image ----------------------------------------------------------
if stale $host_tag "$host_hash"; then
  base=$(rootfs spark-host "$host_pkgs")
  work=$(mktemp -d)
  tar -C "$work" -xf "$base"
  # The fake GPU driver userland (simulated; see sim/host/nvidia-smi).
  install -m 0755 "$repo/sim/host/nvidia-smi" "$work/usr/bin/nvidia-smi"
  # A bytecode cache for Ansible's zipped modules: a test-bed speed-up, not a double (the file says why).
  install -m 0644 "$repo/sim/host/sim_zipimport_cache.py" "$work/usr/lib/python3/dist-packages/"
  echo 'import sim_zipimport_cache' >"$work/usr/lib/python3/dist-packages/sim-zipimport-cache.pth"
  install -d -m 0755 "$work/var/cache/sim-zipimport"
  # Like a DGX OS box: a sudo-capable login user who is NOT in the docker group.
  # (NOPASSWD so that Ansible's become needs no password on the simulated fleet.)
  chroot "$work" useradd --create-home --shell /bin/bash --groups sudo spark
  echo 'spark ALL=(ALL) NOPASSWD:ALL' >"$work/etc/sudoers.d/spark"
  chmod 0440 "$work/etc/sudoers.d/spark"
  # Per-container SSH host keys, made on first boot rather than baked into the image.
  rm -f "$work"/etc/ssh/ssh_host_*
  cat >"$work/etc/systemd/system/sim-ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys for this simulated Spark
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service multi-user.target
UNIT
  mkdir -p "$work/etc/systemd/system/ssh.service.wants" "$work/etc/systemd/system/multi-user.target.wants"
  ln -sf /etc/systemd/system/sim-ssh-hostkeys.service "$work/etc/systemd/system/ssh.service.wants/"
  ln -sf /etc/systemd/system/sim-ssh-hostkeys.service "$work/etc/systemd/system/multi-user.target.wants/"
  # Units that make no sense in a container.
  for u in getty@tty1.service systemd-udevd.service systemd-udev-trigger.service systemd-modules-load.service \
           sys-kernel-config.mount sys-kernel-debug.mount systemd-remount-fs.service; do
    ln -sf /dev/null "$work/etc/systemd/system/$u"
  done
  : >"$work/etc/machine-id"
  echo "spark-sim: SIMULATED DGX Spark host (Debian $suite, no GPU); inputs $host_hash" >"$work/etc/spark-sim-release"
  log "importing $host_tag"
  tar -C "$work" -c . | docker import \
    -c 'CMD ["/lib/systemd/systemd"]' \
    -c 'ENV container=docker' \
    -c "LABEL org.spark-sim.inputs=$host_hash org.spark-sim.simulated=true" \
    - "$host_tag" >/dev/null
  rm -rf "$work"
fi
docker image prune -f --filter label=org.spark-sim.simulated=true >/dev/null  # superseded builds
log "images ready: $host_tag $sglang_tag $infra_tag"
