"""Background tasks owned by the app, with durable status records."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from anyio.abc import TaskGroup

from .records import TaskRecord, TaskState
from .runtime import current_app_var, current_plugin_var
from .store import Storage
from .writer import BatchWriter

if TYPE_CHECKING:
    from .app import WebhookApp

__all__ = ["PluginTasks", "TaskManager"]

logger = logging.getLogger("plughook.tasks")


class TaskManager:
    """Runs tasks in the app's task group and keeps their records.

    Records of live tasks are read from memory; records are written through the
    batch writer, so starting a task never waits for the disk.
    """

    def __init__(self, app: WebhookApp, storage: Storage, writer: BatchWriter, owner: str) -> None:
        self._app = app
        self._storage = storage
        self._writer = writer
        self._owner = owner
        self._task_group: TaskGroup | None = None
        self._live: dict[str, TaskRecord] = {}
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._idle = anyio.Event()
        self._idle.set()

    def attach(self, task_group: TaskGroup | None) -> None:
        """Run new tasks in ``task_group``; None stops accepting tasks."""
        self._task_group = task_group

    @property
    def running(self) -> int:
        """Number of tasks still running."""
        return len(self._live)

    def start(self, plugin: str, function: Callable[..., Awaitable[Any]], *args: Any) -> str:
        """Start ``function(*args)`` in the background and return the task id."""
        if self._task_group is None:
            msg = "tasks can only be started while the app is running"
            raise RuntimeError(msg)
        now = self._app.clock()
        name = getattr(function, "__qualname__", repr(function))
        record = TaskRecord(uuid.uuid4().hex, plugin, name, "running", now, now, owner=self._owner)
        self._live[record.id] = record
        self._idle = anyio.Event()
        self._writer.add_task(attrs.evolve(record))
        self._task_group.start_soon(self._run, record, function, args, name=f"task {record.id}")
        logger.info("task %s (%s) of plugin %s started", record.id, name, plugin)
        return record.id

    async def _run(
        self, record: TaskRecord, function: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> None:
        current_app_var.set(self._app)
        current_plugin_var.set(record.plugin)
        with anyio.CancelScope() as scope:
            self._scopes[record.id] = scope
            try:
                result = await function(*args)
            except Exception as exc:
                logger.exception("task %s of plugin %s failed", record.id, record.plugin)
                self._finish(record, "failed", error=f"{type(exc).__name__}: {exc}")
            else:
                self._finish(record, "completed", result=_dump_result(result))
                logger.info("task %s of plugin %s completed", record.id, record.plugin)
        if scope.cancelled_caught:
            self._finish(record, "interrupted", error="cancelled at shutdown")

    def _finish(
        self,
        record: TaskRecord,
        state: TaskState,
        *,
        result: str | None = None,
        error: str | None = None,
    ) -> None:
        record.state = state
        record.updated_at = self._app.clock()
        record.result = result
        record.error = error
        self._writer.add_task(attrs.evolve(record))
        self._live.pop(record.id, None)
        self._scopes.pop(record.id, None)
        if not self._live:
            self._idle.set()

    async def get(self, task_id: str) -> TaskRecord | None:
        """Return the task's status record, or None for an unknown id."""
        live = self._live.get(task_id)
        if live is not None:
            return attrs.evolve(live)
        return await self._storage.task_get(task_id)

    async def wait_idle(self) -> None:
        """Wait until no task is running."""
        while self._live:
            await self._idle.wait()

    async def shutdown(self, grace_period: float) -> None:
        """Let tasks finish for ``grace_period`` seconds, then cancel and mark them interrupted."""
        self._task_group = None
        with anyio.move_on_after(grace_period):
            await self.wait_idle()
        if not self._live:
            return
        logger.warning(
            "cancelling %d tasks still running after the %.1f s grace period",
            len(self._live),
            grace_period,
        )
        for scope in list(self._scopes.values()):
            scope.cancel()
        with anyio.move_on_after(1.0):
            await self.wait_idle()
        for record in list(self._live.values()):
            self._finish(record, "interrupted", error="still running at shutdown")


def _dump_result(result: Any) -> str:
    try:
        return json.dumps(result, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(repr(result), ensure_ascii=False)


class PluginTasks:
    """One plugin's view of the app's tasks."""

    def __init__(self, manager: TaskManager, plugin: str) -> None:
        self._manager = manager
        self._plugin = plugin

    def start(self, function: Callable[..., Awaitable[Any]], *args: Any) -> str:
        """Run ``await function(*args)`` in the background; return its task id."""
        return self._manager.start(self._plugin, function, *args)

    async def get(self, task_id: str) -> TaskRecord | None:
        """Return the status record of a task of this plugin, or None when unknown."""
        record = await self._manager.get(task_id)
        if record is None or record.plugin != self._plugin:
            return None
        return record


def task_to_dict(record: TaskRecord) -> dict[str, Any]:
    """Return a task record as JSON-ready data, with ``result`` decoded."""
    data = attrs.asdict(record)
    data.pop("owner", None)
    if record.result is not None:
        data["result"] = json.loads(record.result)
    return data
