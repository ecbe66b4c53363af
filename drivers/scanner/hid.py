"""HID keyboard-wedge scanners: the key-event decoder (pure) and the evdev reader (thin).

``HidDecoder`` turns key events ``(code, value)`` — value 1 press, 0 release, 2 auto-repeat —
into scanned strings, one per terminator key (Enter by default, Tab if the scanner is set so).
It tracks Shift, AltGr and Caps Lock, ignores repeats and keys without a character, and is
tested from recorded event sequences: no device is needed.

``EvdevScanner`` reads ``/dev/input/eventN`` with python-evdev, grabs the device exclusively (so
scans do not reach the console or a focused window) and feeds the decoder. evdev is imported
lazily: this module imports on machines without it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from drivers import states
from drivers.errors import DeviceUnavailable
from drivers.scanner import keymaps
from drivers.scanner.keymaps import Layout

__all__ = ["ENTER", "TAB", "EvdevScanner", "HidDecoder", "KeyEvent", "decode_events"]

log = logging.getLogger(__name__)

KeyEvent = tuple[int, int]
PRESS, RELEASE, REPEAT = 1, 0, 2
ENTER = frozenset({keymaps.KEY_ENTER, keymaps.KEY_KPENTER})
TAB = frozenset({keymaps.KEY_TAB})
EV_KEY = 1


class HidDecoder:
    """Key events in, scanned strings out, for a scanner set to ``layout``."""

    def __init__(self, layout: Layout, terminators: Iterable[int] = ENTER) -> None:
        self.layout = layout
        self.terminators = frozenset(terminators)
        self._held: set[int] = set()
        self._caps = False
        self._chars: list[str] = []

    def feed(self, code: int, value: int) -> str | None:
        """Take one key event; return the scanned string when it completes a scan."""
        if value == RELEASE:
            self._held.discard(code)
            return None
        if value != PRESS:
            return None  # auto-repeat: a scanner never means it
        self._held.add(code)
        if code in self.terminators:
            return self._finish()
        if code == keymaps.KEY_CAPSLOCK:
            self._caps = not self._caps
        else:
            self._type(code)
        return None

    def feed_all(self, events: Iterable[KeyEvent]) -> list[str]:
        """Take many key events; return the scans they complete, in order."""
        scans = (self.feed(code, value) for code, value in events)
        return [scan for scan in scans if scan is not None]

    def _type(self, code: int) -> None:
        """Append the character of a pressed key under the held modifiers."""
        if self._held & keymaps.CTRL_KEYS:
            return
        char = self.layout.character(code, shift=bool(self._held & keymaps.SHIFT_KEYS),
                                     altgr=bool(self._held & keymaps.ALTGR_KEYS), caps=self._caps)
        if char is not None:
            self._chars.append(char)

    def _finish(self) -> str | None:
        """End the current scan; an empty one (a lone Enter) is no scan."""
        scan, self._chars = "".join(self._chars), []
        return scan or None


def decode_events(events: Iterable[KeyEvent], layout: Layout,
                  terminators: Iterable[int] = ENTER) -> list[str]:
    """Decode a whole recorded key-event sequence into its scans."""
    return HidDecoder(layout, terminators).feed_all(events)


class EvdevScanner:
    """A HID scanner on ``/dev/input/eventN``, grabbed exclusively, decoded with its layout."""

    def __init__(self, path: str, layout: Layout, terminators: Iterable[int] = ENTER) -> None:
        self.path = path
        self.decoder = HidDecoder(layout, terminators)
        self.state = states.CONNECTING
        self._device: Any = None

    def open(self) -> None:
        """Open and grab the input device; DeviceUnavailable if it is missing or not allowed."""
        try:
            import evdev  # lazily: only machines with input devices need it

            device = evdev.InputDevice(self.path)
            device.grab()
        except (OSError, ImportError) as exc:
            self.state = states.unavailable("unplugged", str(exc))
            raise DeviceUnavailable(f"scanner {self.path}: {exc}", reason="unplugged") from exc
        self._device = device
        self.state = states.READY

    async def scans(self) -> AsyncIterator[str]:
        """Yield scans as they arrive; end (state unavailable) when the device goes away."""
        if self._device is None:
            self.open()
        try:
            async for event in self._device.async_read_loop():
                scan = self.decoder.feed(event.code, event.value) if event.type == EV_KEY else None
                if scan is not None:
                    yield scan
        except OSError as exc:
            log.warning("scanner %s lost: %s", self.path, exc)
            self.state = states.unavailable("unplugged", str(exc))
        finally:
            self.close()

    def close(self) -> None:
        """Release the grab and close the device."""
        device, self._device = self._device, None
        if device is not None:
            with contextlib.suppress(OSError):  # already gone
                device.ungrab()
            device.close()
