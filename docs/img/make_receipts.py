"""Regenerate the receipt pictures of the docs: ``.venv/bin/python docs/img/make_receipts.py``.

Writes ``receipt-fr.png`` (a French sale, 80 mm), ``receipt-duplicata.png`` (its second
reprint) and ``z-report.png`` (a day closure) next to this script, from the sample views in
``drivers.receipt.samples``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from drivers.receipt.layout import closure_document, copy_document, ticket_document  # noqa: E402
from drivers.receipt.png_render import FONT_SOURCE, render_png  # noqa: E402
from drivers.receipt.samples import day_closure, french_copy, french_sale  # noqa: E402


def main() -> None:
    """Render the three documents and write them as PNG files."""
    pictures = {
        "receipt-fr.png": ticket_document(french_sale()),
        "receipt-duplicata.png": copy_document(french_copy()),
        "z-report.png": closure_document(day_closure()),
    }
    for name, document in pictures.items():
        (HERE / name).write_bytes(render_png(document))
        print(f"wrote {HERE / name} ({FONT_SOURCE})")


if __name__ == "__main__":
    main()
