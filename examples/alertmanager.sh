#!/usr/bin/env bash
# Send an Alertmanager webhook notification (version 4) to a running `plughook serve`.
#
#   PLUGHOOK_API_TOKEN  the monitor-alert API_TOKEN (default dev-api-token), which
#                       examples/plughook.toml reads from this variable and
#                       plughook.example.toml from MONITOR_API_TOKEN
#   PLUGHOOK_URL        server base URL (default http://127.0.0.1:8021)
#
# Alertmanager sends the token when its receiver is configured as:
#
#   receivers:
#     - name: plughook
#       webhook_configs:
#         - url: http://127.0.0.1:8021/api/plugin/monitor-alert/webhook/alertmanager
#           http_config:
#             authorization:
#               credentials: dev-api-token
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
url="${PLUGHOOK_URL:-http://127.0.0.1:8021}"
token="${PLUGHOOK_API_TOKEN:-dev-api-token}"
payload="${1:-$here/payloads/alertmanager.json}"

curl --silent --show-error --fail-with-body --write-out '\n' \
  -X POST "$url/api/plugin/monitor-alert/webhook/alertmanager" \
  -H "Content-Type: application/json" \
  -H "Authorization: Bearer $token" \
  --data-binary "@$payload"
