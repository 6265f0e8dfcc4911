#!/usr/bin/env bash
# Read the status of a running `plughook serve`, or switch maintenance mode.
#
#   status.sh               GET the status (no token needed)
#   status.sh maintenance   switch maintenance mode on
#   status.sh running       switch it off again
#
#   PLUGHOOK_API_TOKEN  the status plugin's API_TOKEN (default dev-api-token), which
#                       examples/plughook.toml reads from this variable and
#                       plughook.example.toml from STATUS_API_TOKEN
#   PLUGHOOK_URL        server base URL (default http://127.0.0.1:8021)
set -euo pipefail

url="${PLUGHOOK_URL:-http://127.0.0.1:8021}/api/plugin/status/webhook/status"
token="${PLUGHOOK_API_TOKEN:-dev-api-token}"

case "${1:-}" in
  "")
    curl --silent --show-error --fail-with-body --write-out '\n' "$url"
    ;;
  maintenance | running)
    curl --silent --show-error --fail-with-body --write-out '\n' -X POST "$url" \
      -H "Content-Type: application/json" \
      -H "Authorization: Bearer $token" \
      --data-binary "{\"status\": \"$1\"}"
    ;;
  *)
    echo "usage: $0 [maintenance|running]" >&2
    exit 2
    ;;
esac
