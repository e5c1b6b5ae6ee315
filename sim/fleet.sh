#!/usr/bin/env bash
# The SIMULATED Spark fleet for the demo: containers that boot systemd and run their own dockerd,
# reached over SSH as the login user 'spark' with a generated key, as a real fleet is.
#   sim/fleet.sh key          make the SSH key (.sim/ssh/id_ed25519) if missing
#   sim/fleet.sh up           create the hosts that inventory/sim/hosts.yml lists (groups sparks and
#                             gateway), plus sim-infra
#   sim/fleet.sh down         remove them (containers, their volumes, the network)
#   sim/fleet.sh clean        down, then the sim images, the build output (.sim/) and reports/demo/;
#                             lists anything of the demo that is left (exit 1 then)
# SIM_INVENTORY picks another inventory (scripts/rollout_bench.py makes fleets of other sizes);
# SIM_PRELOAD_IMAGE=0 leaves the hosts without the SGLang image (bare, as a new box is).
# Host names and addresses come from the inventory; nothing here is fleet data.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
inventory=${SIM_INVENTORY:-$repo/inventory/sim/hosts.yml}
network=spark-sim
key=$repo/.sim/ssh/id_ed25519
host_image=spark-sim/host:bookworm
infra_image=spark-sim/infra:bookworm
sglang_image=spark-sim/sglang:sim
log() { echo "sim-fleet: $*" >&2; }

# name ip subnet infra_ip group, one line per sim host (Sparks first, then gateways), from the inventory.
hosts_from_inventory() {
  ansible-inventory -i "$inventory" --list | python3 -c '
import json, sys
inv = json.load(sys.stdin)
hv = inv["_meta"]["hostvars"]
for group in ("sparks", "gateway"):
    for h in inv.get(group, {}).get("hosts", []):
        v = hv[h]
        print(h, v["ansible_host"], v["sim_network_subnet"], v["sim_infra_address"], group)
'
}

make_key() {
  [ -s "$key" ] && return 0
  mkdir -p "$(dirname "$key")" && chmod 0700 "$(dirname "$key")"
  ssh-keygen -q -t ed25519 -N '' -C "spark-sim demo key" -f "$key"
  log "generated $key"
}

# The flags that run systemd plus an inner dockerd here (see docs/simulated-fleet.md;
# --privileged is refused on these machines).
run_spark() {
  local name=$1 ip=$2
  docker run -d --name "$name" --hostname "$name" --network "$network" --ip "$ip" \
    --label org.spark-sim.fleet=demo \
    --cap-add=ALL --cap-drop=SYS_RESOURCE \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock -v /var/lib/docker \
    "$host_image" >/dev/null
}

wait_ready() {  # systemd up and sshd answering, bounded
  local name=$1 ip=$2
  for _ in $(seq 1 90); do
    if docker exec "$name" systemctl is-active --quiet ssh docker 2>/dev/null \
       && ssh -n -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
              -o ConnectTimeout=2 "spark@$ip" true 2>/dev/null; then
      return 0
    fi
    sleep 1
  done
  log "$name did not come up (systemd/ssh) within 90 s"; docker exec "$name" systemctl --failed || true
  return 1
}

up() {
  make_key
  local lines subnet infra_ip
  lines=$(hosts_from_inventory)
  [ -n "$lines" ] || { log "no hosts in group 'sparks' of $inventory"; exit 1; }
  read -r _ _ subnet infra_ip _ <<<"$(head -n1 <<<"$lines")"
  docker network inspect "$network" >/dev/null 2>&1 || \
    docker network create --subnet "$subnet" --label org.spark-sim.fleet=demo "$network" >/dev/null
  if ! docker inspect spark-sim-infra >/dev/null 2>&1; then
    docker run -d --name spark-sim-infra --hostname sim-infra --network "$network" --ip "$infra_ip" \
      --label org.spark-sim.fleet=demo \
      -v "$repo/sim:/srv/sim:ro" -v "$repo/.sim/apt:/srv/apt:ro" -v "$repo/.sim/registry:/srv/registry" \
      "$infra_image" >/dev/null
  fi
  while read -r name ip _ _ _; do
    docker inspect "$name" >/dev/null 2>&1 || { log "creating $name ($ip)"; run_spark "$name" "$ip"; }
  done <<<"$lines"
  while read -r name ip _ _ group; do
    docker exec -i "$name" sh -c 'install -d -m 0700 -o spark -g spark ~spark/.ssh &&
      cat > ~spark/.ssh/authorized_keys && chown spark:spark ~spark/.ssh/authorized_keys &&
      chmod 0600 ~spark/.ssh/authorized_keys' <"$key.pub"
    wait_ready "$name" "$ip"
    # Preloaded for the demo's GPU smoke test; without it the image comes through the mirror.
    if [ "$group" = sparks ] && [ "${SIM_PRELOAD_IMAGE:-1}" = 1 ]; then
      docker exec "$name" docker image inspect "$sglang_image" >/dev/null 2>&1 || \
        docker exec -i "$name" docker load -q <"$repo/.sim/images/sglang-sim.tar" >/dev/null
    fi
    if [ "$group" = sparks ]; then
      log "$name is up: ssh spark@$ip (SIMULATED Spark)"
    else
      log "$name is up: ssh spark@$ip (SIMULATED gateway host)"
    fi
  done <<<"$lines"
}

down() {
  local ids
  ids=$(docker ps -aq --filter label=org.spark-sim.fleet=demo)
  [ -z "$ids" ] || docker rm -f -v $ids >/dev/null
  docker network rm "$network" >/dev/null 2>&1 || true
  log "simulated fleet removed"
}

# What the demo made that is still here: containers, volumes, networks, images.
leftovers() {
  docker ps -a --filter label=org.spark-sim.fleet=demo --format 'container {{.Names}}'
  docker volume ls -q --filter label=org.spark-sim.fleet=demo | sed 's/^/volume /'
  docker network ls --filter name="^${network}\$" --format 'network {{.Name}}'
  docker images --filter label=org.spark-sim.simulated=true --format 'image {{.Repository}}:{{.Tag}}'
  [ ! -e "$repo/.sim" ] || echo "directory $repo/.sim"
  [ ! -e "$repo/reports/demo" ] || echo "directory $repo/reports/demo"
}

clean() {
  down
  local images
  images=$(docker images -q --filter label=org.spark-sim.simulated=true | sort -u)
  # Not forced: an image still used by other containers (a molecule run) stays, and is listed.
  [ -z "$images" ] || docker image rm $images >/dev/null || true
  rm -rf "$repo/.sim" "$repo/reports/demo"
  local left
  left=$(leftovers)
  if [ -n "$left" ]; then
    log "still here:"; echo "$left" >&2; return 1
  fi
  log "demo removed: no container, volume, network or image of it is left; .sim/ and reports/demo/ deleted"
}

case "${1:-}" in
  key) make_key ;;
  up) up ;;
  down) down ;;
  clean) clean ;;
  leftovers) leftovers ;;
  *) echo "usage: $0 key|up|down|clean|leftovers" >&2; exit 2 ;;
esac
