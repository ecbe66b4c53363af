"""Locks by key: one holder per key, keys independent, unused keys forgotten."""

from __future__ import annotations

import asyncio

from agent.keyed_locks import KeyedLocks


async def test_one_key_is_held_by_one_task_at_a_time() -> None:
    """Three tasks on one key run their blocks one after the other, in arrival order."""
    locks, trace = KeyedLocks(), list[str]()

    async def step(name: str) -> None:
        async with locks.hold("draft"):
            trace.append(f"{name} in")
            await asyncio.sleep(0.01)
            trace.append(f"{name} out")

    await asyncio.gather(step("a"), step("b"), step("c"))
    assert trace == ["a in", "a out", "b in", "b out", "c in", "c out"]


async def test_different_keys_do_not_wait_for_each_other() -> None:
    """A held key does not hold up another key."""
    locks = KeyedLocks()
    inside = asyncio.Event()

    async def hold_a() -> None:
        async with locks.hold("a"):
            await inside.wait()

    holder = asyncio.create_task(hold_a())
    await asyncio.sleep(0)
    async with asyncio.timeout(1), locks.hold("b"):
        inside.set()
    await holder


async def test_a_newcomer_after_a_release_still_waits_for_the_woken_waiter() -> None:
    """Between a release and the waiter's wake-up, a third task gets no lock of its own."""
    locks, holders = KeyedLocks(), list[str]()
    current = 0

    async def step(name: str) -> None:
        nonlocal current
        async with locks.hold("k"):
            current += 1
            holders.append(f"{name}:{current}")
            await asyncio.sleep(0)
            current -= 1

    first = asyncio.create_task(step("a"))
    second = asyncio.create_task(step("b"))
    await asyncio.sleep(0)
    await asyncio.gather(first, second, step("c"))
    assert sorted(holders) == ["a:1", "b:1", "c:1"]


async def test_unused_keys_are_forgotten() -> None:
    """Once nobody holds or waits for a key, its lock is dropped."""
    locks = KeyedLocks()
    for key in ("a", "b", "a"):
        async with locks.hold(key):
            assert len(locks) == 1
    assert len(locks) == 0
