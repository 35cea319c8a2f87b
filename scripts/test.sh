#!/usr/bin/env bash
# Runs the whole test suite. As root it first prepares the lab host (scripts/lab-setup.sh: packages, dockerd,
# busybox image, safety routes) so the real-host tests run; elsewhere those tests skip with their reason, unless
# LAB_REQUIRE_DOCKER=1, where a missing engine fails them. Extra arguments go to `dotnet test` (e.g. --filter).
# Prints a closing line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ] && [ "${LAB_SKIP_SETUP:-0}" != "1" ]; then
  bash scripts/lab-setup.sh || exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

echo "== build (warnings are errors) =="
dotnet build Dashboard.sln -c Release --nologo -v q -warnaserror || { echo "0 passed, 1 failed"; exit 1; }

echo "== test =="
# One test assembly at a time: the real-host tests time pings with -W 1 and the browser tests share two cores.
dotnet test Dashboard.sln -c Release --no-build --nologo -maxcpucount:1 \
  --results-directory "$results" --logger "trx" --logger "console;verbosity=normal" "$@" | tee "$results/console.log"
status=${PIPESTATUS[0]}

# The Web tests that touch the database (all but the real-host, component and architecture ones) once more on
# PostgreSQL, each app on a database of its own (scripts/postgres.sh, started by lab-setup). Only for a whole run.
if [ "$#" -eq 0 ] && { [ -n "${LAB_POSTGRES:-}" ] || [ -f /run/netlab-postgres/connection ] || [ "${LAB_REQUIRE_DOCKER:-0}" = "1" ]; }; then
  echo "== test: the Web tests that touch the database, again on PostgreSQL =="
  mkdir -p "$results/postgres"
  NETLAB_TEST_PROVIDER=postgres dotnet test tests/Dashboard.Web.Tests -c Release --no-build --nologo \
    --filter "Category!=RealHost&FullyQualifiedName!~.Components.&FullyQualifiedName!~.Architecture.&FullyQualifiedName!~.Data." \
    --results-directory "$results/postgres" --logger "trx" --logger "console;verbosity=normal" | tee -a "$results/console.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

# Sum the counters of every test run's TRX file: <Counters total=".." executed=".." passed=".." failed=".." ...>.
read -r passed failed skipped < <(cat "$results"/*.trx "$results"/postgres/*.trx 2>/dev/null | grep -o '<Counters [^>]*>' | \
  sed -E 's/.*total="([0-9]+)" executed="([0-9]+)" passed="([0-9]+)" failed="([0-9]+)".*/\3 \4 \1 \2/' | \
  awk '{p+=$1; f+=$2; s+=$3-$4} END {print p+0, f+0, s+0}')
if [ "${passed:-0}" -eq 0 ] && [ "$status" -eq 0 ]; then
  echo "no tests ran"; status=1
fi
# Repeat each failed test's name and message at the end, where a truncated log (CI shows its tail) still has them.
if [ "${failed:-0}" -gt 0 ]; then
  echo
  echo "== failed tests =="
  awk '/^  Failed [A-Za-z_][A-Za-z0-9_.]*.* \[[0-9.]+ ?[a-z]+\]$/ {on=1; n=0} on && /^ +Stack Trace:/ {on=0; print ""} on && n++ < 40 {print}' "$results/console.log"
fi
echo
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$status"
