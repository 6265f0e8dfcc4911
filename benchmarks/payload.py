"""The request every HTTP benchmark target receives: a signed ~2 KiB GitHub push."""

from __future__ import annotations

import hashlib
import hmac
import json

SECRET = "benchmark-webhook-secret"
PATH = "/api/plugin/bench/webhook/github"


def push_payload() -> bytes:
    """Return a GitHub push payload of about 2 KiB, compact JSON as GitHub sends it."""
    commit = {
        "id": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
        "message": (
            "Fix the retry window of the outbox worker\n\nThe backoff ceiling was off by one."
        ),
        "timestamp": "2026-12-04T10:15:00+08:00",
        "author": {"name": "Octo Cat", "email": "octocat@example.com", "username": "octocat"},
        "added": [],
        "removed": [],
        "modified": ["core/outbox.py", "tests/test_outbox.py"],
    }
    payload = {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": commit["id"],
        "repository": {
            "id": 1296269,
            "name": "plughook",
            "full_name": "octo-org/plughook",
            "html_url": "https://github.com/octo-org/plughook",
            "description": "Webhook layer for chat-bot plugins",
            "default_branch": "main",
        },
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "sender": {"login": "octocat", "id": 583231, "type": "User"},
        "compare": "https://github.com/octo-org/plughook/compare/000000000000...6dcb09b5b578",
        "commits": [commit, {**commit, "id": "1" * 40}, {**commit, "id": "2" * 40}],
        "head_commit": commit,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


BODY = push_payload()
SIGNATURE = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
HEADERS = {
    "Content-Type": "application/json",
    "X-GitHub-Event": "push",
    "X-Hub-Signature-256": SIGNATURE,
}
