"""A receipt document as a PNG at printer resolution: 576 dots wide on 80 mm, 384 on 58 mm.

Characters sit on the printer's Font A grid (12×24 dots; 24×48 when double-size), drawn one
cell at a time so the picture keeps the columns of the paper whatever the font. The font is
DejaVu Sans Mono (Debian/Ubuntu package ``fonts-dejavu-core``) when installed; without it,
Pillow's built-in default font is used (``FONT_SOURCE`` says which) and bold is drawn twice.
QR codes are drawn with segno; a barcode is shown as a framed placeholder with its digits.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

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
from drivers.receipt.escpos_render import centred_logo

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
REGULAR, BOLD = FONT_DIR / "DejaVuSansMono.ttf", FONT_DIR / "DejaVuSansMono-Bold.ttf"
FONT_SOURCE = "DejaVu Sans Mono" if REGULAR.exists() else "Pillow default font"
LINE = 24
MARGIN = 16

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def render_png(document: Document) -> bytes:
    """The document as PNG bytes."""
    out = io.BytesIO()
    render_image(document).save(out, format="PNG", optimize=True)
    return out.getvalue()


def render_image(document: Document) -> Image.Image:
    """The document as a greyscale image, the paper's dots wide, with a small top and bottom."""
    dots = document.paper.dots
    strips = [strip for block in document.blocks for strip in block_strips(block, document)]
    page = Image.new("L", (dots, sum(s.height for s in strips) + 2 * MARGIN), 255)
    top = MARGIN
    for strip in strips:
        page.paste(strip, (0, top))
        top += strip.height
    return page


def block_strips(block: Block, document: Document) -> list[Image.Image]:
    """The horizontal strips of pixels one block prints."""
    dots, columns = document.paper.dots, document.columns
    if isinstance(block, Text | Row):
        return text_strips(block, dots, columns)
    if isinstance(block, Rule):
        return [line_strip(block.char * columns, dots, columns, bold=False, double=False)]
    if isinstance(block, Blank):
        return [Image.new("L", (dots, LINE * block.count), 255)] if block.count else []
    if isinstance(block, QrCode):
        caption = text_strips(Text(block.caption, "center"), dots, columns) if block.caption else []
        return [*caption, qr_strip(block, dots)]
    if isinstance(block, Barcode):
        return [barcode_strip(block, dots, columns)]
    if isinstance(block, Logo):
        return [centred_logo(block.png, dots).convert("L")]
    return [cut_strip(dots)] if isinstance(block, Cut) else []


def text_strips(block: Text | Row, dots: int, columns: int) -> list[Image.Image]:
    """One strip per fitted line, as the printer lays the block out."""
    width = width_of(columns, block.double)
    lines = fit_text(block, width) if isinstance(block, Text) else fit_row(block, width)
    return [line_strip(line, dots, columns, block.bold, block.double) for line in lines]


def line_strip(line: str, dots: int, columns: int, bold: bool, double: bool) -> Image.Image:
    """One line of characters on the Font A grid."""
    scale = 2 if double else 1
    cell = dots // columns * scale
    strip = Image.new("L", (dots, LINE * scale), 255)
    draw = ImageDraw.Draw(strip)
    font = load_font(bold, LINE * scale * 5 // 6)
    for index, char in enumerate(line):
        if not char.isspace():
            draw_char(draw, (index * cell, 0), char, font, bold)
    return strip


def draw_char(draw: ImageDraw.ImageDraw, at: tuple[int, int], char: str, font: Font,
              bold: bool) -> None:
    """Draw one character; bold without a bold font is the glyph drawn twice, a dot apart."""
    draw.text(at, char, font=font, fill=0)
    if bold and not BOLD.exists():
        draw.text((at[0] + 1, at[1]), char, font=font, fill=0)


@functools.cache
def load_font(bold: bool, size: int) -> Font:
    """DejaVu Sans Mono (bold or regular) at a pixel size, or Pillow's default font."""
    path = BOLD if bold and BOLD.exists() else REGULAR
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def qr_strip(block: QrCode, dots: int) -> Image.Image:
    """The QR code (level M, quiet zone of two modules), centred."""
    out = io.BytesIO()
    segno.make(block.data, error="m", micro=False).save(out, kind="png", scale=block.module,
                                                         border=2)
    code = Image.open(io.BytesIO(out.getvalue())).convert("L")
    strip = Image.new("L", (dots, code.height), 255)
    strip.paste(code, ((dots - code.width) // 2, 0))
    return strip


def barcode_strip(block: Barcode, dots: int, columns: int) -> Image.Image:
    """A framed placeholder the size of the barcode, its data written below."""
    strip = Image.new("L", (dots, block.height + LINE), 255)
    draw = ImageDraw.Draw(strip)
    draw.rectangle((dots // 4, 0, dots * 3 // 4, block.height - 1), outline=0, width=2)
    label = line_strip(block.data.center(columns), dots, columns, bold=False, double=False)
    strip.paste(label, (0, block.height))
    return strip


def cut_strip(dots: int) -> Image.Image:
    """The feed before the cutter and a dashed cut line."""
    strip = Image.new("L", (dots, LINE * 2), 255)
    draw = ImageDraw.Draw(strip)
    for x in range(0, dots, 12):
        draw.line((x, LINE + LINE // 2, x + 6, LINE + LINE // 2), fill=128, width=1)
    return strip
