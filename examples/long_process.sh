#!/usr/bin/env bash
# Start a background task on a running `plughook serve` and poll it until it ends.
#
#   PLUGHOOK_API_TOKEN  the long-process API_TOKEN (default dev-api-token), which
#                       examples/plughook.toml reads from this variable and
#                       plughook.example.toml from TASKS_API_TOKEN
#   PLUGHOOK_URL        server base URL (default http://127.0.0.1:8021)
#   POLL_SECONDS        pause between status reads (default 1)
#   MAX_POLLS           status reads before giving up (default 60)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
url="${PLUGHOOK_URL:-http://127.0.0.1:8021}/api/plugin/long-process/webhook/tasks"
token="${PLUGHOOK_API_TOKEN:-dev-api-token}"
payload="${1:-$here/payloads/long_process.json}"
poll_seconds="${POLL_SECONDS:-1}"
max_polls="${MAX_POLLS:-60}"

started="$(curl --silent --show-error --fail-with-body -X POST "$url" \
  -H "Content-Type: application/json" \
  -H "Authorization: Bearer $token" \
  --data-binary "@$payload")"
echo "$started"
task_id="$(printf '%s' "$started" | sed -n 's/.*"task_id":"\([0-9a-f]*\)".*/\1/p')"
if [[ -z "$task_id" ]]; then
  echo "missing task_id in the response above" >&2
  exit 1
fi

for ((poll = 1; poll <= max_polls; poll++)); do
  sleep "$poll_seconds"
  record="$(curl --silent --show-error --fail-with-body "$url?id=$task_id" \
    -H "Authorization: Bearer $token")"
  echo "$record"
  if [[ "$record" != *'"state":"running"'* ]]; then
    exit 0
  fi
done
echo "task $task_id still running after $max_polls status reads" >&2
exit 1
