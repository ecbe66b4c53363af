"""Stopping tasks: loops that swallow a cancellation are cancelled again until they end."""

from __future__ import annotations

import asyncio

from agent.cancellation import cancel_all
from agent.replication.replicator import race


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


async def test_the_replicators_race_ends_although_the_loser_swallows_a_cancellation() -> None:
    swallowed = 0

    async def stubborn() -> None:  # a publish inside 3.11's wait_for, as aiomqtt's
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise

    async def quick() -> None:
        await asyncio.sleep(0)

    async with asyncio.timeout(5):
        await race(quick(), stubborn())
    assert swallowed == 2
