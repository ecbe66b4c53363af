"""Barcode scanners: check digits, weighed items, HID layouts and decoder, serial scanners.

``barcodes`` validates GTINs and decodes in-store weighed/priced codes, ``keymaps`` and ``hid``
turn key events of a keyboard-wedge scanner into scans (evdev only for the real device),
``serial_scanner`` reads USB-CDC/serial scanners, and ``simulator`` is a serial scanner on a pty.
"""

from collections.abc import AsyncIterator
from typing import Protocol

from drivers.states import DeviceState


class BarcodeScanner(Protocol):
    """A scanner delivering each scanned code as a string."""

    @property
    def state(self) -> DeviceState:
        """Whether the scanner is connected, and why not."""
        ...

    def scans(self) -> AsyncIterator[str]:
        """The scanned codes, as they arrive."""
        ...


__all__ = ["BarcodeScanner"]
