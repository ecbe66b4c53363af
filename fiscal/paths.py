"""Where a journal lives by default: ``$STATE_DIRECTORY`` under systemd, else the XDG data dir."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """Return the default data directory of the box."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "tillbox"
