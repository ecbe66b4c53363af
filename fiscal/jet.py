"""The technical event journal's code table, loaded from ``jet_codes.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

INITIALISATION = 260
PERIOD_CLOSING = 50
INTERMEDIATE_ARCHIVE = 20
PERIOD_ARCHIVE = 30
INTEGRITY_FAILURE = 90
CLOCK_BACKWARDS = 1050
KEY_ROTATION = 1080


@dataclass(frozen=True)
class EventCode:
    """One row of the code table."""

    code: int
    label: str
    chained: bool
    """Only the journal itself writes this code (e.g. initialisation, key rotation)."""


@cache
def code_table() -> dict[int, EventCode]:
    """Return the JET code table."""
    text = resources.files("fiscal").joinpath("jet_codes.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)["codes"]
    return {int(code): EventCode(int(code), row["label"], bool(row.get("chained", False)))
            for code, row in data.items()}


def label(code: int) -> str:
    """Return the label of a code (``KeyError`` if unknown)."""
    return code_table()[code].label
