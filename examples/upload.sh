#!/usr/bin/env bash
# Upload a file for a chat to a running `plughook serve`.
#
#   upload.sh [FILE]    default: payloads/sample-report.txt
#
#   PLUGHOOK_API_TOKEN  the file-upload API_TOKEN (default dev-api-token), which
#                       examples/plughook.toml reads from this variable and
#                       plughook.example.toml from UPLOAD_API_TOKEN
#   PLUGHOOK_CHAT       chat key the file belongs to (default console-ops)
#   PLUGHOOK_URL        server base URL (default http://127.0.0.1:8021)
#
# The response names the file as saved (a taken name gets " (1)" and so on),
# its size and its SHA-256; compare with `sha256sum FILE`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
url="${PLUGHOOK_URL:-http://127.0.0.1:8021}"
token="${PLUGHOOK_API_TOKEN:-dev-api-token}"
chat="${PLUGHOOK_CHAT:-console-ops}"
file="${1:-$here/payloads/sample-report.txt}"

curl --silent --show-error --fail-with-body --write-out '\n' \
  -X POST "$url/api/plugin/file-upload/webhook/upload" \
  -H "Authorization: Bearer $token" \
  -F "file=@$file" \
  -F "chat_key=$chat"
