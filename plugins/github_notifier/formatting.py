"""Chat texts for GitHub events: pure functions from (event, payload, locale) to text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._i18n import Locale
from .._text import excerpt, first_line, truncate_message
from .messages import CATALOGUE
from .payloads import (
    AnyEvent,
    IssueCommentEvent,
    IssuesEvent,
    PullRequestEvent,
    PushEvent,
    ReleaseEvent,
    Repository,
    StarEvent,
    WorkflowRunEvent,
    structure,
)

__all__ = ["COMMITS_SHOWN", "format_event", "split_ref"]

# A push lists this many commit titles, then "and N more".
COMMITS_SHOWN = 3
# Git's conventional maximum width of a commit subject line.
COMMIT_TITLE_LIMIT = 72
# A comment is quoted up to this many characters, on one line.
COMMENT_EXCERPT_LIMIT = 200
# Shown for a missing issue, pull request or run number.
MISSING_NUMBER = "?"

_BRANCH_PREFIX = "refs/heads/"
_TAG_PREFIX = "refs/tags/"

_ISSUE_ACTIONS = frozenset(
    {
        "opened",
        "closed",
        "reopened",
        "labeled",
        "unlabeled",
        "assigned",
        "unassigned",
        "edited",
        "deleted",
    }
)
_PULL_REQUEST_ACTIONS = frozenset(
    {
        "opened",
        "closed",
        "reopened",
        "ready_for_review",
        "review_requested",
        "converted_to_draft",
    }
)
_CONCLUSION_ICONS = {
    "success": "✅",
    "failure": "❌",
    "startup_failure": "❌",
    "timed_out": "⏱️",
    "cancelled": "⏹️",
    "action_required": "⚠️",
    "skipped": "⏭️",
    "neutral": "⚪",
    "stale": "⚪",
}
_UNKNOWN_CONCLUSION_ICON = "❔"

Formatter = Callable[[Mapping[str, Any], Locale], str]


def format_event(event: str, payload: Mapping[str, Any], locale: Locale) -> str | None:
    """Return the chat text for one GitHub delivery, or None when it gets no message (``ping``).

    Events and actions without a dedicated text get a one-line summary with
    the event name and repository. Missing or null fields show a placeholder;
    this function does not raise for any JSON object.
    """
    if event == "ping":
        return None
    formatter = _FORMATTERS.get(event)
    if formatter is None:
        return _generic(event, structure(payload, AnyEvent), locale)
    return formatter(payload, locale)


def split_ref(ref: str | None) -> tuple[str, str | None]:
    """Split a Git ref into its kind (``branch``, ``tag`` or ``ref``) and short name."""
    if ref is None:
        return "ref", None
    if ref.startswith(_BRANCH_PREFIX):
        return "branch", ref[len(_BRANCH_PREFIX) :]
    if ref.startswith(_TAG_PREFIX):
        return "tag", ref[len(_TAG_PREFIX) :]
    return "ref", ref


class _Text:
    """Message under construction: its lines, in one locale."""

    def __init__(self, locale: Locale) -> None:
        self.locale = locale
        self.lines: list[str] = []

    def __call__(self, key: str, /, **fields: object) -> str:
        return CATALOGUE.text(self.locale, key, **fields)

    def show(self, value: str | None) -> str:
        """Return ``value``, or the locale's placeholder when it is missing or blank."""
        if value is None or not value.strip():
            return self("unknown")
        return value

    def add(self, key: str, /, **fields: object) -> None:
        self.lines.append(self(key, **fields))

    def add_repository(self, repository: Repository) -> None:
        self.add("repo_line", repo=self.show(repository.full_name))

    def add_link(self, url: str | None) -> None:
        if url:
            self.add("link_line", url=url)

    def result(self) -> str:
        return "\n".join(self.lines)


def _number(value: int | None) -> str:
    return MISSING_NUMBER if value is None else str(value)


def _generic(event: str, data: AnyEvent, locale: Locale) -> str:
    text = _Text(locale)
    name = f"{event}.{data.action}" if data.action else event
    return text("generic", event=name, repo=text.show(data.repository.full_name))


def _push_title(push: PushEvent, kind: str) -> str:
    if kind == "tag":
        if push.deleted:
            return "tag_deleted_title"
        return "tag_created_title" if push.created else "tag_updated_title"
    if push.deleted:
        return "branch_deleted_title"
    if push.created:
        return "branch_created_title"
    return "push_forced_title" if push.forced else "push_title"


def _format_push(payload: Mapping[str, Any], locale: Locale) -> str:
    push = structure(payload, PushEvent)
    kind, name = split_ref(push.ref)
    text = _Text(locale)
    text.add(_push_title(push, kind))
    text.add_repository(push.repository)
    if kind == "branch":
        text.add("branch_line", branch=text.show(name))
    elif kind == "tag":
        text.add("tag_line", tag=text.show(name))
    else:
        text.add("ref_line", ref=text.show(name))
    text.add("pusher_line", user=text.show(push.pusher.name or push.sender.login))
    if push.deleted:
        return text.result()

    commits = push.commits
    if commits:
        text.add("commit_count_line", count=len(commits))
        for commit in commits[:COMMITS_SHOWN]:
            title = truncate_message(first_line(commit.message or ""), COMMIT_TITLE_LIMIT)
            author = commit.author.name or commit.author.username
            text.add("commit_item", title=text.show(title), author=text.show(author))
        if len(commits) > COMMITS_SHOWN:
            text.add("more_commits", count=len(commits) - COMMITS_SHOWN)
    elif kind != "tag":
        text.add("no_commits_line")
    text.add_link(push.compare)
    return text.result()


def _format_issues(payload: Mapping[str, Any], locale: Locale) -> str:
    data = structure(payload, IssuesEvent)
    action = data.action
    if action not in _ISSUE_ACTIONS:
        return _generic("issues", structure(payload, AnyEvent), locale)

    text = _Text(locale)
    issue = data.issue
    text.add("issue_title", number=_number(issue.number), action=text(f"action_{action}"))
    text.add_repository(data.repository)
    text.add("title_line", title=text.show(issue.title))
    if action in ("labeled", "unlabeled") and data.label is not None:
        text.add("label_line", label=text.show(data.label.name))
    if action in ("assigned", "unassigned") and data.assignee is not None:
        text.add("assignee_line", user=text.show(data.assignee.login))
    text.add("actor_line", user=text.show(data.sender.login))
    text.add_link(issue.html_url)
    return text.result()


def _format_issue_comment(payload: Mapping[str, Any], locale: Locale) -> str:
    data = structure(payload, IssueCommentEvent)
    if data.action != "created":
        return _generic("issue_comment", structure(payload, AnyEvent), locale)

    text = _Text(locale)
    issue, comment = data.issue, data.comment
    title_key = "issue_comment_title" if issue.pull_request is None else "pr_comment_title"
    text.add(title_key, number=_number(issue.number))
    text.add_repository(data.repository)
    text.add("title_line", title=text.show(issue.title))
    text.add("commenter_line", user=text.show(comment.user.login or data.sender.login))
    body = excerpt(comment.body or "", COMMENT_EXCERPT_LIMIT)
    if body:
        text.add("comment_line", text=body)
    text.add_link(comment.html_url or issue.html_url)
    return text.result()


def _pull_request_action(data: PullRequestEvent) -> str:
    if data.action == "closed":
        return "action_merged" if data.pull_request.merged else "action_closed_unmerged"
    return f"action_{data.action}"


def _format_pull_request(payload: Mapping[str, Any], locale: Locale) -> str:
    data = structure(payload, PullRequestEvent)
    if data.action not in _PULL_REQUEST_ACTIONS:
        return _generic("pull_request", structure(payload, AnyEvent), locale)

    text = _Text(locale)
    pull = data.pull_request
    title_key = "draft_pr_title" if data.action == "opened" and pull.draft else "pr_title"
    number = _number(pull.number if pull.number is not None else data.number)
    text.add(title_key, number=number, action=text(_pull_request_action(data)))
    text.add_repository(data.repository)
    text.add("title_line", title=text.show(pull.title))
    text.add("branches_line", head=text.show(pull.head.ref), base=text.show(pull.base.ref))
    if data.action == "review_requested":
        reviewer = data.requested_reviewer.login if data.requested_reviewer else None
        team = data.requested_team.name if data.requested_team else None
        text.add("reviewer_line", user=text.show(reviewer or team))
    merged_by = pull.merged_by.login if pull.merged and pull.merged_by else None
    text.add("actor_line", user=text.show(merged_by or data.sender.login))
    text.add_link(pull.html_url)
    return text.result()


def _format_release(payload: Mapping[str, Any], locale: Locale) -> str:
    data = structure(payload, ReleaseEvent)
    if data.action != "published":
        return _generic("release", structure(payload, AnyEvent), locale)

    text = _Text(locale)
    release = data.release
    tag = (release.tag_name or "").strip()
    name = (release.name or "").strip() or tag
    text.add("prerelease_title" if release.prerelease else "release_title", name=text.show(name))
    text.add_repository(data.repository)
    if tag and tag != name:
        text.add("tag_line", tag=tag)
    text.add("publisher_line", user=text.show(release.author.login or data.sender.login))
    text.add_link(release.html_url)
    return text.result()


def _format_workflow_run(payload: Mapping[str, Any], locale: Locale) -> str:
    data = structure(payload, WorkflowRunEvent)
    if data.action != "completed":
        return _generic("workflow_run", structure(payload, AnyEvent), locale)

    text = _Text(locale)
    run = data.workflow_run
    conclusion = run.conclusion or ""
    if conclusion in _CONCLUSION_ICONS:
        icon, conclusion_text = _CONCLUSION_ICONS[conclusion], text(f"conclusion_{conclusion}")
    else:
        icon, conclusion_text = _UNKNOWN_CONCLUSION_ICON, text.show(run.conclusion)
    run_number = "" if run.run_number is None else f" #{run.run_number}"
    name = text.show(run.name or data.workflow.name)
    text.add("workflow_title", icon=icon, name=name, run=run_number, conclusion=conclusion_text)
    text.add_repository(data.repository)
    if run.head_branch:
        text.add("branch_line", branch=run.head_branch)
    commit_message = run.head_commit.message if run.head_commit else None
    title = run.display_title or first_line(commit_message or "")
    if title:
        text.add("title_line", title=truncate_message(title, COMMIT_TITLE_LIMIT))
    actor = run.triggering_actor or run.actor or data.sender
    text.add("triggered_by_line", user=text.show(actor.login))
    text.add_link(run.html_url)
    return text.result()


def _format_star(payload: Mapping[str, Any], locale: Locale) -> str:
    data = structure(payload, StarEvent)
    if data.action != "created":
        return _generic("star", structure(payload, AnyEvent), locale)

    text = _Text(locale)
    text.add("star_title")
    text.add_repository(data.repository)
    text.add("actor_line", user=text.show(data.sender.login))
    if data.repository.stargazers_count is not None:
        text.add("stars_line", count=data.repository.stargazers_count)
    text.add_link(data.repository.html_url)
    return text.result()


_FORMATTERS: dict[str, Formatter] = {
    "push": _format_push,
    "issues": _format_issues,
    "issue_comment": _format_issue_comment,
    "pull_request": _format_pull_request,
    "release": _format_release,
    "workflow_run": _format_workflow_run,
    "star": _format_star,
}
