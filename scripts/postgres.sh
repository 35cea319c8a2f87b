#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks that run on PostgreSQL: Debian's server binaries
# (the postgresql package, on the machine image), a cluster made by initdb under /run/netlab-postgres, listening on a
# Unix socket only (no TCP port), run as the 'postgres' user (the server refuses root). Idempotent; says what it did.
# Usage: sudo scripts/postgres.sh start|stop|status|connection
#   /run/netlab-postgres (root's, 0755) holds the marker and 'connection' (an Npgsql connection string for the
#   superuser 'netlab', read by the tests), both written only by root; server/ (the postgres user's, 0700) holds data/,
#   the socket and the log. No other user can plant or redirect anything root writes.
set -euo pipefail

dir=/run/netlab-postgres
marker="$dir/.netlab-postgres"
port=55432
say() { printf '[postgres] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "postgres.sh: must run as root (the server runs as the postgres user)" >&2
  exit 1
fi

find_bin() {
  bin=""
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] && bin="$d"
  done
  return 0
}
find_bin

as_postgres() { runuser -u postgres -- "$@"; }
srv="$dir/server"
running() { [ -n "$bin" ] && [ -f "$srv/data/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$srv/data" status >/dev/null 2>&1; }

# Only ever removes a real folder (not a symlink) that this script made (it holds the marker).
# shellcheck source=scripts/service-lib.sh
. "$(dirname "$0")/service-lib.sh"
remove_dir() { remove_marked_dir "$dir" "$marker" postgres.sh; }

case "${1:-}" in
  start)
    if [ -z "$bin" ]; then
      say "installing Debian's postgresql (server binaries; its own cluster is not started)"
      install_without_starting postgresql
      find_bin
    fi
    if ! id postgres >/dev/null 2>&1; then
      echo "postgres.sh: no 'postgres' user (Debian's postgresql-common makes it)" >&2
      exit 1
    fi
    if running; then
      say "already running: $(as_postgres "$bin/postgres" --version) in $dir"
      exit 0
    fi
    if [ ! -f "$srv/data/PG_VERSION" ]; then
      remove_dir
      install -d -o root -g root -m 755 "$dir"
      : >"$marker"
      install -d -o postgres -g postgres -m 700 "$srv"
      as_postgres "$bin/initdb" -D "$srv/data" -U netlab --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    fi
    # Unix socket only, in a folder only root and the server's user can enter; WAL kept small (/run may be tmpfs).
    as_postgres "$bin/pg_ctl" -D "$srv/data" -l "$srv/log" -w -t 60 start \
      -o "-k $srv -p $port -c listen_addresses= -c max_connections=200 -c max_wal_size=128MB" >/dev/null
    tmp=$(umask 077 && mktemp -p "$dir")
    printf 'Host=%s;Port=%s;Username=netlab;Database=postgres' "$srv" "$port" >"$tmp"
    chmod 644 "$tmp" && mv -f "$tmp" "$dir/connection"
    say "started $(as_postgres "$bin/postgres" --version) as postgres in $srv (socket only, port $port)"
    ;;
  stop)
    if running; then
      as_postgres "$bin/pg_ctl" -D "$srv/data" -m fast -w stop >/dev/null
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
    echo "usage: postgres.sh start|stop|status|connection" >&2
    exit 2
    ;;
esac
