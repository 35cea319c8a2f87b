#!/usr/bin/env bash
# A throwaway Redis for the tests and benchmarks that run dashboard replicas (the SignalR backplane and the live feed
# across replicas): Debian's redis-server package (installed if missing; its own service is not started), run as the
# 'redis' user on a Unix socket only (no TCP port), nothing persisted. Idempotent; says what it did.
# Usage: sudo scripts/redis.sh start|stop|status|connection
#   /run/netlab-redis (root's, 0755) holds the marker and 'connection' (a StackExchange.Redis configuration string,
#   read by the tests), both written only by root; server/ (the redis user's, 0750) holds the socket, pidfile and log.
set -euo pipefail

dir=/run/netlab-redis
marker="$dir/.netlab-redis"
srv="$dir/server"
say() { printf '[redis] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "redis.sh: must run as root (the server runs as the redis user)" >&2
  exit 1
fi

# The server's pid, read once from its pidfile (the redis user's folder: a plain file holding digits, nothing else),
# and only while that pid is a redis-server.
server_pid() {
  local f="$srv/redis.pid" pid
  [ -f "$f" ] && [ ! -L "$f" ] || return 1
  pid=$(head -c 16 -- "$f" | tr -d '[:space:]')
  [[ "$pid" =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = redis-server ] && echo "$pid"
}
running() { server_pid >/dev/null; }

# Only ever removes a real folder (not a symlink) that this script made (it holds the marker).
# shellcheck source=scripts/service-lib.sh
. "$(dirname "$0")/service-lib.sh"
remove_dir() { remove_marked_dir "$dir" "$marker" redis.sh; }

case "${1:-}" in
  start)
    if ! command -v redis-server >/dev/null; then
      say "installing Debian's redis-server (its own service is not started)"
      install_without_starting redis-server
    fi
    if ! id redis >/dev/null 2>&1; then
      echo "redis.sh: no 'redis' user (Debian's redis-server makes it)" >&2
      exit 1
    fi
    if running; then
      say "already running: $(redis-server --version | cut -d' ' -f1-3) in $dir"
      exit 0
    fi
    remove_dir
    install -d -o root -g root -m 755 "$dir"
    : >"$marker"
    install -d -o redis -g redis -m 750 "$srv"
    # Socket only, nothing saved, no protected-mode question (no TCP listener at all).
    runuser -u redis -- redis-server - >/dev/null <<EOF
port 0
unixsocket $srv/redis.sock
unixsocketperm 700
daemonize yes
pidfile $srv/redis.pid
logfile $srv/log
dir $srv
save ""
appendonly no
maxmemory 256mb
EOF
    for _ in $(seq 1 50); do [ -S "$srv/redis.sock" ] && break; sleep 0.1; done
    [ -S "$srv/redis.sock" ] || { echo "redis.sh: the server did not start:" >&2; runuser -u redis -- tail -20 "$srv/log" >&2; exit 1; }
    tmp=$(umask 077 && mktemp -p "$dir")
    printf '%s' "$srv/redis.sock" >"$tmp"
    chmod 644 "$tmp" && mv -f "$tmp" "$dir/connection"
    say "started $(redis-server --version | cut -d' ' -f1-3) as redis on $srv/redis.sock (no TCP port)"
    ;;
  stop)
    if running; then
      # Asked to shut down through its own socket, as its own user (nothing root reads from the server's folder is trusted).
      runuser -u redis -- redis-cli -s "$srv/redis.sock" shutdown nosave >/dev/null 2>&1 || true
      for _ in $(seq 1 50); do running || break; sleep 0.1; done
      if pid=$(server_pid); then runuser -u redis -- kill -KILL "$pid" 2>/dev/null || true; fi
      say "stopped"
    else
      say "not running"
    fi
    remove_dir
    ;;
  status)
    if running; then say "running in $dir"; else say "not running"; exit 3; fi
    ;;
  connection)
    cat "$dir/connection"
    ;;
  *)
    echo "usage: redis.sh start|stop|status|connection" >&2
    exit 2
    ;;
esac
