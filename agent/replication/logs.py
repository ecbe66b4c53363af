"""The box's recent log lines, kept in memory for the ``send_logs`` remote command.

``RecentLogs`` is a ``logging`` handler on the root logger holding the last ``capacity``
lines, formatted like the box's own log output (the formatter of the handler installed by
``agent.observability.configure_logging``, when there is one).
"""

from __future__ import annotations

import logging
from collections import deque

CAPACITY = 1000


class RecentLogs(logging.Handler):
    """A ring buffer of formatted log lines."""

    def __init__(self, capacity: int = CAPACITY, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.lines: deque[str] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the formatted record (never raises)."""
        try:
            self.lines.append(self.format(record))
        except Exception:  # a logging handler must not raise
            self.handleError(record)

    def tail(self, count: int) -> list[str]:
        """The last ``count`` lines, oldest first."""
        if count <= 0:
            return []
        return list(self.lines)[-count:]

    def attach(self) -> None:
        """Listen on the root logger, formatting like its first handler."""
        root = logging.getLogger()
        if root.handlers and root.handlers[0].formatter is not None:
            self.setFormatter(root.handlers[0].formatter)
        root.addHandler(self)

    def detach(self) -> None:
        """Stop listening."""
        logging.getLogger().removeHandler(self)
