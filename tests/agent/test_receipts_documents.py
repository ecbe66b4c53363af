"""Receipts rebuilt from journal entries: every mandatory mention, text, PNG and JSON routes."""

from __future__ import annotations

import io
from pathlib import Path

from boxkit import frontend as client_of
from boxkit import running_box
from PIL import Image

from agent.settings import ReceiptsSettings, StoreIdentity
from fiscal.chain import Entry
from fiscal.journal import Journal
from fiscal.records import Party
from fiscal.requests import (
    Discount,
    InvoiceRequest,
    LineRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
    SaleRequest,
)

STORE = StoreIdentity(name="Boulangerie Dupont", address=("12 rue de la Paix", "75002 Paris"),
                      siret="123 456 789 00012", naf="1071C", vat_number="FR32123456789")
CERTIFIED = ReceiptsSettings(certification_category="B", certification_number="0123-2025",
                             footer=("Merci de votre visite !",))


async def sell(journal: Journal, *, training: bool = False) -> Entry:
    """A three-line sale at two VAT rates with a line discount, paid in cash with change."""
    lines = (LineRequest(label="Baguette tradition", quantity_milli=3000, unit_price=120,
                         vat_rate=550),
             LineRequest(label="Jus de pomme bio", quantity_milli=1000, unit_price=450,
                         vat_rate=2000, discount=Discount(kind="amount", value=50)),
             LineRequest(label="Comté AOP", quantity_milli=255, unit_price=2490, vat_rate=550))
    return await journal.sell(SaleRequest(operator="marie", lines=lines, training=training,
                                          payments=(PaymentRequest(tender="cash", amount=2000),)))


def money(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d} €"


async def test_sale_receipt_text_has_every_mandatory_mention(tmp_path: Path) -> None:
    """The text of a journaled sale shows merchant, number, lines, VAT, totals, extract, count."""
    async with running_box(tmp_path / "data", store=STORE, receipts=CERTIFIED) as box:
        entry = await sell(box.journal)
        text = await box.services.receipts.text(entry.seq)
    record = entry.record
    for mention in ("Boulangerie Dupont", "12 rue de la Paix", "SIRET 123 456 789 00012",
                    "NAF 1071C", "N° TVA FR32123456789", "TICKET DE VENTE",
                    "R1-ticket-000001", "Opérateur", "marie", "Caisse", "R1",
                    "20/11/2026 10:00", "Baguette tradition", "Comté AOP", "Remise",
                    "A 20 %", "B 5,5 %", "Espèces", "Rendu monnaie",
                    "Logiciel tillbox", "Certification catégorie B, n° 0123-2025",
                    "Merci de votre visite !"):
        assert mention in text, mention
    lines = text.splitlines()
    assert [line.split() for line in lines if line.startswith("Signature")] == [
        ["Signature", entry.extract]]
    assert [line.split()[-1] for line in lines if line.startswith("Nombre de lignes")] == ["3"]
    assert money(record["total"]) in text
    assert money(record["total_excl"]) in text
    assert money(record["change"]) in text
    for vat in record["breakdown"]:
        assert f"{vat['vat'] // 100},{vat['vat'] % 100:02d}" in text
    assert max(len(line) for line in text.splitlines()) <= 48


async def test_receipt_text_in_english_and_russian(tmp_path: Path) -> None:
    """``lang`` picks the receipt's language; the amounts and extract stay the same."""
    async with running_box(tmp_path / "data") as box:
        entry = await sell(box.journal)
        english = await box.services.receipts.text(entry.seq, "en")
        russian = await box.services.receipts.text(entry.seq, "ru")
    assert "SALES RECEIPT" in english
    assert "Receipt no." in english
    assert "Change" in english
    assert "КАССОВЫЙ ЧЕК" in russian
    assert "Сдача" in russian
    assert entry.extract in english
    assert entry.extract in russian


async def test_training_sale_is_marked_and_numbered_on_its_chain(tmp_path: Path) -> None:
    """A training sale carries the training banner and its number on the training chain."""
    async with running_box(tmp_path / "data") as box:
        entry = await sell(box.journal, training=True)
        text = await box.services.receipts.text(entry.seq)
    assert text.count("MODE FORMATION") == 2
    assert "Ticket sans valeur" in text
    assert "R1-training-000001" in text


async def test_return_receipt_refers_to_the_original(tmp_path: Path) -> None:
    """A return is a RETURN receipt with negative amounts naming the original ticket."""
    async with running_box(tmp_path / "data") as box:
        sale = await sell(box.journal)
        refund = await box.journal.refund(ReturnRequest(
            operator="marie", original_seq=sale.seq,
            lines=(ReturnLineRequest(original_line_no=1, quantity_milli=1000),),
            refunds=(PaymentRequest(tender="cash", amount=120),)))
        text = await box.services.receipts.text(refund.seq)
    assert "TICKET DE RETOUR" in text
    assert "Retour du ticket n° R1-ticket-000001" in text
    assert "R1-ticket-000002" in text
    assert "-1,20 €" in text


async def test_invoice_receipt_names_the_customer(tmp_path: Path) -> None:
    """An invoice of a sale is an INVOICE document naming the customer and the ticket."""
    async with running_box(tmp_path / "data") as box:
        sale = await sell(box.journal)
        invoice = await box.journal.invoice(InvoiceRequest(
            operator="marie", source_seq=sale.seq,
            customer=Party(name="Jeanne Petit", company="Petit SARL")))
        text = await box.services.receipts.text(invoice.seq)
    assert "FACTURE" in text
    assert "Jeanne Petit, Petit SARL" in text
    assert "R1-invoice-000001" in text
    assert "Facture du ticket n° R1-ticket-000001" in text


async def test_day_closure_receipt(tmp_path: Path) -> None:
    """A day closure's report shows its sealed totals and its own signature extract."""
    async with running_box(tmp_path / "data") as box:
        sale = await sell(box.journal)
        closure = next(entry for entry in await box.journal.periods.close_day("marie")
                       if entry.record["type"] == "day_closure")
        text = await box.services.receipts.text(closure.seq)
    assert "CLÔTURE JOURNALIÈRE (Z)" in text
    assert money(sale.record["total"]) in text
    assert "Grand total perpétuel" in text
    assert closure.extract in text


async def test_png_is_a_picture_of_the_paper_width(tmp_path: Path) -> None:
    """The PNG decodes and is as wide as the paper's printable dots (58 mm: 384)."""
    settings = ReceiptsSettings(paper="58mm")
    async with running_box(tmp_path / "data", receipts=settings) as box:
        entry = await sell(box.journal)
        data = await box.services.receipts.png(entry.seq)
        async with client_of(box) as client:
            response = await client.get(f"/v1/receipts/{entry.seq}.png")
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    assert image.width == 384
    assert image.height > 600
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).width == 384


async def test_receipt_routes_answer_json_and_text(tmp_path: Path) -> None:
    """``GET /v1/receipts/{seq}`` gives kind, number, text and blocks; ``.txt`` the same text."""
    async with running_box(tmp_path / "data") as box:
        entry = await sell(box.journal)
        async with client_of(box) as client:
            document = await client.get(f"/v1/receipts/{entry.seq}", params={"lang": "en"})
            text = await client.get(f"/v1/receipts/{entry.seq}.txt", params={"lang": "en"})
    assert document.status_code == 200, document.text
    body = document.json()
    assert (body["kind"], body["seq"], body["chain"], body["chain_seq"]) == ("sale", entry.seq,
                                                                              "ticket", 1)
    assert body["number"] == "R1-ticket-000001"
    assert body["signature_extract"] == entry.extract
    assert body["document"]["paper"] == "80mm"
    assert body["document"]["columns"] == 48
    rows = [block for block in body["document"]["blocks"] if block["type"] == "row"]
    assert {"type": "row", "left": "Receipt no.", "right": "R1-ticket-000001", "bold": False,
            "double": False} in rows
    assert body["document"]["blocks"][-1] == {"type": "cut", "partial": True}
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == body["text"]


async def test_entries_without_a_receipt_are_not_found(tmp_path: Path) -> None:
    """An event (the journal's initialisation) or an unknown seq answers receipt_not_found."""
    async with running_box(tmp_path / "data") as box, client_of(box) as client:
        answers = [await client.get(path) for path in
                   ("/v1/receipts/1", "/v1/receipts/999.txt", "/v1/receipts/999.png")]
        bad = await client.get("/v1/receipts/0")
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert {a.json()["code"] for a in answers} == {"receipt_not_found"}
    assert bad.status_code == 422


async def test_receipts_need_a_signed_in_cashier(tmp_path: Path) -> None:
    """A paired frontend with nobody signed in cannot read receipts."""
    async with running_box(tmp_path / "data") as box:
        entry = await sell(box.journal)
        async with client_of(box, user=None) as client:
            response = await client.get(f"/v1/receipts/{entry.seq}")
    assert response.status_code == 401
    assert response.json()["code"] == "not_signed_in"
