"""A device-neutral receipt: a paper width and a tuple of blocks, and how blocks fit columns.

The layout builds a ``Document``; renderers turn it into ESC/POS bytes, plain text or a PNG.
Blocks are frozen dataclasses: text lines, two-column rows, rules, blank lines, a QR code, a
barcode, a logo and a cut. ``fit_text`` and ``fit_row`` are the one place where a block is
wrapped and aligned to a number of columns, so every renderer lays lines out identically.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from enum import Enum
from typing import Literal


class Paper(Enum):
    """Paper rolls: columns of Font A (12×24 dots) and printable width in dots at 203 dpi."""

    MM58 = (32, 384)
    MM80 = (48, 576)

    @property
    def columns(self) -> int:
        """Characters per line in Font A."""
        return self.value[0]

    @property
    def dots(self) -> int:
        """Printable width in dots."""
        return self.value[1]


Align = Literal["left", "center", "right"]


@dataclass(frozen=True)
class Text:
    """A paragraph, wrapped to the width (half the columns when ``double``)."""

    text: str
    align: Align = "left"
    bold: bool = False
    double: bool = False


@dataclass(frozen=True)
class Row:
    """A label on the left and an amount on the right of the same line."""

    left: str
    right: str
    bold: bool = False
    double: bool = False


@dataclass(frozen=True)
class Rule:
    """A horizontal line of one character across the width."""

    char: str = "-"


@dataclass(frozen=True)
class Blank:
    """Empty lines."""

    count: int = 1


@dataclass(frozen=True)
class QrCode:
    """A centred QR code; ``module`` is the size of one module in dots."""

    data: str
    module: int = 6
    caption: str | None = None


@dataclass(frozen=True)
class Barcode:
    """A centred 1-D barcode with its human-readable text below."""

    data: str
    symbology: Literal["EAN13", "EAN8", "CODE128"] = "CODE128"
    height: int = 64


@dataclass(frozen=True)
class Logo:
    """A centred image (PNG bytes), printed in black and white, at most the paper width."""

    png: bytes


@dataclass(frozen=True)
class Cut:
    """Feed the paper past the cutter and cut (partial by default)."""

    partial: bool = True


Block = Text | Row | Rule | Blank | QrCode | Barcode | Logo | Cut


@dataclass(frozen=True)
class Document:
    """A receipt ready to render: the paper it is laid out for and its blocks, top to bottom."""

    paper: Paper
    blocks: tuple[Block, ...]

    @property
    def columns(self) -> int:
        """Characters per line at normal size."""
        return self.paper.columns


def width_of(columns: int, double: bool) -> int:
    """Columns available to a block: half of them for double-size characters."""
    return columns // 2 if double else columns


def wrap(text: str, width: int) -> list[str]:
    """Split text on spaces into lines of at most ``width`` characters (long words are cut)."""
    if len(text) <= width:
        return [text]
    lines = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False)
    return lines or [""]


def align(line: str, width: int, how: Align) -> str:
    """Pad a line to its alignment; left-aligned lines keep no trailing spaces."""
    if how == "center":
        return line.center(width).rstrip()
    if how == "right":
        return line.rjust(width)
    return line


def fit_text(block: Text, width: int) -> list[str]:
    """The lines of a text block at a width."""
    return [align(line, width, block.align) for line in wrap(block.text, width)]


def fit_row(block: Row, width: int) -> list[str]:
    """The lines of a row: the label wraps, the amount goes right on the label's last line."""
    right = block.right[:width]
    room = width - len(right) - 1
    if room < 1:
        return [*wrap(block.left, width), right.rjust(width)]
    lines = wrap(block.left, width)
    if len(lines[-1]) <= room:
        lines[-1] = (lines[-1].ljust(room + 1) + right).rstrip()
    else:
        lines.append(right.rjust(width).rstrip())
    return lines
