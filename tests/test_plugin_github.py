"""End-to-end tests of the GitHub notifier plugin through the in-process test client."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from core.testing import TestResponse, WebhookTestClient
from plugins.github_notifier import plugin
from plugins.github_notifier.formatting import format_event

FIXTURES = Path(__file__).parent / "fixtures" / "github"
URL = "/api/plugin/github-notifier/webhook/github"
SECRET = "It's a Secret to Everybody"
CHAT = "onebot_v11-group_123456"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    """Compute X-Hub-Signature-256 as GitHub does: HMAC-SHA256 of the raw body, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def make_config(**settings: Any) -> dict[str, dict[str, Any]]:
    values: dict[str, Any] = {"WEBHOOK_SECRET": SECRET, "NOTIFICATION_CHAT": CHAT}
    values.update(settings)
    return {"github-notifier": values}


async def deliver(
    client: WebhookTestClient,
    event: str,
    body: bytes,
    *,
    signature: str | None = "compute",
    delivery: str | None = None,
    content_type: str = "application/json",
) -> TestResponse:
    headers = {"X-GitHub-Event": event, "Content-Type": content_type}
    if signature == "compute":
        headers["X-Hub-Signature-256"] = sign(body)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    return await client.post(URL, content=body, headers=headers)


async def texts_after(
    event: str, body: bytes, config: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    async with WebhookTestClient([plugin], config or make_config()) as client:
        response = await deliver(client, event, body)
        assert response.status_code == 200, response.text
        await client.drain()
        return [message.text for message in client.messages]


EXPECTED_ZH = {
    "push/payload.json": (
        "🗑️ 标签已删除\n仓库：Codertocat/Hello-World\n标签：simple-tag\n推送者：Codertocat"
    ),
    "push/with-new-branch.payload.json": (
        "🌱 新分支\n"
        "仓库：Codertocat/Hello-World\n"
        "分支：master\n"
        "推送者：Codertocat\n"
        "提交：1 个\n"
        "- Initial commit（Codertocat）\n"
        "链接：https://github.com/Codertocat/Hello-World/commit/"
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    ),
    "issues/opened.payload.json": (
        "🐛 Issue #1 已创建\n"
        "仓库：Codertocat/Hello-World\n"
        "标题：Spelling error in the README file\n"
        "操作者：Codertocat\n"
        "链接：https://github.com/Codertocat/Hello-World/issues/1"
    ),
    "issues/labeled.payload.json": (
        "🐛 Issue #1 已添加标签\n"
        "仓库：Codertocat/Hello-World\n"
        "标题：Spelling error in the README file\n"
        "标签：bug\n"
        "操作者：Codertocat\n"
        "链接：https://github.com/Codertocat/Hello-World/issues/1"
    ),
    "issue_comment/created.payload.json": (
        "💬 Issue #1 有新评论\n"
        "仓库：Codertocat/Hello-World\n"
        "标题：Spelling error in the README file\n"
        "评论者：Codertocat\n"
        "内容：You are totally right! I'll get this fixed right away.\n"
        "链接：https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400"
    ),
    "pull_request/opened.payload.json": (
        "🔀 PR #2 已创建\n"
        "仓库：Codertocat/Hello-World\n"
        "标题：Update the README with new information.\n"
        "分支：changes → master\n"
        "操作者：Codertocat\n"
        "链接：https://github.com/Codertocat/Hello-World/pull/2"
    ),
    "pull_request/closed.payload.json": (
        "🔀 PR #2 已关闭（未合并）\n"
        "仓库：Codertocat/Hello-World\n"
        "标题：Update the README with new information.\n"
        "分支：changes → master\n"
        "操作者：Codertocat\n"
        "链接：https://github.com/Codertocat/Hello-World/pull/2"
    ),
    "release/published.payload.json": (
        "🚀 发布 0.0.1\n"
        "仓库：Codertocat/Hello-World\n"
        "发布者：Codertocat\n"
        "链接：https://github.com/Codertocat/Hello-World/releases/tag/0.0.1"
    ),
    "workflow_run/completed.payload.json": (
        "✅ 工作流 test #163：成功\n"
        "仓库：octo-org/octo-repo\n"
        "分支：master\n"
        "标题：ci(action): update actions/setup-node digest to 8c91899\n"
        "触发者：Codertocat\n"
        "链接：https://github.com/octo-org/octo-repo/actions/runs/289782451"
    ),
    "star/created.payload.json": (
        "⭐ 新的 Star\n"
        "仓库：Codertocat/Hello-World\n"
        "操作者：Codertocat\n"
        "Star 总数：1\n"
        "链接：https://github.com/Codertocat/Hello-World"
    ),
}

EXPECTED_EN = {
    "push/payload.json": (
        "🗑️ Tag deleted\nRepository: Codertocat/Hello-World\nTag: simple-tag\nPusher: Codertocat"
    ),
    "push/with-new-branch.payload.json": (
        "🌱 New branch\n"
        "Repository: Codertocat/Hello-World\n"
        "Branch: master\n"
        "Pusher: Codertocat\n"
        "Commits: 1\n"
        "- Initial commit (Codertocat)\n"
        "Link: https://github.com/Codertocat/Hello-World/commit/"
        "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    ),
    "issues/opened.payload.json": (
        "🐛 Issue #1 opened\n"
        "Repository: Codertocat/Hello-World\n"
        "Title: Spelling error in the README file\n"
        "By: Codertocat\n"
        "Link: https://github.com/Codertocat/Hello-World/issues/1"
    ),
    "issues/labeled.payload.json": (
        "🐛 Issue #1 labeled\n"
        "Repository: Codertocat/Hello-World\n"
        "Title: Spelling error in the README file\n"
        "Label: bug\n"
        "By: Codertocat\n"
        "Link: https://github.com/Codertocat/Hello-World/issues/1"
    ),
    "issue_comment/created.payload.json": (
        "💬 New comment on issue #1\n"
        "Repository: Codertocat/Hello-World\n"
        "Title: Spelling error in the README file\n"
        "By: Codertocat\n"
        "Comment: You are totally right! I'll get this fixed right away.\n"
        "Link: https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400"
    ),
    "pull_request/opened.payload.json": (
        "🔀 Pull request #2 opened\n"
        "Repository: Codertocat/Hello-World\n"
        "Title: Update the README with new information.\n"
        "Branches: changes → master\n"
        "By: Codertocat\n"
        "Link: https://github.com/Codertocat/Hello-World/pull/2"
    ),
    "pull_request/closed.payload.json": (
        "🔀 Pull request #2 closed without merging\n"
        "Repository: Codertocat/Hello-World\n"
        "Title: Update the README with new information.\n"
        "Branches: changes → master\n"
        "By: Codertocat\n"
        "Link: https://github.com/Codertocat/Hello-World/pull/2"
    ),
    "release/published.payload.json": (
        "🚀 Release 0.0.1 published\n"
        "Repository: Codertocat/Hello-World\n"
        "By: Codertocat\n"
        "Link: https://github.com/Codertocat/Hello-World/releases/tag/0.0.1"
    ),
    "workflow_run/completed.payload.json": (
        "✅ Workflow test #163: success\n"
        "Repository: octo-org/octo-repo\n"
        "Branch: master\n"
        "Title: ci(action): update actions/setup-node digest to 8c91899\n"
        "Triggered by: Codertocat\n"
        "Link: https://github.com/octo-org/octo-repo/actions/runs/289782451"
    ),
    "star/created.payload.json": (
        "⭐ New star\n"
        "Repository: Codertocat/Hello-World\n"
        "By: Codertocat\n"
        "Stars: 1\n"
        "Link: https://github.com/Codertocat/Hello-World"
    ),
}


def event_of(fixture: str) -> str:
    return fixture.split("/")[0]


@pytest.mark.anyio
@pytest.mark.parametrize("fixture", sorted(EXPECTED_ZH))
async def test_fixture_message_chinese(fixture: str) -> None:
    texts = await texts_after(event_of(fixture), load(fixture))
    assert texts == [EXPECTED_ZH[fixture]]


@pytest.mark.anyio
@pytest.mark.parametrize("fixture", sorted(EXPECTED_EN))
async def test_fixture_message_english(fixture: str) -> None:
    texts = await texts_after(event_of(fixture), load(fixture), make_config(LOCALE="en"))
    assert texts == [EXPECTED_EN[fixture]]


@pytest.mark.anyio
async def test_fixture_message_goes_to_configured_chat() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(client, "issues", load("issues/opened.payload.json"))
        await client.drain()
    assert response.json() == {"status": "success", "event": "issues", "notified": 1}
    assert [message.chat_key for message in client.messages] == [CHAT]


@pytest.mark.anyio
async def test_ping_returns_pong_without_message() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(client, "ping", load("ping/payload.json"))
        await client.drain()
    assert response.status_code == 200
    assert response.json() == {"message": "pong"}
    assert client.messages == []


@pytest.mark.anyio
async def test_unsigned_delivery_rejected() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(
            client, "issues", load("issues/opened.payload.json"), signature=None
        )
        await client.drain()
    assert response.status_code == 401
    assert response.json() == {
        "error": "missing signature: expected X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of "
        "the body>"
    }
    assert client.messages == []


@pytest.mark.anyio
async def test_wrong_signature_rejected() -> None:
    body = load("issues/opened.payload.json")
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(client, "issues", body, signature=sign(body, "other secret"))
        await client.drain()
    assert response.status_code == 401
    assert response.json() == {"error": "signature mismatch"}
    assert client.messages == []


@pytest.mark.anyio
async def test_signature_over_modified_body_rejected() -> None:
    body = load("issues/opened.payload.json")
    tampered = body.replace(b"Spelling error", b"Spelling fixed")
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(client, "issues", tampered, signature=sign(body))
        await client.drain()
    assert response.status_code == 401
    assert client.messages == []


@pytest.mark.anyio
async def test_empty_secret_fails_closed() -> None:
    body = load("issues/opened.payload.json")
    async with WebhookTestClient([plugin], make_config(WEBHOOK_SECRET="")) as client:
        response = await deliver(client, "issues", body, signature=sign(body, ""))
        await client.drain()
    assert response.status_code == 503
    assert response.json() == {
        "error": "webhook secret is not configured: set plugins.github-notifier.WEBHOOK_SECRET"
    }
    assert client.messages == []


@pytest.mark.anyio
async def test_duplicate_delivery_sends_one_message() -> None:
    body = load("issues/opened.payload.json")
    delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    async with WebhookTestClient([plugin], make_config()) as client:
        first = await deliver(client, "issues", body, delivery=delivery)
        await client.drain()
        second = await deliver(client, "issues", body, delivery=delivery)
        await client.drain()
    assert first.json()["status"] == "success"
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    assert len(client.messages) == 1


@pytest.mark.anyio
async def test_distinct_delivery_ids_each_send() -> None:
    body = load("issues/opened.payload.json")
    async with WebhookTestClient([plugin], make_config()) as client:
        await deliver(client, "issues", body, delivery="delivery-1")
        await deliver(client, "issues", body, delivery="delivery-2")
        await client.drain()
    assert len(client.messages) == 2


@pytest.mark.anyio
async def test_form_encoded_delivery() -> None:
    payload = load("issues/opened.payload.json").decode()
    body = urlencode({"payload": payload}).encode()
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(
            client, "issues", body, content_type="application/x-www-form-urlencoded"
        )
        await client.drain()
    assert response.status_code == 200, response.text
    assert [message.text for message in client.messages] == [
        EXPECTED_ZH["issues/opened.payload.json"]
    ]


@pytest.mark.anyio
async def test_form_without_payload_field_is_400() -> None:
    body = urlencode({"other": "{}"}).encode()
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(
            client, "issues", body, content_type="application/x-www-form-urlencoded"
        )
    assert response.status_code == 400
    assert "'payload'" in response.json()["error"]


@pytest.mark.anyio
async def test_unsupported_content_type_is_415() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(client, "issues", b"<xml/>", content_type="application/xml")
    assert response.status_code == 415


@pytest.mark.anyio
async def test_invalid_json_is_400() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(client, "issues", b"{not json")
        await client.drain()
    assert response.status_code == 400
    assert response.json()["error"].startswith("invalid JSON body")
    assert client.messages == []


@pytest.mark.anyio
async def test_non_object_payload_is_400() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(client, "issues", b"[1, 2]")
    assert response.status_code == 400
    assert response.json() == {"error": "the payload must be a JSON object, got list"}


@pytest.mark.anyio
async def test_missing_event_header_is_400() -> None:
    body = load("issues/opened.payload.json")
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await client.post(
            URL,
            content=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)},
        )
    assert response.status_code == 400
    assert "X-GitHub-Event" in response.json()["error"]


@pytest.mark.anyio
async def test_get_not_allowed() -> None:
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await client.get(URL)
    assert response.status_code == 405


@pytest.mark.anyio
async def test_events_filter_by_event_name() -> None:
    config = make_config(EVENTS="issues, release")
    async with WebhookTestClient([plugin], config) as client:
        pushed = await deliver(client, "push", load("push/with-new-branch.payload.json"))
        opened = await deliver(client, "issues", load("issues/opened.payload.json"))
        await client.drain()
    assert pushed.json() == {"status": "ignored", "event": "push", "reason": "event not in EVENTS"}
    assert opened.json()["status"] == "success"
    assert [message.text for message in client.messages] == [
        EXPECTED_ZH["issues/opened.payload.json"]
    ]


@pytest.mark.anyio
async def test_events_filter_by_event_and_action() -> None:
    config = make_config(EVENTS="issues.opened")
    async with WebhookTestClient([plugin], config) as client:
        labeled = await deliver(client, "issues", load("issues/labeled.payload.json"))
        opened = await deliver(client, "issues", load("issues/opened.payload.json"))
        await client.drain()
    assert labeled.json()["status"] == "ignored"
    assert opened.json()["status"] == "success"
    assert len(client.messages) == 1


@pytest.mark.anyio
async def test_ping_pong_despite_events_filter() -> None:
    async with WebhookTestClient([plugin], make_config(EVENTS="push")) as client:
        response = await deliver(client, "ping", load("ping/payload.json"))
    assert response.json() == {"message": "pong"}


@pytest.mark.anyio
async def test_branches_filter_drops_other_branch() -> None:
    config = make_config(BRANCHES="main, release/*")
    async with WebhookTestClient([plugin], config) as client:
        response = await deliver(client, "push", load("push/with-new-branch.payload.json"))
        await client.drain()
    assert response.json() == {
        "status": "ignored",
        "event": "push",
        "reason": "ref not matched by BRANCHES",
    }
    assert client.messages == []


@pytest.mark.anyio
async def test_branches_filter_glob_matches() -> None:
    texts = await texts_after(
        "push", load("push/with-new-branch.payload.json"), make_config(BRANCHES="main, mast*")
    )
    assert texts == [EXPECTED_ZH["push/with-new-branch.payload.json"]]


@pytest.mark.anyio
async def test_branches_filter_drops_tag_push() -> None:
    async with WebhookTestClient([plugin], make_config(BRANCHES="master")) as client:
        response = await deliver(client, "push", load("push/payload.json"))
        await client.drain()
    assert response.json()["status"] == "ignored"
    assert client.messages == []


@pytest.mark.anyio
async def test_branches_filter_full_ref_admits_tags() -> None:
    texts = await texts_after(
        "push", load("push/payload.json"), make_config(BRANCHES="master, refs/tags/*")
    )
    assert texts == [EXPECTED_ZH["push/payload.json"]]


@pytest.mark.anyio
async def test_branches_filter_ignores_other_events() -> None:
    texts = await texts_after(
        "issues", load("issues/opened.payload.json"), make_config(BRANCHES="main")
    )
    assert len(texts) == 1


@pytest.mark.anyio
async def test_several_notification_chats() -> None:
    config = make_config(NOTIFICATION_CHAT="onebot_v11-group_1, console-ops,onebot_v11-group_1")
    async with WebhookTestClient([plugin], config) as client:
        response = await deliver(client, "star", load("star/created.payload.json"))
        await client.drain()
    assert response.json()["notified"] == 2
    assert sorted(message.chat_key for message in client.messages) == [
        "console-ops",
        "onebot_v11-group_1",
    ]


@pytest.mark.anyio
async def test_invalid_chat_key_rejected_at_start() -> None:
    config = make_config(NOTIFICATION_CHAT="missingdash, console-ops")
    with pytest.raises(ConfigError) as caught:
        async with WebhookTestClient([plugin], config):
            pass
    [(key, problem)] = caught.value.problems
    assert key == "plugins.github-notifier.NOTIFICATION_CHAT"
    assert problem.startswith("invalid chat key 'missingdash'")


@pytest.mark.anyio
async def test_empty_notification_chat_sends_nothing() -> None:
    async with WebhookTestClient([plugin], make_config(NOTIFICATION_CHAT="")) as client:
        response = await deliver(client, "star", load("star/created.payload.json"))
        await client.drain()
    assert response.status_code == 200
    assert response.json()["notified"] == 0
    assert client.messages == []


@pytest.mark.anyio
async def test_long_message_truncated() -> None:
    texts = await texts_after(
        "issues", load("issues/opened.payload.json"), make_config(MAX_MESSAGE_LENGTH=30)
    )
    assert len(texts[0]) == 30
    assert texts[0] == EXPECTED_ZH["issues/opened.payload.json"][:29] + "…"


@pytest.mark.anyio
async def test_unknown_locale_stops_start_up() -> None:
    with pytest.raises(ConfigError) as caught:
        async with WebhookTestClient([plugin], make_config(LOCALE="fr")):
            pass  # pragma: no cover - start-up fails
    assert caught.value.problems == [
        ("plugins.github-notifier.LOCALE", "expected one of 'zh_CN', 'en', got 'fr'")
    ]


@pytest.mark.anyio
async def test_null_fields_degrade_to_placeholders() -> None:
    payload = {
        "ref": "refs/heads/main",
        "repository": None,
        "pusher": None,
        "sender": None,
        "commits": [{"message": None, "author": None}, None],
        "compare": None,
    }
    async with WebhookTestClient([plugin], make_config()) as client:
        response = await deliver(client, "push", json.dumps(payload).encode())
        await client.drain()
    assert response.status_code == 200
    assert [message.text for message in client.messages] == [
        "📦 推送\n仓库：未知\n分支：main\n推送者：未知\n提交：2 个\n- 未知（未知）\n- 未知（未知）"
    ]


@pytest.mark.anyio
async def test_null_issue_fields_degrade() -> None:
    payload = {
        "action": "opened",
        "issue": {"number": None, "title": None, "html_url": None},
        "sender": {"login": None},
        "repository": {"full_name": "o/r"},
    }
    texts = await texts_after("issues", json.dumps(payload).encode(), make_config(LOCALE="en"))
    assert texts == ["🐛 Issue #? opened\nRepository: o/r\nTitle: unknown\nBy: unknown"]


@pytest.mark.anyio
async def test_unknown_event_gets_generic_line() -> None:
    payload = {"forkee": {}, "repository": {"full_name": "Codertocat/Hello-World"}}
    texts = await texts_after("fork", json.dumps(payload).encode())
    assert texts == ["📣 GitHub 事件 fork：Codertocat/Hello-World"]


@pytest.mark.anyio
async def test_unknown_action_gets_generic_line() -> None:
    payload = json.loads(load("issues/opened.payload.json"))
    payload["action"] = "milestoned"
    texts = await texts_after("issues", json.dumps(payload).encode(), make_config(LOCALE="en"))
    assert texts == ["📣 GitHub event issues.milestoned: Codertocat/Hello-World"]


def test_push_lists_three_commits_and_more() -> None:
    payload = json.loads(load("push/with-new-branch.payload.json"))
    payload["created"] = False
    payload["compare"] = "https://github.com/Codertocat/Hello-World/compare/a...b"
    payload["commits"] = [
        {"message": f"Change {n}\n\nLonger body", "author": {"name": f"Dev {n}"}}
        for n in range(1, 6)
    ]
    assert format_event("push", payload, "zh_CN") == (
        "📦 推送\n"
        "仓库：Codertocat/Hello-World\n"
        "分支：master\n"
        "推送者：Codertocat\n"
        "提交：5 个\n"
        "- Change 1（Dev 1）\n"
        "- Change 2（Dev 2）\n"
        "- Change 3（Dev 3）\n"
        "…以及另外 2 个提交\n"
        "链接：https://github.com/Codertocat/Hello-World/compare/a...b"
    )


def test_push_more_commits_english() -> None:
    payload = {"ref": "refs/heads/dev", "commits": [{"message": "x"}] * 4}
    text = format_event("push", payload, "en")
    assert text is not None
    assert text.splitlines()[-1] == "…and 1 more"


def test_zero_commit_force_push() -> None:
    payload = {
        "ref": "refs/heads/main",
        "forced": True,
        "commits": [],
        "pusher": {"name": "alice"},
        "repository": {"full_name": "o/r"},
        "compare": "https://github.com/o/r/compare/1...2",
    }
    assert format_event("push", payload, "en") == (
        "📦 Force push\n"
        "Repository: o/r\n"
        "Branch: main\n"
        "Pusher: alice\n"
        "No new commits\n"
        "Link: https://github.com/o/r/compare/1...2"
    )


def test_deleted_branch_push() -> None:
    payload = {
        "ref": "refs/heads/feature/x",
        "deleted": True,
        "commits": [],
        "pusher": {"name": "alice"},
        "repository": {"full_name": "o/r"},
        "compare": "https://github.com/o/r/compare/1...0",
    }
    assert format_event("push", payload, "zh_CN") == (
        "🗑️ 分支已删除\n仓库：o/r\n分支：feature/x\n推送者：alice"
    )


def test_new_tag_push() -> None:
    payload = {
        "ref": "refs/tags/v1.2.0",
        "created": True,
        "commits": [],
        "pusher": {"name": "alice"},
        "repository": {"full_name": "o/r"},
        "compare": "https://github.com/o/r/compare/v1.2.0",
    }
    assert format_event("push", payload, "en") == (
        "🏷️ New tag\n"
        "Repository: o/r\n"
        "Tag: v1.2.0\n"
        "Pusher: alice\n"
        "Link: https://github.com/o/r/compare/v1.2.0"
    )


def test_long_commit_title_cut() -> None:
    payload = {
        "ref": "refs/heads/main",
        "commits": [{"message": "x" * 100, "author": {"username": "bob"}}],
    }
    text = format_event("push", payload, "en")
    assert text is not None
    assert "- " + "x" * 71 + "… (bob)" in text.splitlines()


def test_merged_pull_request() -> None:
    payload = json.loads(load("pull_request/closed.payload.json"))
    payload["pull_request"]["merged"] = True
    payload["pull_request"]["merged_by"] = {"login": "octocat"}
    text = format_event("pull_request", payload, "zh_CN")
    assert text is not None
    assert text.splitlines()[0] == "🔀 PR #2 已合并"
    assert "操作者：octocat" in text.splitlines()


def test_review_requested() -> None:
    payload = json.loads(load("pull_request/opened.payload.json"))
    payload["action"] = "review_requested"
    payload["requested_reviewer"] = {"login": "octocat"}
    text = format_event("pull_request", payload, "en")
    assert text is not None
    assert text.splitlines()[0] == "🔀 Pull request #2 review requested"
    assert "Reviewer: octocat" in text.splitlines()


def test_draft_pull_request_opened() -> None:
    payload = json.loads(load("pull_request/opened.payload.json"))
    payload["pull_request"]["draft"] = True
    text = format_event("pull_request", payload, "zh_CN")
    assert text is not None
    assert text.splitlines()[0] == "🔀 草稿 PR #2 已创建"


def test_ready_for_review() -> None:
    payload = json.loads(load("pull_request/opened.payload.json"))
    payload["action"] = "ready_for_review"
    text = format_event("pull_request", payload, "en")
    assert text is not None
    assert text.splitlines()[0] == "🔀 Pull request #2 ready for review"


def test_issue_assigned_names_assignee() -> None:
    payload = json.loads(load("issues/opened.payload.json"))
    payload["action"] = "assigned"
    payload["assignee"] = {"login": "octocat"}
    text = format_event("issues", payload, "zh_CN")
    assert text is not None
    assert text.splitlines()[0] == "🐛 Issue #1 已指派"
    assert "指派给：octocat" in text.splitlines()


def test_issue_closed() -> None:
    payload = json.loads(load("issues/opened.payload.json"))
    payload["action"] = "closed"
    text = format_event("issues", payload, "en")
    assert text is not None
    assert text.splitlines()[0] == "🐛 Issue #1 closed"


def test_comment_on_pull_request() -> None:
    payload = json.loads(load("issue_comment/created.payload.json"))
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    payload["comment"]["body"] = "Looks\n\ngood   to me"
    text = format_event("issue_comment", payload, "en")
    assert text is not None
    assert text.splitlines()[0] == "💬 New comment on pull request #1"
    assert "Comment: Looks good to me" in text.splitlines()


def test_named_prerelease() -> None:
    payload = json.loads(load("release/published.payload.json"))
    payload["release"]["name"] = "First preview"
    payload["release"]["prerelease"] = True
    text = format_event("release", payload, "zh_CN")
    assert text is not None
    assert text.splitlines()[:3] == [
        "🚀 预发布 First preview",
        "仓库：Codertocat/Hello-World",
        "标签：0.0.1",
    ]


def test_release_created_is_generic() -> None:
    payload = json.loads(load("release/published.payload.json"))
    payload["action"] = "created"
    assert format_event("release", payload, "en") == (
        "📣 GitHub event release.created: Codertocat/Hello-World"
    )


def test_failed_workflow_run() -> None:
    payload = json.loads(load("workflow_run/completed.payload.json"))
    payload["workflow_run"]["conclusion"] = "failure"
    text = format_event("workflow_run", payload, "zh_CN")
    assert text is not None
    assert text.splitlines()[0] == "❌ 工作流 test #163：失败"


def test_workflow_run_unknown_conclusion() -> None:
    payload = {"action": "completed", "workflow_run": {"conclusion": None, "name": "ci"}}
    text = format_event("workflow_run", payload, "en")
    assert text is not None
    assert text.splitlines()[0] == "❔ Workflow ci: unknown"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
FIELD_NAMES = st.sampled_from(
    [
        "action",
        "ref",
        "created",
        "deleted",
        "forced",
        "compare",
        "commits",
        "pusher",
        "sender",
        "repository",
        "issue",
        "comment",
        "label",
        "assignee",
        "pull_request",
        "requested_reviewer",
        "requested_team",
        "release",
        "workflow",
        "workflow_run",
        "number",
    ]
)
EVENTS = st.sampled_from(
    [
        "push",
        "issues",
        "issue_comment",
        "pull_request",
        "release",
        "workflow_run",
        "star",
        "fork",
        "ping",
    ]
)
ACTIONS = st.sampled_from(
    [
        "opened",
        "closed",
        "labeled",
        "assigned",
        "created",
        "published",
        "completed",
        "review_requested",
        "ready_for_review",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    event=EVENTS,
    payload=st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=8),
    action=ACTIONS,
    locale=st.sampled_from(["zh_CN", "en"]),
)
def test_format_event_never_raises(
    event: str, payload: dict[str, Any], action: str, locale: Any
) -> None:
    payload.setdefault("action", action)
    text = format_event(event, payload, locale)
    assert text is None or isinstance(text, str)
