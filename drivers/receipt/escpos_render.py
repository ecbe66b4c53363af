"""A receipt document as ESC/POS bytes, python-escpos's in-memory ``Dummy`` as the encoder.

Code pages are pinned per printer profile, never chosen automatically. python-escpos 3.1 picks a
code page per character by default ("€" lands on page 15, Greek, which many printers lack);
``Escpos.charcode("CP858")`` pins one instead: it emits ``ESC t n`` at once (n from the
python-escpos model profile: CP858 = 19, CP866 = 17, as on Epson-compatible printers) and turns
the automatic switching off, so every later text is encoded with that code page alone (a
character outside it becomes "?"). Two consequences, both handled here: the pin is state kept
in Python, so ``ESC @`` (which resets the printer to page 0) is always sent *before* pinning;
and characters the page lacks are replaced *before* lines are fitted to the paper ("€" → "EUR"
on CP866, accented letters → their base letter), so substitutions never break the columns.

Native commands are used for the QR code (``GS ( k``, via ``qr(native=True)``) and the cut
(``cut()``). Barcodes (``GS k``) and raster images (``GS v 0``, packed by python-escpos's
``EscposImage``) are written through ``_raw`` because python-escpos's helpers print to stdout.
"""

from __future__ import annotations

import functools
import io
import unicodedata
from dataclasses import dataclass, field, replace

from escpos.constants import QR_ECLEVEL_M
from escpos.image import EscposImage
from escpos.printer import Dummy
from PIL import Image

from drivers.receipt.document import (
    Barcode,
    Blank,
    Block,
    Cut,
    Document,
    Logo,
    QrCode,
    Row,
    Rule,
    Text,
    fit_row,
    fit_text,
    width_of,
)

FALLBACKS = {"€": "EUR", "₽": "RUB", "№": "No", "«": '"', "»": '"', "‘": "'", "’": "'",
             "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "\u00a0": " ", "\u202f": " "}
"""Replacements for characters a pinned code page lacks (used only when it lacks them)."""

BARCODE_SYSTEMS = {"EAN13": 67, "EAN8": 68, "CODE128": 73}
"""``GS k m`` function-B symbology numbers."""


@dataclass(frozen=True)
class EscposProfile:
    """How to talk to one printer: python-escpos model profile and the pinned code page."""

    code_page: str = "CP858"
    model: str = "default"
    fallbacks: dict[str, str] = field(default_factory=lambda: dict(FALLBACKS))


FRENCH = EscposProfile("CP858")
CYRILLIC = EscposProfile("CP866")


def render_escpos(document: Document, profile: EscposProfile = FRENCH) -> bytes:
    """The bytes of a whole receipt: init, pinned code page, every block."""
    printer = Dummy(profile=profile.model)
    printer.hw("INIT")
    printer.charcode(profile.code_page)
    for block in document.blocks:
        emit(printer, printable_block(block, profile), document.columns)
    return bytes(printer.output)


def emit(printer: Dummy, block: Block, columns: int) -> None:
    """Encode one block."""
    if isinstance(block, Text | Row):
        emit_lines(printer, block, columns)
    elif isinstance(block, Rule):
        printer.text(block.char * columns + "\n")
    elif isinstance(block, Blank):
        printer.text("\n" * block.count)
    elif isinstance(block, QrCode):
        emit_qr(printer, block, columns)
    elif isinstance(block, Barcode):
        emit_barcode(printer, block)
    elif isinstance(block, Logo):
        emit_logo(printer, block, columns * 12)
    elif isinstance(block, Cut):
        printer.cut(mode="PART" if block.partial else "FULL")


def emit_lines(printer: Dummy, block: Text | Row, columns: int) -> None:
    """A text or row block in its size and weight, then back to normal."""
    width = width_of(columns, block.double)
    lines = fit_text(block, width) if isinstance(block, Text) else fit_row(block, width)
    if block.double:
        printer.set(double_width=True, double_height=True)
    if block.bold:
        printer.set(bold=True)
    printer.text("\n".join(lines) + "\n")
    if block.bold:
        printer.set(bold=False)
    if block.double:
        printer.set(normal_textsize=True)


def emit_qr(printer: Dummy, block: QrCode, columns: int) -> None:
    """The caption, then a native QR code (model 2, level M), centred."""
    if block.caption:
        emit_lines(printer, Text(block.caption, "center"), columns)
    printer.set(align="center")
    printer.qr(block.data, ec=QR_ECLEVEL_M, size=block.module, native=True)
    printer.text("\n")
    printer.set(align="left")


def emit_barcode(printer: Dummy, block: Barcode) -> None:
    """A native barcode (``GS k``, function B), human-readable text below, centred."""
    data = block.data.encode("ascii")
    if block.symbology == "CODE128":
        data = b"{B" + data
    printer.set(align="center")
    printer._raw(b"\x1dh" + bytes([block.height]) + b"\x1dw\x02\x1dH\x02")
    printer._raw(b"\x1dk" + bytes([BARCODE_SYSTEMS[block.symbology], len(data)]) + data)
    printer.text("\n")
    printer.set(align="left")


def emit_logo(printer: Dummy, block: Logo, dots: int) -> None:
    """A raster image (``GS v 0``), scaled to at most the paper width and centred on it."""
    image = EscposImage(centred_logo(block.png, dots))
    header = (b"\x1dv0\x00" + image.width_bytes.to_bytes(2, "little")
              + image.height.to_bytes(2, "little"))
    printer._raw(header + image.to_raster_format())


def centred_logo(png: bytes, dots: int) -> Image.Image:
    """The logo in black and white, no wider than the paper, centred on a white strip."""
    logo = Image.open(io.BytesIO(png)).convert("L")
    logo.thumbnail((dots, dots * 2))
    canvas = Image.new("L", (dots, logo.height), 255)
    canvas.paste(logo, ((dots - logo.width) // 2, 0))
    return canvas.convert("1")


def printable_block(block: Block, profile: EscposProfile) -> Block:
    """The block with characters its code page lacks replaced, so they are fitted as printed."""
    def fix(text: str) -> str:
        return printable(text, profile)

    if isinstance(block, Text):
        return replace(block, text=fix(block.text))
    if isinstance(block, Row):
        return replace(block, left=fix(block.left), right=fix(block.right))
    if isinstance(block, QrCode) and block.caption:
        return replace(block, caption=fix(block.caption))
    return block


def printable(text: str, profile: EscposProfile) -> str:
    """Text made of characters of the profile's code page only."""
    if text.isascii():
        return text
    return "".join(ch if encodable(ch, profile.code_page) else substitute(ch, profile)
                   for ch in text)


def substitute(char: str, profile: EscposProfile) -> str:
    """A stand-in for a missing character: a fallback, the base letter, or "?"."""
    if char in profile.fallbacks:
        return profile.fallbacks[char]
    base = unicodedata.normalize("NFKD", char)[:1]
    return base if base and encodable(base, profile.code_page) else "?"


@functools.cache
def encodable(char: str, code_page: str) -> bool:
    """Whether a code page has a character."""
    try:
        char.encode(code_page)
    except UnicodeEncodeError:
        return False
    return True
