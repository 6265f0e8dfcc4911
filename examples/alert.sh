#!/usr/bin/env bash
# Send a generic monitoring alert to a running `plughook serve`.
#
#   PLUGHOOK_API_TOKEN  the monitor-alert API_TOKEN (default dev-api-token), which
#                       examples/plughook.toml reads from this variable and
#                       plughook.example.toml from MONITOR_API_TOKEN
#   PLUGHOOK_URL        server base URL (default http://127.0.0.1:8021)
#
# The body has service, level (critical, error, warning or info), message and
# metrics; without a timestamp the server uses the time it received the alert.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
url="${PLUGHOOK_URL:-http://127.0.0.1:8021}"
token="${PLUGHOOK_API_TOKEN:-dev-api-token}"
payload="${1:-$here/payloads/alert.json}"

curl --silent --show-error --fail-with-body --write-out '\n' \
  -X POST "$url/api/plugin/monitor-alert/webhook/alert" \
  -H "Content-Type: application/json" \
  -H "Authorization: Bearer $token" \
  --data-binary "@$payload"
