#!/usr/bin/env bash
# Send a signed GitHub push delivery to a running `plughook serve`.
#
#   GITHUB_WEBHOOK_SECRET  the github-notifier WEBHOOK_SECRET (default dev-github-secret)
#   PLUGHOOK_URL           server base URL (default http://127.0.0.1:8021)
#   GITHUB_EVENT           the X-GitHub-Event header (default push)
#
# The first argument names another payload file, such as a pull_request
# body sent with GITHUB_EVENT=pull_request.
#
# The signature is computed as GitHub computes it: HMAC-SHA256 of the exact
# body bytes, hex, in X-Hub-Signature-256 as "sha256=<hex>". Running the
# script twice sends two deliveries; set GITHUB_DELIVERY to resend one id and
# see the duplicate get {"status": "duplicate"} and no second message.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
url="${PLUGHOOK_URL:-http://127.0.0.1:8021}"
secret="${GITHUB_WEBHOOK_SECRET:-dev-github-secret}"
payload="${1:-$here/payloads/github_push.json}"
event="${GITHUB_EVENT:-push}"
delivery="${GITHUB_DELIVERY:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}"

signature="sha256=$(openssl dgst -sha256 -hmac "$secret" -r <"$payload" | cut -d' ' -f1)"

curl --silent --show-error --fail-with-body --write-out '\n' \
  -X POST "$url/api/plugin/github-notifier/webhook/github" \
  -H "Content-Type: application/json" \
  -H "X-GitHub-Event: $event" \
  -H "X-GitHub-Delivery: $delivery" \
  -H "X-Hub-Signature-256: $signature" \
  --data-binary "@$payload"
