"""PNG rendering: a decodable image at printer resolution with ink on it."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from drivers.receipt.document import Paper
from drivers.receipt.layout import Style, closure_document, copy_document, ticket_document
from drivers.receipt.png_render import render_image, render_png
from drivers.receipt.samples import day_closure, french_copy, french_sale


@pytest.mark.parametrize(("paper", "width"), [(Paper.MM80, 576), (Paper.MM58, 384)])
def test_png_decodes_at_printer_width(paper: Paper, width: int) -> None:
    """The PNG of a ticket decodes, is 576 or 384 dots wide, and is taller than wide."""
    with Image.open(io.BytesIO(render_png(ticket_document(french_sale(), Style(paper))))) as image:
        image.load()
        assert image.format == "PNG"
        assert image.width == width
        assert image.height > image.width


def test_png_has_ink_in_every_part() -> None:
    """Copies and closures render with dark pixels spread over the whole height."""
    for document in (copy_document(french_copy()), closure_document(day_closure())):
        image = render_image(document)
        thirds = [image.crop((0, k * image.height // 3, image.width, (k + 1) * image.height // 3))
                  for k in range(3)]
        assert all(part.getextrema()[0] == 0 for part in thirds)
        assert image.getextrema() == (0, 255)


def test_longer_ticket_gives_a_longer_image() -> None:
    """Twenty lines print longer than four."""
    short = render_image(ticket_document(french_sale(4)))
    long = render_image(ticket_document(french_sale(20)))
    assert long.height > short.height
