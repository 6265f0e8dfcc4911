#!/usr/bin/env bash
# Send a Grafana alerting webhook notification to a running `plughook serve`.
#
#   PLUGHOOK_API_TOKEN  the monitor-alert API_TOKEN (default dev-api-token), which
#                       examples/plughook.toml reads from this variable and
#                       plughook.example.toml from MONITOR_API_TOKEN. In Grafana
#                       it is the contact point's "Authorization Header
#                       Credentials" with scheme Bearer
#   GRAFANA_SECRET      when set, also sign the body as a contact point with an
#                       HMAC secret does: hex HMAC-SHA256 in
#                       X-Grafana-Alerting-Signature (set GRAFANA_SECRET in the
#                       monitor-alert config to the same value)
#   PLUGHOOK_URL        server base URL (default http://127.0.0.1:8021)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
url="${PLUGHOOK_URL:-http://127.0.0.1:8021}"
token="${PLUGHOOK_API_TOKEN:-dev-api-token}"
payload="${1:-$here/payloads/grafana.json}"

headers=(-H "Content-Type: application/json" -H "Authorization: Bearer $token")
if [[ -n "${GRAFANA_SECRET:-}" ]]; then
  signature="$(openssl dgst -sha256 -hmac "$GRAFANA_SECRET" -r <"$payload" | cut -d' ' -f1)"
  headers+=(-H "X-Grafana-Alerting-Signature: $signature")
fi

curl --silent --show-error --fail-with-body --write-out '\n' \
  -X POST "$url/api/plugin/monitor-alert/webhook/grafana" \
  "${headers[@]}" \
  --data-binary "@$payload"
