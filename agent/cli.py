"""The ``tillbox`` command: the journal tools of ``fiscal`` plus the box's own commands."""

from __future__ import annotations

from fiscal.cli import app


def main() -> None:
    """Entry point of the ``tillbox`` console script."""
    app()
