"""The ESC/POS printer model served on a real pty, so serial drivers are tested on the wire.

:class:`PtyPrinterSimulator` is an :class:`~drivers.printer.simulator.EscPosMachine` whose host
side is the slave end of ``os.openpty()`` (raw, 8N1), reached through a stable symlink
(``self.path``) so that the printer can be unplugged (:meth:`unplug`: the pty disappears, the
driver's open port gets I/O errors, the path is gone) and plugged back (:meth:`plug`: a new pty
behind the same path). One thread serves the master end: it feeds what the driver wrote to the
machine and writes the answers back. Use it as a context manager, or :func:`pty_printer`.
"""

from __future__ import annotations

import os
import select
import tempfile
import threading
import tty
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from drivers.printer.simulator import EscPosMachine

_POLL = 0.05
"""Seconds the serving thread waits for bytes before checking whether it must stop."""


class PtyPrinterSimulator(EscPosMachine):
    """A receipt printer on a pty; ``path`` is where the driver opens its serial port."""

    def __init__(self, name: str = "ttyPRINTER") -> None:
        super().__init__()
        self._directory = tempfile.mkdtemp(prefix="tillbox-printer-")
        self.path = os.path.join(self._directory, name)
        self._lock = threading.Lock()
        self._fds: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def plugged(self) -> bool:
        """Whether a pty is behind the path and served."""
        return self._fds is not None

    def plug(self) -> None:
        """Create a raw pty behind ``path`` and serve it from one thread."""
        if self._fds is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.symlink(os.ttyname(slave), self.path)
        self._fds = (master, slave)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(master,), daemon=True,
                                        name=f"printer sim {self.path}")
        self._thread.start()

    def unplug(self) -> None:
        """Stop serving and close the pty: the driver's port fails, the path disappears."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        fds, self._fds = self._fds, None
        with suppress(FileNotFoundError):
            os.unlink(self.path)
        for fd in fds or ():
            os.close(fd)

    def close(self) -> None:
        """Unplug and remove the symlink's directory (idempotent)."""
        self.unplug()
        with suppress(OSError):
            os.rmdir(self._directory)

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

    def _serve(self, master: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([master], [], [], _POLL)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO while the driver has the slave closed: wait for it
                self._stop.wait(_POLL)
                continue
            answer = self.feed(data)
            if answer:
                os.write(master, answer)


@contextmanager
def pty_printer(name: str = "ttyPRINTER") -> Iterator[PtyPrinterSimulator]:
    """Run a pty printer simulator for the length of the block."""
    with PtyPrinterSimulator(name) as simulator:
        yield simulator
