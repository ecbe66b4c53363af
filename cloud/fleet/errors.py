"""The one error of fleet provisioning: its message says what is wrong and what to do."""

from __future__ import annotations


class FleetError(Exception):
    """A fleet operation cannot be done; nothing was changed on disk."""
