"""A serial barcode scanner simulator on a pty: ``sim.scan("3017620422003")`` sends the code + CR.

The driver opens ``path`` (a stable symlink to the pty's slave end). Fault injection:
``unplug()`` / ``replug()`` (same path, new pty) and ``send_raw()`` for garbage or odd endings.
"""

from __future__ import annotations

from types import TracebackType

from drivers.pty_link import PtyLink

__all__ = ["ScannerSimulator"]


class ScannerSimulator:
    """A serial scanner on a pty; use as a context manager."""

    def __init__(self, suffix: bytes = b"\r") -> None:
        self.suffix = suffix
        self.link = PtyLink("ttySCANNER")

    @property
    def path(self) -> str:
        """Where the driver connects."""
        return self.link.path

    def scan(self, code: str) -> None:
        """Send one scanned code followed by the suffix (CR by default)."""
        self.link.write(code.encode("latin-1") + self.suffix)

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (garbage, split codes, other line endings)."""
        self.link.write(data)

    def unplug(self) -> None:
        """Pull the cable: the driver's reads fail and its path is gone."""
        self.link.unplug()

    def replug(self) -> None:
        """Plug the scanner back in, at the same path."""
        self.link.plug()

    def close(self) -> None:
        """Remove the pty."""
        self.link.close()

    def __enter__(self) -> ScannerSimulator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
