"""A cancellation swallowed by a library is raised again at the loop's next turn."""

from __future__ import annotations

import asyncio
import contextlib

from agent.cancellation import raise_if_cancelled


async def test_a_loop_ends_although_a_library_swallowed_its_cancellation() -> None:
    turns = 0
    started = asyncio.Event()

    async def loop() -> None:
        nonlocal turns
        while True:
            raise_if_cancelled()
            turns += 1
            started.set()
            with contextlib.suppress(asyncio.CancelledError):  # as 3.11's wait_for may
                await asyncio.sleep(3600)

    task = asyncio.create_task(loop())
    await started.wait()
    task.cancel()
    async with asyncio.timeout(5):
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert task.cancelled()
    assert turns == 1


async def test_an_uncancelled_task_runs_on() -> None:
    raise_if_cancelled()  # no error
    assert not asyncio.current_task().cancelled()  # type: ignore[union-attr]
