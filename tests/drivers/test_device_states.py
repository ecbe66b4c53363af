"""The shared device state cell: waiters wake on change; loss and recovery are logged once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from drivers.states import READY, StateCell, Status, unavailable

log = logging.getLogger("tests.device_states")


async def test_a_waiter_wakes_when_the_state_it_waits_for_arrives() -> None:
    """wait_for returns the new state as soon as set() makes the predicate true."""
    cell = StateCell("printer test", log)
    waiter = asyncio.create_task(cell.wait_for(lambda s: s.status is Status.READY, 5))
    await asyncio.sleep(0)
    cell.set(unavailable("unplugged"))
    await asyncio.sleep(0)
    assert not waiter.done()
    cell.set(READY)
    assert await waiter == READY


async def test_waiting_for_a_state_that_never_comes_times_out() -> None:
    """wait_for raises TimeoutError after its timeout."""
    with pytest.raises(TimeoutError):
        await StateCell("scale test", log).wait_for(lambda s: s.usable, 0.05)


def test_a_loss_and_a_recovery_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    """Repeating the same fault logs nothing more; a new fault and the recovery log once."""
    cell = StateCell("display test", log)
    cell.set(READY)
    with caplog.at_level(logging.INFO, logger=log.name):
        cell.set(unavailable("unplugged"))
        cell.set(unavailable("unplugged"))
        cell.set(unavailable("write_timeout"))
        cell.set(READY)
        cell.set(READY)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert "unplugged" in messages[0]
    assert "write_timeout" in messages[1]
    assert messages[2] == "display test back: ready"
