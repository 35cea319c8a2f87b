#!/usr/bin/env bash
# Runs a Docker host's agent, as root (it reads the firewall and the engine, as the dashboard's own collector does):
#   bash scripts/agent.sh --server https://dashboard.example:5001 --token-file /etc/netlab/agent.token   # this machine's engine
#   bash scripts/agent.sh --engine 28.5 --unix-socket /run/netlab-dashboard.sock --token nla_…
# The token comes from registering the host on the dashboard's Hosts page (or POST /api/hosts); pass it with --token,
# --token-file FILE or NETLAB_AGENT_TOKEN (it reaches the agent in its environment, not on its command line).
# --engine 26.1|28.5 runs the agent inside the network and mount namespaces of an engine that scripts/lab-engine.sh
# started (its iptables, its containers' sandbox keys, its socket); such an agent reaches a dashboard on this machine
# through the Unix socket the dashboard also listens on (start it with --urls "http://127.0.0.1:5000;http://unix:/run/netlab-dashboard.sock").
# --name NAME makes the agent refuse to run as any other host than NAME. Further --Key value pairs go to the agent
# (e.g. --Collector:TargetRateHz 2). The agent reconnects by itself with backoff; stop it with Ctrl+C or SIGTERM.
#
# As a systemd service on another machine (the repository in /opt/netlab, the token in /etc/netlab/agent.token, 0600):
#   [Unit]
#   Description=netlab dashboard agent
#   After=docker.service network-online.target
#   [Service]
#   ExecStart=/usr/bin/bash /opt/netlab/scripts/agent.sh --server https://dashboard.example:5001 --token-file /etc/netlab/agent.token
#   Restart=always
#   [Install]
#   WantedBy=multi-user.target
set -euo pipefail
cd "$(dirname "$0")/.."
server="" socket="" engine="" name="" token_file="" token="${NETLAB_AGENT_TOKEN:-}"
extra=()
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "agent.sh: $1 needs a value" >&2; exit 2; }
  case "$1" in
    --server) server=$2; shift 2 ;;
    --token) token=$2; shift 2 ;;
    --token-file) token_file=$2; [ -r "$token_file" ] || { echo "agent.sh: cannot read $token_file" >&2; exit 2; }; shift 2 ;;
    --unix-socket) socket=$2; shift 2 ;;
    --engine) engine=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --*) extra+=("$1" "$2"); shift 2 ;;
    *) echo "agent.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$token" ] || [ -n "$token_file" ] || { echo "agent.sh: no token (--token, --token-file or NETLAB_AGENT_TOKEN): register the host on the dashboard's Hosts page" >&2; exit 2; }
[ -n "$server" ] || [ -n "$socket" ] || { echo "agent.sh: --server URL or --unix-socket PATH is needed" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || echo "agent.sh: not root: the agent will report what it cannot read" >&2

dll=src/Dashboard.Agent/bin/Release/net10.0/Dashboard.Agent.dll
if [ ! -f "$dll" ] || [ -n "$(find src/Dashboard.Agent src/Dashboard.Host src/Dashboard.Core -name '*.cs' -newer "$dll" -print -quit)" ]; then
  dotnet build src/Dashboard.Agent -c Release --nologo -v q >&2
fi

if [ -n "$token_file" ]; then
  export Agent__TokenFile=$(realpath "$token_file")
else
  export Agent__Token=$token
fi
export Agent__Server=${server:-http://localhost/}
[ -n "$socket" ] && export Agent__UnixSocket=$socket
[ -n "$name" ] && export Agent__Name=$name
if [ -n "$engine" ]; then
  case "$engine" in 26.1|28.5) ;; *) echo "agent.sh: --engine is 26.1 or 28.5 (the engines of scripts/lab-engine.sh)" >&2; exit 2 ;; esac
  id=${engine//./}
  pid=$(cat "/run/netlab-engine-$id.pid" 2>/dev/null) || { echo "agent.sh: engine $engine is not running (scripts/lab-engine.sh start $engine)" >&2; exit 1; }
  [[ "$pid" =~ ^[0-9]+$ ]] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$PWD/artifacts/engines/$engine/root/usr/sbin/dockerd" ] \
    || { echo "agent.sh: /run/netlab-engine-$id.pid does not name that engine's dockerd (scripts/lab-engine.sh start $engine)" >&2; exit 1; }
  export Host__DockerEndpoint=unix:///run/netlab-engine-$id.sock
  export Host__InstanceId=agent$id
  exec nsenter -t "$pid" -n -m -- dotnet "$PWD/$dll" "${extra[@]}"
fi
exec dotnet "$dll" "${extra[@]}"
