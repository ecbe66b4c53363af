"""A receipt document as plain text at the paper width: previews, e-mail bodies and tests.

Double-size blocks are laid out at the full width (plain text has one character size); a QR
code shows its data, a barcode its digits, a logo nothing, a cut nothing.
"""

from __future__ import annotations

from drivers.receipt.document import (
    Barcode,
    Blank,
    Block,
    Document,
    QrCode,
    Row,
    Rule,
    Text,
    align,
    fit_row,
    fit_text,
    wrap,
)


def render_text(document: Document) -> str:
    """The document as lines of at most ``document.columns`` characters, ending with a newline."""
    lines = [line for block in document.blocks for line in block_lines(block, document.columns)]
    return "".join(f"{line}\n" for line in lines)


def block_lines(block: Block, columns: int) -> list[str]:
    """The text lines of one block."""
    if isinstance(block, Text):
        return fit_text(block, columns)
    if isinstance(block, Row):
        return fit_row(block, columns)
    if isinstance(block, Rule):
        return [block.char * columns]
    if isinstance(block, Blank):
        return [""] * block.count
    if isinstance(block, QrCode):
        caption = [block.caption] if block.caption else []
        return [align(line, columns, "center") for line in [*caption, *wrap(block.data, columns)]]
    if isinstance(block, Barcode):
        return [align(block.data, columns, "center")]
    return []
