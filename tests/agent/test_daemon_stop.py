"""The daemon's stop: loops that swallow a cancellation are cancelled again until they end."""

from __future__ import annotations

import asyncio

from agent.daemon import cancel_all


async def test_a_loop_that_swallows_one_cancellation_still_stops() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 2:
                    raise

    async def polite() -> None:
        await asyncio.sleep(3600)

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(polite())]
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_all(tasks, every=0.01), 2)
    assert all(task.done() for task in tasks)
    assert swallowed == 3
