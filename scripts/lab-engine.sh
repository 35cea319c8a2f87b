#!/usr/bin/env bash
# A second Docker engine beside the system's, in a network namespace of its own (as root):
#   bash scripts/lab-engine.sh start 28.5     # docker.io 28.5.2 (Debian unstable) with containerd 2.1.x
#   bash scripts/lab-engine.sh start 26.1     # docker.io 26.1.5 (Debian 13)
#   bash scripts/lab-engine.sh stop 28.5
# The packages come from the Debian archive the machine's own apt sources name, through an apt configuration of this
# script's own (nothing of the system's apt state changes), and are unpacked with dpkg -x under artifacts/engines;
# Debian 12's runc serves. The engine runs in namespace nlengine<version> (blackholes for 172.16.0.0/12 and
# 192.168.0.0/16, ip_forward on, cgroup2 mounted in its own mount namespace), with its own data-root, exec-root, socket
# (/run/netlab-engine-<version>.sock) and pidfile, and gets busybox:latest imported. Prints the socket.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[lab-engine] %s\n' "$*"; }
action=${1:?usage: lab-engine.sh start|stop 26.1|28.5}
version=${2:?usage: lab-engine.sh start|stop 26.1|28.5}
case "$version" in
  26.1) suite=trixie; docker_version=26.1.5 ;;
  28.5) suite=sid; docker_version=28.5.2 ;;
  *) echo "version must be 26.1 or 28.5" >&2; exit 2 ;;
esac
name=${version//./}
ns=nlengine$name
base=$PWD/artifacts/engines/$version
root=$base/root
sock=/run/netlab-engine-$name.sock
pidfile=/run/netlab-engine-$name.pid

# The system's docker CLI speaks to the newer engines too (API version negotiated).
cli() { docker -H "unix://$sock" "$@"; }
engine_pid() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"; }

if [ "$action" = stop ]; then
  if pid=$(engine_pid); then
    # Containers first (their namespaces go with them), then the engine; its namespace last.
    cli ps -aq 2>/dev/null | xargs -r docker -H "unix://$sock" rm -f >/dev/null 2>&1 || true
    kill "$pid"; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    say "engine $docker_version stopped"
  fi
  ip netns del "$ns" 2>/dev/null || true
  exit 0
fi

# 1. The packages, unpacked once.
if [ ! -x "$root/usr/sbin/dockerd" ]; then
  uri=$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$uri" ] || uri=$(sed -n 's/^deb[[:space:]]\+\(http[^ ]*debian\)[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
  [ -n "$uri" ] || { echo "no Debian archive in the machine's apt sources" >&2; exit 1; }
  apt=$base/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$root"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" >"$apt/sources.list"
  opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  say "apt: $uri $suite (a configuration of this script's own)"
  apt-get "${opts[@]}" -qq update
  (cd "$apt/debs" && apt-get "${opts[@]}" -qq download "docker.io=$docker_version*" containerd)
  for deb in "$apt/debs"/*.deb; do dpkg -x "$deb" "$root"; done
  say "unpacked: $(ls "$apt/debs" | tr '\n' ' ')"
fi
command -v runc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runc >/dev/null

# 2. Its namespace, with the safety routes before any traffic.
if ! ip netns list | grep -qw "$ns"; then
  ip netns add "$ns"
fi
ip -n "$ns" link set lo up
ip -n "$ns" route replace blackhole 172.16.0.0/12
ip -n "$ns" route replace blackhole 192.168.0.0/16
ip netns exec "$ns" sysctl -q -w net.ipv4.ip_forward=1

# 3. The engine.
if ! engine_pid >/dev/null; then
  mkdir -p "$base/data" "$base/exec"
  export PATH="$root/usr/bin:$root/usr/sbin:$root/usr/libexec/docker:$PATH"
  setsid ip netns exec "$ns" sh -c 'mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$@"' "$root/usr/sbin/dockerd" \
    --data-root "$base/data" --exec-root "$base/exec" -H "unix://$sock" --pidfile "$pidfile" \
    </dev/null >"$base/dockerd.log" 2>&1 &
  for _ in $(seq 60); do cli version >/dev/null 2>&1 && break; sleep 0.5; done
  cli version >/dev/null 2>&1 || { tail -20 "$base/dockerd.log" >&2; exit 1; }
fi
say "engine $(cli version --format '{{.Server.Version}}') in namespace $ns, pid $(cat "$pidfile")"

# 4. busybox:latest, as for the system's engine (no registry here).
if ! cli image inspect busybox:latest >/dev/null 2>&1; then
  docker save busybox:latest 2>/dev/null | cli load >/dev/null \
    || { echo "busybox:latest must exist in the system's engine first (scripts/lab-setup.sh)" >&2; exit 1; }
  say "busybox:latest loaded"
fi
echo "unix://$sock"
