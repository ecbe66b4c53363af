"""Stopping tasks: loops that swallow a cancellation are cancelled again until they end."""

from __future__ import annotations

import asyncio

from agent.cancellation import cancel_all
from agent.replication.replicator import race


class Stubborn:
    """A loop that swallows its first ``swallow`` cancellations (as 3.11's wait_for may)."""

    def __init__(self, swallow: int) -> None:
        self.swallow, self.swallowed = swallow, 0

    async def run(self) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.swallowed += 1
                if self.swallowed > self.swallow:
                    raise


async def test_a_loop_that_swallows_cancellations_still_stops() -> None:
    stubborn = Stubborn(swallow=2)

    async def polite() -> None:
        await asyncio.sleep(3600)

    tasks = [asyncio.create_task(stubborn.run()), asyncio.create_task(polite())]
    await asyncio.sleep(0)
    async with asyncio.timeout(2):
        await cancel_all(tasks, every=0.01)
    assert all(task.done() for task in tasks)
    assert stubborn.swallowed == 3


async def test_the_replicators_race_ends_although_the_loser_swallows_a_cancellation() -> None:
    stubborn = Stubborn(swallow=1)

    async def quick() -> None:
        await asyncio.sleep(0)

    async with asyncio.timeout(5):
        await race(quick(), stubborn.run())
    assert stubborn.swallowed == 2
