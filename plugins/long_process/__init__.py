"""Long process: starts a background task and reports its status record.

Endpoints, both at ``/api/plugin/long-process/webhook/tasks`` and both
requiring ``Authorization: Bearer <API_TOKEN>``:

* ``POST`` with an optional JSON object, e.g. ``{"steps": 3, "label": "report"}``,
  returns 202 ``{"task_id", "status": "started"}``. The task runs ``steps``
  simulated steps of ``STEP_SECONDS`` each; the whole body is kept as its params.
* ``GET ?id=<task_id>`` returns the task's durable status record (``state`` is
  ``running``, ``completed``, ``failed`` or ``interrupted``) with its
  ``progress``; an unknown id is 404. The id goes in the query string because
  endpoints match exact paths, so ``/tasks/<id>`` cannot be routed.
"""

from __future__ import annotations

import json
from typing import Any, cast

import anyio
import attrs

from core import Plugin, WebhookRequest, signatures
from core.config import setting
from core.errors import BadRequest, NotFound
from core.tasks import task_to_dict

from .._chat import send_to_chats
from .._i18n import LOCALES, resolve_locale
from .._payload import make_strict_converter, structure_body
from .messages import CATALOGUE

__all__ = ["LongProcessConfig", "plugin", "run_steps", "tasks"]

ID_PARAMETER = "id"

plugin = Plugin(
    "long-process",
    version="1.0.0",
    description="Runs simulated long tasks in the background and reports their status",
    maintenance_aware=True,
)


@plugin.mount_config()
class LongProcessConfig:
    """Settings of the long-process plugin."""

    API_TOKEN: str = setting(
        "",
        title="API 令牌",
        description="Bearer token for starting and reading tasks; requests get 503 while it "
        "is empty",
        secret=True,
    )
    STEP_SECONDS: float = setting(
        1.0, title="每步耗时", description="Seconds each simulated step takes"
    )
    DEFAULT_STEPS: int = setting(
        5, title="默认步数", description="Steps of a task whose request names none"
    )
    MAX_STEPS: int = setting(100, title="最大步数", description="Most steps one task may take")
    NOTIFY_CHAT: str = setting(
        "",
        title="完成通知会话",
        description="Chat keys (comma-separated) notified when a task completes; "
        "empty sends nothing",
        chat_keys=True,
    )
    LOCALE: str = setting(
        "zh_CN", title="语言", description="Notice language: zh_CN or en", choices=LOCALES
    )


def _config() -> LongProcessConfig:
    return cast(LongProcessConfig, plugin.config)


@attrs.frozen
class TaskRequest:
    """The fields of a ``POST /tasks`` body the plugin reads; other fields are kept as params."""

    steps: int | None = None


@attrs.define
class Job:
    """One task's parameters; ``task_id`` is filled in right after the task is started."""

    steps: int
    params: dict[str, Any]
    task_id: str = ""


_converter = make_strict_converter()


def _progress_key(task_id: str) -> str:
    return f"progress:{task_id}"


async def run_steps(job: Job) -> dict[str, Any]:
    """Run the simulated steps, recording progress in the store after each one."""
    config = _config()
    step_seconds = max(0.0, config.STEP_SECONDS)
    for step in range(1, job.steps + 1):
        await anyio.sleep(step_seconds)
        progress = json.dumps({"step": step, "steps": job.steps})
        await plugin.store.set(store_key=_progress_key(job.task_id), value=progress)

    if config.NOTIFY_CHAT:
        locale = resolve_locale(config.LOCALE, plugin.name)
        # The request's "label" names the task for people; the id is the fallback.
        label = job.params.get("label")
        name = label if isinstance(label, str) and label.strip() else job.task_id
        notice = CATALOGUE.text(locale, "completed", name=name, steps=job.steps)
        await send_to_chats(config.NOTIFY_CHAT, notice, plugin.logger, "NOTIFY_CHAT")
    return {"steps": job.steps, "params": job.params}


async def _read_params(request: WebhookRequest) -> dict[str, Any]:
    if not await request.body():
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        msg = f"the task parameters must be a JSON object, got {type(body).__name__}"
        raise BadRequest(msg)
    return body


async def _start(request: WebhookRequest) -> tuple[dict[str, Any], int]:
    config = _config()
    params = await _read_params(request)
    steps = structure_body(_converter, params, TaskRequest, "task request").steps
    if steps is None:
        steps = config.DEFAULT_STEPS
    if not 1 <= steps <= config.MAX_STEPS:
        msg = f"invalid task request: steps must be between 1 and {config.MAX_STEPS}, got {steps}"
        raise BadRequest(msg)

    job = Job(steps, params)
    # The task starts only when this handler next waits, so the id is set in time.
    job.task_id = plugin.tasks.start(run_steps, job)
    plugin.logger.info(
        "delivery %s: started task %s with %d steps", request.delivery_id, job.task_id, steps
    )
    return {"task_id": job.task_id, "status": "started"}, 202


async def _read(request: WebhookRequest) -> dict[str, Any]:
    task_id = request.query.get(ID_PARAMETER, "").strip()
    if not task_id:
        msg = f"missing query parameter {ID_PARAMETER!r}: GET /tasks?{ID_PARAMETER}=<task_id>"
        raise BadRequest(msg)
    record = await plugin.tasks.get(task_id)
    if record is None:
        msg = f"no task with id {task_id!r}"
        raise NotFound(msg)

    data = task_to_dict(record)
    progress = await plugin.store.get(store_key=_progress_key(task_id))
    data["progress"] = json.loads(progress) if progress is not None else None
    return data


@plugin.mount_webhook(
    "/tasks", methods=["GET", "POST"], verify=signatures.bearer_token("API_TOKEN")
)
async def tasks(request: WebhookRequest) -> Any:
    """Start a task (POST, 202) or return a task's status record (GET ``?id=``)."""
    if request.method == "POST":
        return await _start(request)
    return await _read(request)
