"""Cancellation that a library swallowed, raised again at the next turn of our own loop.

On Python 3.11, ``asyncio.wait_for`` (which aiomqtt uses for its operations) returns the result
instead of raising when a cancellation arrives just as what it waits for completes: the
cancellation is lost, the task reads as ``cancelling()`` but runs on, and whoever cancelled it
waits forever. A loop that calls such a library checks ``raise_if_cancelled()`` at each turn.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` if the current task was asked to stop (and did not)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
