"""The customer display, fed without making a request wait for it: the latest screen wins.

A change of a draft asks for a screen (``show``) and returns at once; one background writer
sends the screens to the display in order. While it writes, a newer request replaces the one
waiting (the customer only needs to see the last state), so a busy till costs one write at a
time, never a queue. Writing needs the devices started; the devices wait for the writer
(``drain``) before they close, so no screen is sent to a closed display.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from drivers.errors import DeviceError

if TYPE_CHECKING:
    from drivers.display.driver import SerialDisplay

Screen = tuple[str, str]


class ScreenFeed:
    """Screens for the customer display, written one at a time in the background."""

    def __init__(self) -> None:
        self.display: SerialDisplay | None = None
        """The connected display (None while the devices are stopped)."""
        self._wanted: Screen | None = None
        self._writer: asyncio.Task[None] | None = None

    def show(self, screen: Screen) -> None:
        """Ask for ``screen``; it replaces a screen asked for and not written yet."""
        if self.display is None:
            return
        self._wanted = screen
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(),
                                                                  name="customer display")

    async def drain(self) -> None:
        """Stop feeding: write nothing new, wait for the screen being written."""
        self.display, self._wanted = None, None
        if self._writer is not None:
            await self._writer

    async def _write(self) -> None:
        while self._wanted is not None and self.display is not None:
            screen, self._wanted = self._wanted, None
            with contextlib.suppress(DeviceError):  # its trouble is its state, not the sale's
                await self.display.show(screen)
