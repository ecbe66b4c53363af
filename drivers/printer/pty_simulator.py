"""The ESC/POS printer model served on a real pty, so serial drivers are tested on the wire.

:class:`PtyPrinterSimulator` is an :class:`~drivers.printer.simulator.EscPosMachine` whose host
side is the slave end of ``os.openpty()`` (raw, 8N1), reached through a stable symlink
(``self.path``) so that the printer can be unplugged (:meth:`unplug`: the pty disappears, the
driver's open port gets I/O errors, the path is gone) and plugged back (:meth:`plug`: a new pty
behind the same path). One thread serves the master end: it feeds what the driver wrote to the
machine and writes the answers back. Use it as a context manager, or :func:`pty_printer`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from drivers.printer.simulator import EscPosMachine
from drivers.pty_link import PtyLink

_POLL = 0.05
"""Seconds the serving thread waits for bytes before checking whether it must stop."""


class PtyPrinterSimulator(EscPosMachine):
    """A receipt printer on a pty; ``path`` is where the driver opens its serial port."""

    def __init__(self, name: str = "ttyPRINTER") -> None:
        super().__init__()
        self.link = PtyLink(name, plugged=False)
        self.path = self.link.path
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def plugged(self) -> bool:
        """Whether a pty is behind the path and served."""
        return self.link.plugged

    def plug(self) -> None:
        """Create a raw pty behind ``path`` and serve it from one thread."""
        if self.link.plugged:
            return
        self.link.plug()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"printer sim {self.path}")
        self._thread.start()

    def unplug(self) -> None:
        """Stop serving and close the pty: the driver's port fails, the path disappears."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.link.unplug()

    def close(self) -> None:
        """Unplug and remove the symlink's directory (idempotent)."""
        self.unplug()
        self.link.close()

    def __enter__(self) -> PtyPrinterSimulator:
        """Plug the printer in."""
        self.plug()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Unplug it and clean up."""
        self.close()

    def feed(self, data: bytes) -> bytes:
        """Feed the machine under a lock (the serving thread and tests share it)."""
        with self._lock:
            return super().feed(data)

    def _serve(self) -> None:
        while not self._stop.is_set():
            data = self.link.read(_POLL)
            answer = self.feed(data) if data else b""
            if answer:
                self.link.write(answer)


@contextmanager
def pty_printer(name: str = "ttyPRINTER") -> Iterator[PtyPrinterSimulator]:
    """Run a pty printer simulator for the length of the block."""
    with PtyPrinterSimulator(name) as simulator:
        yield simulator
