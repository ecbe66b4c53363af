"""Test doubles shipped with ``fiscal``: a clock that tests (and demos) drive.

``Journal.open(data_dir, settings, clock=FakeClock(...))`` makes every timestamp, business date
and closure deterministic.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


class FakeClock:
    """A clock read like ``datetime.now``: each reading returns the current instant, then steps.

    ``advance``/``jump`` move it (backwards too, to test the clock-moved-backwards event);
    ``set`` and ``set_local`` jump to an instant.
    """

    def __init__(self, start: dt.datetime, step: dt.timedelta = dt.timedelta(seconds=1),
                 timezone: str = "Europe/Paris") -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.current = start.astimezone(dt.UTC)
        self.step = step
        self.zone = ZoneInfo(timezone)

    def __call__(self) -> dt.datetime:
        now = self.current
        self.current += self.step
        return now

    def jump(self, delta: dt.timedelta) -> None:
        """Move the clock by ``delta`` (negative: backwards)."""
        self.current += delta

    def advance(self, **delta: float) -> None:
        """Move the clock by ``timedelta(**delta)``."""
        self.jump(dt.timedelta(**delta))

    def set(self, moment: dt.datetime) -> None:
        """Jump to an aware instant."""
        self.current = moment.astimezone(dt.UTC)

    def set_local(self, year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> None:
        """Jump to a wall-clock time in the clock's time zone."""
        self.set(dt.datetime(year, month, day, hour, minute, tzinfo=self.zone))
