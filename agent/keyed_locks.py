"""Locks by key: one holder per key at a time, different keys independent, unused keys forgotten.

``async with locks.hold(key):`` waits for the key's current holder. The lock of a key is kept
while someone holds or waits for it (a count, not ``Lock.locked()``: between a release and the
next waiter's wake-up the lock reads as free, and a newcomer must not get a lock of its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLocks:
    """An ``asyncio.Lock`` per key, created on first use and dropped when nobody needs it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        """How many keys are held or awaited now."""
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the block (after its current holder and earlier waiters)."""
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            users = self._locks[key][1] - 1
            if users:
                self._locks[key] = (lock, users)
            else:
                del self._locks[key]
