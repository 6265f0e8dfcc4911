"""Typed views of the GitHub webhook payload fields the notifier reads.

GitHub payloads are large and vary by event, action and age of the hook, and
fields the notifier reads may be null or absent (a deleted user, a commit
without an author, a release without a name). ``structure`` therefore never
fails: a missing or mistyped field becomes its default (None, False, empty),
and the formatter shows a placeholder for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn

__all__ = [
    "Comment",
    "Commit",
    "CommitAuthor",
    "Issue",
    "IssueCommentEvent",
    "IssuesEvent",
    "Label",
    "PullRequest",
    "PullRequestEvent",
    "PushEvent",
    "Release",
    "ReleaseEvent",
    "Repository",
    "StarEvent",
    "Team",
    "User",
    "WorkflowRunEvent",
    "structure",
]

T = TypeVar("T")


@attrs.frozen
class User:
    """A GitHub account as it appears in ``sender``, ``user`` and similar fields."""

    login: str | None = None


@attrs.frozen
class Repository:
    """The ``repository`` object of a payload."""

    full_name: str | None = None
    html_url: str | None = None
    stargazers_count: int | None = None


@attrs.frozen
class CommitAuthor:
    """Git author of a pushed commit; ``username`` is set for a GitHub account's email."""

    name: str | None = None
    username: str | None = None


@attrs.frozen
class Commit:
    """One entry of a push's ``commits`` list."""

    message: str | None = None
    author: CommitAuthor = CommitAuthor()


@attrs.frozen
class Pusher:
    """The ``pusher`` of a push: Git name and email, not a GitHub login."""

    name: str | None = None


@attrs.frozen
class PushEvent:
    """A ``push`` delivery."""

    ref: str | None = None
    created: bool = False
    deleted: bool = False
    forced: bool = False
    compare: str | None = None
    commits: tuple[Commit, ...] = ()
    pusher: Pusher = Pusher()
    sender: User = User()
    repository: Repository = Repository()


@attrs.frozen
class Label:
    """An issue or pull request label."""

    name: str | None = None


@attrs.frozen
class Issue:
    """An issue; ``pull_request`` is set when the issue is a pull request."""

    number: int | None = None
    title: str | None = None
    html_url: str | None = None
    pull_request: Mapping[str, Any] | None = None


@attrs.frozen
class IssuesEvent:
    """An ``issues`` delivery."""

    action: str | None = None
    issue: Issue = Issue()
    label: Label | None = None
    assignee: User | None = None
    sender: User = User()
    repository: Repository = Repository()


@attrs.frozen
class Comment:
    """An issue or pull request comment."""

    body: str | None = None
    html_url: str | None = None
    user: User = User()


@attrs.frozen
class IssueCommentEvent:
    """An ``issue_comment`` delivery (comments on issues and pull requests)."""

    action: str | None = None
    issue: Issue = Issue()
    comment: Comment = Comment()
    sender: User = User()
    repository: Repository = Repository()


@attrs.frozen
class Branch:
    """The ``head`` or ``base`` of a pull request."""

    ref: str | None = None


@attrs.frozen
class PullRequest:
    """A pull request."""

    number: int | None = None
    title: str | None = None
    html_url: str | None = None
    merged: bool = False
    draft: bool = False
    head: Branch = Branch()
    base: Branch = Branch()
    merged_by: User | None = None


@attrs.frozen
class Team:
    """A team requested to review a pull request."""

    name: str | None = None


@attrs.frozen
class PullRequestEvent:
    """A ``pull_request`` delivery."""

    action: str | None = None
    number: int | None = None
    pull_request: PullRequest = PullRequest()
    requested_reviewer: User | None = None
    requested_team: Team | None = None
    sender: User = User()
    repository: Repository = Repository()


@attrs.frozen
class Release:
    """A release; ``name`` is often empty, and then the tag names it."""

    tag_name: str | None = None
    name: str | None = None
    html_url: str | None = None
    prerelease: bool = False
    author: User = User()


@attrs.frozen
class ReleaseEvent:
    """A ``release`` delivery."""

    action: str | None = None
    release: Release = Release()
    sender: User = User()
    repository: Repository = Repository()


@attrs.frozen
class Workflow:
    """The workflow file of a run."""

    name: str | None = None


@attrs.frozen
class HeadCommit:
    """The commit a workflow ran on."""

    message: str | None = None


@attrs.frozen
class WorkflowRun:
    """One run of a GitHub Actions workflow; ``name`` may be empty."""

    name: str | None = None
    display_title: str | None = None
    conclusion: str | None = None
    head_branch: str | None = None
    html_url: str | None = None
    run_number: int | None = None
    actor: User | None = None
    triggering_actor: User | None = None
    head_commit: HeadCommit | None = None


@attrs.frozen
class WorkflowRunEvent:
    """A ``workflow_run`` delivery."""

    action: str | None = None
    workflow: Workflow = Workflow()
    workflow_run: WorkflowRun = WorkflowRun()
    sender: User = User()
    repository: Repository = Repository()


@attrs.frozen
class StarEvent:
    """A ``star`` delivery."""

    action: str | None = None
    sender: User = User()
    repository: Repository = Repository()


@attrs.frozen
class AnyEvent:
    """The fields every delivery may have, for events without a formatter of their own."""

    action: str | None = None
    sender: User = User()
    repository: Repository = Repository()


def _optional_str(value: Any, _: Any) -> str | None:
    return value if isinstance(value, str) else None


def _optional_int(value: Any, _: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _flag(value: Any, _: Any) -> bool:
    return value is True


def _optional_mapping(value: Any, _: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _is_tuple_of_classes(cl: Any) -> bool:
    args = get_args(cl)
    return get_origin(cl) is tuple and len(args) == 2 and args[1] is Ellipsis


def _make_lenient_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_structure_hook(str | None, _optional_str)
    converter.register_structure_hook(int | None, _optional_int)
    converter.register_structure_hook(bool, _flag)
    converter.register_structure_hook(Mapping[str, Any] | None, _optional_mapping)

    def class_hook(cl: type[T]) -> Callable[[Any, Any], T]:
        # Generated per class; a value that is not an object gives the defaults.
        structure_fields = make_dict_structure_fn(cl, converter)

        def structure_object(value: Any, _: Any) -> T:
            if not isinstance(value, Mapping):
                return cl()
            return structure_fields(value, cl)

        return structure_object

    def tuple_hook(cl: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
        item_type = get_args(cl)[0]

        def structure_items(value: Any, _: Any) -> tuple[Any, ...]:
            if not isinstance(value, list):
                return ()
            return tuple(converter.structure(item, item_type) for item in value)

        return structure_items

    converter.register_structure_hook_factory(attrs.has, class_hook)
    converter.register_structure_hook_factory(_is_tuple_of_classes, tuple_hook)
    return converter


_converter = _make_lenient_converter()


def structure(payload: Mapping[str, Any], event_class: type[T]) -> T:
    """Build ``event_class`` from a decoded payload; bad or missing fields get their defaults."""
    return _converter.structure(payload, event_class)
