"""Receipt layouts: mandatory mentions, markings, languages and paper widths, in text form."""

from __future__ import annotations

import pytest

from drivers.receipt.document import Paper, Row, fit_row
from drivers.receipt.layout import (
    Style,
    closure_document,
    copy_document,
    ticket_document,
)
from drivers.receipt.samples import day_closure, french_copy, french_sale
from drivers.receipt.text_render import render_text
from drivers.receipt.texts import EN, FR, money, quantity, rate

FRENCH_MENTIONS = (
    "Boulangerie Dupont", "12 rue de la Paix", "75002 Paris", "SIRET 123 456 789 00012",
    "NAF 1071C", "N° TVA FR32123456789", "TICKET DE VENTE", "R01-000042", "N° séquence",
    "14/03/2025 09:41:07", "Caisse", "R01", "Opérateur", "Marie",
    "Baguette tradition", "3 x 1,20 €", "3,60 € C", "0,255 kg x 24,90 €/kg",
    "A 20 %", "B 10 %", "C 5,5 %", "Total HT", "18,00 €", "TVA", "1,75 €", "TOTAL TTC",
    "19,75 €", "Espèces", "20,00 €", "Rendu monnaie", "0,25 €", "Nombre de lignes",
    "Signature", "dQ7z", "Logiciel tillbox 0.1.0", "Certification catégorie B, n° 0123-2025",
)


def text_of(document_text: str) -> str:
    """Lines joined by spaces so that mentions are found across wrapped lines."""
    return " ".join(line.strip() for line in document_text.splitlines())


def test_french_sale_prints_every_mandatory_mention() -> None:
    """A French sale's text rendering carries every mention FISCAL.md requires."""
    text = text_of(render_text(ticket_document(french_sale())))
    missing = [mention for mention in FRENCH_MENTIONS if mention not in text]
    assert missing == []


def test_number_of_lines_is_printed_with_its_value() -> None:
    """The number of lines is printed and equals the lines of the ticket."""
    text = render_text(ticket_document(french_sale(7)))
    row = next(line for line in text.splitlines() if line.startswith("Nombre de lignes"))
    assert row.split()[-1] == "7"
    assert text.count(" x ") == 7


def test_vat_summary_is_a_table_with_base_vat_and_total() -> None:
    """Each VAT rate has a row with base, VAT and total, and they add up to the totals."""
    lines = render_text(ticket_document(french_sale())).splitlines()
    head = lines.index(next(line for line in lines if line.split() == ["TVA", "HT", "TVA", "TTC"]))
    assert lines[head + 1].split() == ["A", "20", "%", "3,75", "0,75", "4,50"]
    assert lines[head + 3].split() == ["C", "5,5", "%", "9,43", "0,52", "9,95"]


def test_copy_is_marked_duplicata_with_number_date_and_own_extract() -> None:
    """A reprint says DUPLICATA with its copy number, its date and its own signature extract."""
    text = render_text(copy_document(french_copy()))
    assert text.count("DUPLICATA n° 2") == 2
    assert "Réimprimé le" in text
    assert "14/03/2025 17:05:00" in text
    assert "Signature duplicata" in text
    assert "Xk3P" in text
    assert "dQ7z" in text


def test_training_ticket_is_marked_mode_formation() -> None:
    """A training ticket carries the MODE FORMATION marking at its top and bottom."""
    text = render_text(ticket_document(french_sale(training=True)))
    assert text.count("MODE FORMATION") == 2
    assert "Ticket sans valeur" in text
    assert "MODE FORMATION" not in render_text(ticket_document(french_sale()))


def test_receipt_link_is_printed_under_its_caption() -> None:
    """The e-receipt URL is rendered (as a QR code on paper) under its caption."""
    text = text_of(render_text(ticket_document(french_sale())))
    assert "Votre ticket en ligne https://tillbox.example/r/R01-000042?k=9f2c41" in text


def test_english_texts() -> None:
    """The English layout uses English labels and English number formats."""
    text = text_of(render_text(ticket_document(french_sale(), Style(lang="en"))))
    for mention in ("SALES RECEIPT", "Receipt no.", "Number of lines", "TOTAL", "€19.75",
                    "Cash", "Change", "2025-03-14 09:41:07", "5.5 %"):
        assert mention in text


def test_russian_texts() -> None:
    """The Russian layout uses Russian labels, decimal commas and dotted dates."""
    text = text_of(render_text(ticket_document(french_sale(), Style(lang="ru"))))
    for mention in ("КАССОВЫЙ ЧЕК", "Чек №", "Количество строк", "ИТОГ", "19,75 €",
                    "Наличные", "Сдача", "14.03.2025 09:41:07", "Подпись"):
        assert mention in text


def test_russian_copy_and_closure() -> None:
    """Russian copies and closures are marked ДУБЛИКАТ and titled as a shift closure."""
    style = Style(lang="ru", currency="EUR")
    assert "ДУБЛИКАТ № 2" in render_text(copy_document(french_copy(), style))
    closure = render_text(closure_document(day_closure(), style))
    assert "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ (Z)" in closure
    assert "1 950,00 EUR" in closure


def test_day_closure_prints_its_sealed_totals() -> None:
    """The Z report shows period, per-rate totals, tenders, cash and perpetual totals."""
    text = text_of(render_text(closure_document(day_closure())))
    for mention in ("CLÔTURE JOURNALIÈRE (Z)", "14/03/2025", "Total période", "1 950,00 €",
                    "Retours", "-25,00 €", "Carte bancaire", "1 340,00 €", "Dépôt coffre",
                    "-400,00 €", "Grand total perpétuel", "142 305,50 €", "9001 - 9212",
                    "m2Tq", "5,5 %"):
        assert mention in text


@pytest.mark.parametrize("paper", list(Paper))
@pytest.mark.parametrize("lang", ["fr", "en", "ru"])
def test_no_line_is_wider_than_the_paper(paper: Paper, lang: str) -> None:
    """Every rendered line of every document fits the paper's columns (32 or 48)."""
    style = Style(paper, lang)  # type: ignore[arg-type]
    for document in (ticket_document(french_sale(20), style), copy_document(french_copy(), style),
                     closure_document(day_closure(), style)):
        assert document.columns == paper.columns
        lines = render_text(document).splitlines()
        assert max(len(line) for line in lines) <= paper.columns
        assert any(len(line) == paper.columns for line in lines)


def test_58mm_is_narrower_and_longer_than_80mm() -> None:
    """The same ticket wraps onto more lines on 58 mm paper than on 80 mm."""
    narrow = render_text(ticket_document(french_sale(), Style(Paper.MM58))).splitlines()
    wide = render_text(ticket_document(french_sale(), Style(Paper.MM80))).splitlines()
    assert len(narrow) > len(wide)
    assert max(map(len, narrow)) == 32
    assert max(map(len, wide)) == 48


def test_money_quantities_and_rates_are_formatted_from_integers() -> None:
    """Cents, thousandths and basis points print in the language's conventions."""
    assert money(1234, FR) == "12,34 €"
    assert money(-123456789, FR) == "-1 234 567,89 €"
    assert money(-5, EN) == "-€0.05"
    assert money(100000, EN) == "€1,000.00"
    assert quantity(1255, FR, "kg") == "1,255 kg"
    assert quantity(3000, FR) == "3"
    assert quantity(2500, EN) == "2.5"
    assert quantity(-1000, FR) == "-1"
    assert (rate(2000, FR), rate(550, FR), rate(210, EN)) == ("20 %", "5,5 %", "2.1 %")


def test_row_puts_amount_under_a_label_too_long_to_share_its_line() -> None:
    """A row whose label fills the line puts the amount right-aligned on the next line."""
    assert fit_row(Row("Total", "1,00 €"), 16) == ["Total     1,00 €"]
    assert fit_row(Row("A very long label here", "1,00 €"), 16) == [
        "A very long", "label here", "          1,00 €"]
    assert fit_row(Row("A long label", "1,00 €"), 16) == ["A long label", "          1,00 €"]
