#!/usr/bin/env bash
# Starts the dashboard against the local Docker engine, with SQLite in ~/.local/share/netlab-dashboard
# (override with --Data:Directory=/path). Listens on http://127.0.0.1:5000 (override with --urls).
# Run as root: it reads and changes the host's firewall and enters container network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/lab-setup.sh --no-browser
else
  echo "run.sh: not root: the dashboard will show the host it can read and say what it cannot" >&2
fi
exec dotnet run --project src/Dashboard.Web -c Release -- "$@"
