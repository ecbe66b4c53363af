"""``[receipts] e_receipt_url``: tickets end with the QR code of their e-receipt."""

from __future__ import annotations

from pathlib import Path

import pytest
from boxkit import running_box
from pydantic import ValidationError

from agent.settings import JournalSection, ReceiptsSettings
from drivers.printer.simulator import EscPosMachine
from fiscal.chain import Entry
from fiscal.journal import Journal
from fiscal.requests import (
    LineRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
    SaleRequest,
)

TEMPLATE = "https://receipts.example/{store_id}/{register_id}/{seq}"
WITH_LINK = ReceiptsSettings(e_receipt_url=TEMPLATE)


async def sell(journal: Journal) -> Entry:
    lines = (LineRequest(label="Baguette tradition", quantity_milli=2000, unit_price=120,
                         vat_rate=550),)
    return await journal.sell(SaleRequest(operator="marie", lines=lines,
                                          payments=(PaymentRequest(tender="cash", amount=240),)))


def qr_store(data: str) -> bytes:
    """``GS ( k pL pH 49 80 48 d…``: store the QR code's data (model 2 symbol storage)."""
    size = len(data) + 3
    return bytes((0x1D, 0x28, 0x6B, size % 256, size // 256, 49, 80, 48)) + data.encode()


QR_PRINT = bytes.fromhex("1D 28 6B 03 00 31 51 30")


async def test_sale_bytes_carry_the_qr_of_its_e_receipt(tmp_path: Path) -> None:
    """The ESC/POS bytes store the URL with GS ( k and print it; a printer shows that QR code."""
    async with running_box(tmp_path / "data", receipts=WITH_LINK) as box:
        entry = await sell(box.journal)
        data = await box.services.receipts.escpos(entry)
        text = await box.services.receipts.text(entry.seq)
    url = f"https://receipts.example/demo-store/R1/{entry.seq}"
    assert qr_store(url) in data
    assert data.index(qr_store(url)) < data.index(QR_PRINT)
    printer = EscPosMachine()
    printer.feed(data)
    assert f"[QR: {url}]" in printer.receipts[0]
    assert "Votre ticket en ligne" in text
    assert url in text


async def test_a_return_links_to_its_own_e_receipt(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data", receipts=WITH_LINK) as box:
        sale = await sell(box.journal)
        refund = await box.journal.refund(ReturnRequest(
            operator="marie", original_seq=sale.seq,
            lines=(ReturnLineRequest(original_line_no=1, quantity_milli=1000),),
            refunds=(PaymentRequest(tender="cash", amount=120),)))
        data = await box.services.receipts.escpos(refund)
    assert qr_store(f"https://receipts.example/demo-store/R1/{refund.seq}") in data


async def test_fields_are_url_escaped(tmp_path: Path) -> None:
    """Every field of the template is filled; text fields are URL-escaped."""
    settings = ReceiptsSettings(
        e_receipt_url="https://r.example/t?s={store_id}&n={number}&c={chain}&i={chain_seq:06d}")
    async with running_box(tmp_path / "data", receipts=settings,
                           journal=JournalSection(store_id="Paris 2/Nord")) as box:
        entry = await sell(box.journal)
        data = await box.services.receipts.escpos(entry)
    url = "https://r.example/t?s=Paris%202%2FNord&n=R1-ticket-000001&c=ticket&i=000001"
    assert qr_store(url) in data


async def test_no_template_no_qr(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box:
        entry = await sell(box.journal)
        data = await box.services.receipts.escpos(entry)
        text = await box.services.receipts.text(entry.seq)
    assert b"\x1d(k" not in data
    assert "https://" not in text


@pytest.mark.parametrize("template", [
    "https://x.example/{customer}", "https://x.example/{seq", "https://x.example/{}",
    "https://x.example/{store_id:d}", "ftp://x.example/{seq}", "https://x.example/ {seq}",
])
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ReceiptsSettings(e_receipt_url=template)
    assert caught.value.errors()[0]["loc"] == ("e_receipt_url",)
