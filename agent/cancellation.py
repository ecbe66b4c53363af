"""Stopping tasks when a library may swallow the cancellation.

On Python 3.11, ``asyncio.wait_for`` (which aiomqtt uses for its operations) returns the result
instead of raising when a cancellation arrives just as what it waits for completes: the
cancellation is lost, the task's loop runs on, and whoever cancelled it once and awaits it waits
forever. ``cancel_all`` cancels, and cancels again while a task still runs. (Checking
``Task.cancelling()`` inside the loop instead is not reliable on 3.11: a task group that ended
with an error can leave the count above zero in a task that must go on.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog

log = structlog.get_logger("tillbox.tasks")


async def cancel_all(tasks: Sequence[asyncio.Future[Any]], attempts: int = 20,
                     every: float = 0.25) -> None:
    """Cancel ``tasks``, again while any still runs (a few times, then give up and log)."""
    for _ in range(attempts):
        running = [task for task in tasks if not task.done()]
        if not running:
            return
        for task in running:
            task.cancel()
        await asyncio.wait(running, timeout=every)
    log.error("tasks_not_stopping", tasks=[_name(t) for t in tasks if not t.done()])


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)
