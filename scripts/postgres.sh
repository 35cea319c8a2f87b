#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks that run on PostgreSQL: Debian's server binaries
# (postgresql-15, on the machine image), a cluster made by initdb in a temporary folder, listening on a Unix socket
# only (no TCP port), run as the 'postgres' user (the server refuses root). Idempotent; says what it did.
# Usage: sudo scripts/postgres.sh start|stop|status|connection
#   NETLAB_PG_DIR  the folder (default /tmp/netlab-postgres): data/, the socket, log, and 'connection' (an Npgsql
#                  connection string for the superuser 'netlab', read by the tests).
set -euo pipefail

dir="${NETLAB_PG_DIR:-/tmp/netlab-postgres}"
port=55432
say() { printf '[postgres] %s\n' "$*"; }

bin=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/postgres" ] && bin="$d"
done

if [ "$(id -u)" -ne 0 ]; then
  echo "postgres.sh: must run as root (the server runs as the postgres user)" >&2
  exit 1
fi

user=postgres
id "$user" >/dev/null 2>&1 || user=nobody
as_user() { runuser -u "$user" -- "$@"; }

running() { [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ] && as_user "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

case "${1:-}" in
  start)
    if [ -z "$bin" ]; then
      say "installing postgresql-15 (server binaries only; no service is started)"
      export DEBIAN_FRONTEND=noninteractive
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
      rm -f /usr/sbin/policy-rc.d
      for d in /usr/lib/postgresql/*/bin; do [ -x "$d/postgres" ] && bin="$d"; done
      user=postgres
    fi
    if running; then
      say "already running: $(as_user "$bin/postgres" --version) in $dir"
      exit 0
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      rm -rf "$dir"
      mkdir -p "$dir"
      chown "$user": "$dir"
      chmod 700 "$dir"
      as_user "$bin/initdb" -D "$dir/data" -U netlab --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    fi
    # Unix socket only, in a folder only root and the server's user can enter.
    as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start \
      -o "-k $dir -p $port -c listen_addresses= -c max_connections=200" >/dev/null
    printf 'Host=%s;Port=%s;Username=netlab;Database=postgres' "$dir" "$port" >"$dir/connection"
    say "started $(as_user "$bin/postgres" --version) as $user in $dir (socket only, port $port)"
    ;;
  stop)
    if running; then
      as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
      say "stopped"
    else
      say "not running"
    fi
    rm -rf "$dir"
    ;;
  status)
    if running; then say "running in $dir"; else say "not running"; exit 3; fi
    ;;
  connection)
    cat "$dir/connection"
    ;;
  *)
    echo "usage: postgres.sh start|stop|status|connection" >&2
    exit 2
    ;;
esac
