#!/usr/bin/env bash
# A second Docker engine beside the system's, in a network namespace of its own (as root):
#   bash scripts/lab-engine.sh start 28.5     # docker.io 28.5.2 (Debian unstable) with containerd 2.1.x
#   bash scripts/lab-engine.sh start 26.1     # docker.io 26.1.5 (Debian 13)
#   bash scripts/lab-engine.sh stop 28.5
# The packages come from the Debian archive the machine's own apt sources name, through an apt configuration of this
# script's own (the system's package lists stay as they are), and are unpacked with dpkg -x under artifacts/engines;
# Debian 12's runc serves (installed with apt if missing). The engine runs in namespace nlengine<version> (blackholes
# for 172.16.0.0/12 and 192.168.0.0/16, ip_forward on, cgroup2 mounted in its own mount namespace) with its own
# containerd (the package's, on a socket of its own, never the system's), its own daemon.json (address pools inside
# 172.16.0.0/12), data-root, exec-root, socket (/run/netlab-engine-<version>.sock) and pidfile, and gets
# busybox:latest from the system's engine. Prints the socket. A start that fails stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[lab-engine] %s\n' "$*" >&2; }
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
# The engine's pid, only while the pidfile names this engine's dockerd (a stale pidfile's pid may be another process).
engine_pid() {
  [ -f "$pidfile" ] || return 1
  local pid; pid=$(cat "$pidfile")
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$root/usr/sbin/dockerd" ] && echo "$pid"
}

stop_engine() {
  if pid=$(engine_pid); then
    # Containers first, then the engine.
    cli ps -aq 2>/dev/null | xargs -r docker -H "unix://$sock" rm -f >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  # Whatever still runs in the namespace (its containerd, shims; dockerd if it would not stop): TERM, then KILL.
  if ip netns list | grep -qw "$ns"; then
    for sig in TERM KILL; do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -n "$pids" ] || break
      kill "-$sig" $pids 2>/dev/null || true
      sleep 1
    done
    ip netns del "$ns"
  fi
  rm -f "$pidfile"
  say "engine $docker_version stopped, namespace $ns removed"
}

if [ "$action" = stop ]; then
  stop_engine
  exit 0
fi
trap 'say "start failed; stopping what it started"; stop_engine' ERR

# 1. The packages, unpacked once.
if [ ! -x "$root/usr/sbin/dockerd" ]; then
  uri=$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$uri" ] || uri=$(sed -n 's/^deb[[:space:]]\+\(http[^ ]*debian\)[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
  [ -n "$uri" ] || { echo "no Debian archive in the machine's apt sources" >&2; exit 1; }
  apt=$base/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$root"
  # apt's downloader runs as _apt: it may write only there.
  id _apt >/dev/null 2>&1 && chown -R _apt "$apt/lists" "$apt/cache" "$apt/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" >"$apt/sources.list"
  opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1")
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
  mkdir -p "$base/data" "$base/exec" "$base/containerd/root" "$base/containerd/state"
  # Networks created without --subnet stay inside the lab range too.
  printf '{\n  "bip": "172.17.0.1/16",\n  "default-address-pools": [{"base": "172.26.0.0/16", "size": 24}]\n}\n' >"$base/daemon.json"
  export PATH="$root/usr/bin:$root/usr/sbin:$root/usr/libexec/docker:$PATH"
  containerd_sock=$base/containerd/containerd.sock
  # One mount namespace for both (dockerd's sandbox keys and containerd's mounts): cgroup2 mounted, containerd in
  # the background, then dockerd in the shell's place.
  setsid ip netns exec "$ns" sh -c 'mount -t cgroup2 none /sys/fs/cgroup || exit 1
    "$1" --root "$2" --state "$3" --address "$4" >"$5" 2>&1 &
    shift 5; exec "$@"' sh "$root/usr/bin/containerd" "$base/containerd/root" "$base/containerd/state" "$containerd_sock" "$base/containerd.log" \
    "$root/usr/sbin/dockerd" --config-file "$base/daemon.json" --containerd "$containerd_sock" \
    --data-root "$base/data" --exec-root "$base/exec" -H "unix://$sock" --pidfile "$pidfile" \
    </dev/null >"$base/dockerd.log" 2>&1 &
  for _ in $(seq 60); do cli version >/dev/null 2>&1 && break; sleep 0.5; done
  cli version >/dev/null 2>&1 || { tail -20 "$base/dockerd.log" "$base/containerd.log" >&2; false; }
fi
say "engine $(cli version --format '{{.Server.Version}}') in namespace $ns, pid $(cat "$pidfile")"

# 4. busybox:latest, as for the system's engine (no registry here).
if ! cli image inspect busybox:latest >/dev/null 2>&1; then
  docker save busybox:latest 2>/dev/null | cli load >/dev/null \
    || { echo "busybox:latest must exist in the system's engine first (scripts/lab-setup.sh)" >&2; false; }
  say "busybox:latest loaded"
fi
echo "unix://$sock"
