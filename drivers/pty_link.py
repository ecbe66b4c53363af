"""A simulated serial cable: a raw pty whose driver end sits behind a stable symlink.

Simulators serve the master end; drivers open ``path`` with pyserial like a
``/dev/serial/by-id`` link. ``unplug()`` and ``plug()`` model pulling and putting back the cable
(the path disappears and comes back, as after a replug).
"""

from __future__ import annotations

import contextlib
import os
import select
import tempfile
import threading
import time
import tty


class PtyLink:
    """A pty pair whose slave end is reachable at a stable symlink; it can be unplugged."""

    def __init__(self, name: str = "ttySIM", *, plugged: bool = True) -> None:
        self._directory = tempfile.mkdtemp(prefix="tillbox-pty-")
        self.path = os.path.join(self._directory, name)
        self._lock = threading.Lock()
        self._master = self._slave = -1
        if plugged:
            self.plug()

    @property
    def plugged(self) -> bool:
        """Whether a pty is behind the path."""
        return self._master >= 0

    def plug(self) -> None:
        """Create a new raw pty behind the path."""
        with self._lock:
            if self._master >= 0:
                return
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)
            os.symlink(os.ttyname(self._slave), self.path)

    def unplug(self) -> None:
        """Remove the pty: the open slave end gets I/O errors, the path disappears."""
        with self._lock:
            if self._master < 0:
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            os.close(self._master)
            os.close(self._slave)
            self._master = self._slave = -1

    def read(self, timeout: float) -> bytes:
        """Bytes the driver wrote, waiting up to ``timeout``; empty if none or unplugged."""
        with self._lock:
            if self._master < 0:
                return b""
            ready, _, _ = select.select([self._master], [], [], timeout)
            if not ready:
                return b""
            try:
                return os.read(self._master, 65536)
            except OSError:  # EIO while the driver has its end closed
                pass
        time.sleep(timeout)  # wait as a timeout would, instead of spinning on EIO
        return b""

    def write(self, data: bytes) -> None:
        """Send bytes to the driver (dropped if unplugged, like a cable pulled)."""
        with self._lock:
            if self._master >= 0:
                os.write(self._master, data)

    def close(self) -> None:
        """Unplug and remove the directory of the path."""
        self.unplug()
        with contextlib.suppress(OSError):
            os.rmdir(self._directory)
