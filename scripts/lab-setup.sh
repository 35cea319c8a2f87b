#!/usr/bin/env bash
# Prepares this machine as a lab Docker host: packages, a running engine, a local busybox:latest image and the safety
# routes, a throwaway PostgreSQL server (scripts/postgres.sh) and Redis (scripts/redis.sh); then two more engines as hosts of their own (Docker
# 26.1.5 and 28.5.2 from Debian's archive, each in a network namespace of its own, by scripts/lab-engine.sh), for
# agents to report from. Idempotent; says what it did.
# Usage: sudo scripts/lab-setup.sh [--no-browser] [--no-engines]
set -euo pipefail

want_browser=1
want_engines=1
for arg in "$@"; do
  case "$arg" in
    --no-browser) want_browser=0 ;;
    --no-engines) want_engines=0 ;;
    *) echo "lab-setup: unknown option $arg (--no-browser, --no-engines)" >&2; exit 2 ;;
  esac
done

say() { printf '[lab-setup] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "lab-setup: must run as root (it installs packages, starts dockerd and adds routes)" >&2
  exit 1
fi

# ipset: the kernel oracle loads the sets of the Docker 28.0.0 layout in its scratch namespace; debootstrap: the
# container image's stand-in base images (scripts/image.sh); docker-compose: checks deploy/compose.yaml.
packages=(docker.io iptables nftables ipset tcpdump iproute2 busybox-static ca-certificates procps util-linux curl debootstrap docker-compose)
[ "$want_browser" -eq 1 ] && packages+=(chromium fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "packages already installed: ${packages[*]}"
fi

# Tools the tests run but never as services: Debian's packages unpacked under artifacts/tools (dpkg -x), so no daemon
# starts here. Prometheus: the metrics test runs it on loopback with a configuration of its own; nginx: the check of
# deploy/nginx (installing the package would start a server on port 80).
unpack_tool() { # package, its program below the unpacked root, the option that prints its version
  local pkg=$1 program=$2 version=$3 root debs
  root="$(cd "$(dirname "$0")/.." && pwd)/artifacts/tools/$pkg"
  if [ -x "$root/$program" ]; then
    say "$pkg present: $("$root/$program" "$version" 2>&1 | head -1)"
    return
  fi
  debs=$(mktemp -d)
  id _apt >/dev/null 2>&1 && chown _apt "$debs"
  apt-cache show "$pkg" >/dev/null 2>&1 || apt-get update -qq
  (cd "$debs" && apt-get download -qq "$pkg")
  mkdir -p "$root"
  dpkg -x "$debs/${pkg}"_*.deb "$root"
  rm -rf "$debs"
  say "$pkg unpacked under artifacts/tools: $("$root/$program" "$version" 2>&1 | head -1)"
}
unpack_tool prometheus usr/bin/prometheus --version
unpack_tool nginx usr/sbin/nginx -v

# Node.js packages the tests run, from the npm registry (Node.js 20 or later): the independent OpenAPI validator
# (@readme/openapi-parser) and the SignalR example's client (@microsoft/signalr).
repo="$(cd "$(dirname "$0")/.." && pwd)"
for dir in tests/openapi-validator examples/signalr; do
  if ! command -v node >/dev/null; then
    say "node not found: $dir needs Node.js 20 or later"
  elif [ -d "$repo/$dir/node_modules" ]; then
    say "$dir: node packages present (node $(node --version))"
  else
    # --ignore-scripts: nothing a package ships runs here as root.
    (cd "$repo/$dir" && npm ci --ignore-scripts --no-audit --no-fund --silent)
    say "$dir: node packages installed with npm ci (node $(node --version))"
  fi
done

# Safety routes before any lab traffic: a lab address that no longer exists is dropped
# here instead of leaving the machine. Bridge routes are more specific and still win.
ip route replace blackhole 172.16.0.0/12
ip route replace blackhole 192.168.0.0/16
say "safety routes: blackhole 172.16.0.0/12 and 192.168.0.0/16 in place"

if docker info >/dev/null 2>&1; then
  say "docker engine answers: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
else
  say "starting dockerd (log: /var/log/dockerd-lab.log)"
  # containerd is started by dockerd itself when not already running.
  nohup dockerd >/var/log/dockerd-lab.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "lab-setup: dockerd did not answer within 60 s; see /var/log/dockerd-lab.log" >&2; tail -20 /var/log/dockerd-lab.log >&2; exit 1; }
  say "docker engine started: $(docker version --format '{{.Server.Version}}')"
fi

if docker image inspect busybox:latest >/dev/null 2>&1; then
  say "image busybox:latest present"
else
  say "building busybox:latest from the host's static busybox (no registry here)"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  tar -C "$root" -c . | docker import --change 'CMD ["sh"]' --change 'ENV PATH=/bin' - busybox:latest >/dev/null
  say "image busybox:latest imported ($(docker image inspect busybox:latest --format '{{.Size}}') bytes)"
fi

if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
  say "br_netfilter: bridge-nf-call-iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)"
fi
if [ "$want_engines" -eq 1 ]; then
  for v in 26.1 28.5; do
    bash "$(dirname "$0")/lab-engine.sh" start "$v" >/dev/null
    say "engine $v: $(docker -H "unix:///run/netlab-engine-${v//./}.sock" version --format '{{.Server.Version}}') in namespace nlengine${v//./} (scripts/lab-engine.sh)"
  done
else
  say "engines 26.1 and 28.5 not started (--no-engines)"
fi
# PostgreSQL for the tests on that provider: a throwaway cluster on a Unix socket (scripts/postgres.sh).
bash "$(dirname "$0")/postgres.sh" start | sed 's/^/[lab-setup] /'
# Redis for the replica tests (the SignalR backplane and the live feed across replicas): a Unix socket (scripts/redis.sh).
bash "$(dirname "$0")/redis.sh" start | sed 's/^/[lab-setup] /'
say "ready: $(iptables -V), $(tcpdump --version 2>&1 | head -1)"
