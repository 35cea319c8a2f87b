#!/usr/bin/env bash
# A rule change from a script, as two people: the operator proposes, the approver approves (the rule goes on the host,
# verified), the operator reverts (the rule comes off, verified). Every call is checked by the dashboard against the
# token owner's role in the lab; a refusal is problem details and stops the script (curl --fail-with-body).
#
# Usage: NETLAB_URL=http://127.0.0.1:5000 OPERATOR_TOKEN=nlt_... APPROVER_TOKEN=nlt_... \
#        examples/change-workflow.sh IN_INTERFACE OUT_INTERFACE [LAB]
# Prints one line per step: "proposed change N", "change N: Applied (verified: ...)", "change N: Reverted (...)".
set -euo pipefail
: "${NETLAB_URL:?set NETLAB_URL}" "${OPERATOR_TOKEN:?set OPERATOR_TOKEN}" "${APPROVER_TOKEN:?set APPROVER_TOKEN}"
in_if=${1:?usage: change-workflow.sh IN_INTERFACE OUT_INTERFACE [LAB]}
out_if=${2:?usage: change-workflow.sh IN_INTERFACE OUT_INTERFACE [LAB]}
lab=${3:-1}

# One call; a refusal's problem details go to stderr and the script stops.
api() {
  local token=$1 body
  shift
  if ! body=$(curl -sS --fail-with-body --max-time 60 -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"); then
    echo "refused: $body" >&2
    return 1
  fi
  printf '%s' "$body"
}
field() { printf '%s' "$1" | grep -o "\"$2\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }

created=$(api "$OPERATOR_TOKEN" -X POST "$NETLAB_URL/api/changes" \
  -d "{\"lab\":$lab,\"rule\":{\"chain\":\"DOCKER-USER\",\"position\":1,\"inInterface\":\"$in_if\",\"outInterface\":\"$out_if\",\"target\":\"ACCEPT\"},\"rationale\":\"example: change-workflow.sh\"}")
id=$(printf '%s' "$created" | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
echo "proposed change $id"

approved=$(api "$APPROVER_TOKEN" -X POST "$NETLAB_URL/api/changes/$id/approve" -d '{"note":"approved by change-workflow.sh"}')
echo "change $id: $(field "$approved" state) ($(field "$approved" outcome))"

reverted=$(api "$OPERATOR_TOKEN" -X POST "$NETLAB_URL/api/changes/$id/revert")
echo "change $id: $(field "$reverted" state) ($(field "$reverted" outcome))"
