"""The words a customer reads on a receipt, in French (first), English and Russian.

One frozen ``Texts`` per language, so a missing translation is a type error, not a blank on
paper. Number and date conventions live here too: they are part of the language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Lang = Literal["fr", "en", "ru"]


@dataclass(frozen=True)
class Texts:
    """Every label of the ticket, copy and closure layouts in one language."""

    decimal: str
    thousands: str
    currency_before: bool
    date_format: str
    day_format: str
    kinds: dict[str, str]
    closure_kinds: dict[str, str]
    tenders: dict[str, str]
    cash_kinds: dict[str, str]
    siret: str
    naf: str
    vat_number: str
    ticket_no: str
    sequence: str
    date: str
    register: str
    operator: str
    customer: str
    discount: str
    line_count: str
    total_excl: str
    total_vat: str
    total_incl: str
    vat_table: tuple[str, str, str, str]
    vat_rate: str
    change: str
    signature: str
    software: str
    certification: str
    category: str
    number_mark: str
    training: str
    training_note: str
    duplicata: str
    copy_printed: str
    copy_signature: str
    e_receipt: str
    period: str
    sales: str
    returns: str
    period_total: str
    perpetual_total: str
    perpetual_abs: str
    ticket_count: str
    sale_count: str
    return_count: str
    ticket_range: str
    tenders_title: str
    cash_title: str
    automatic: str


FR = Texts(
    decimal=",", thousands=" ", currency_before=False,
    date_format="%d/%m/%Y %H:%M:%S", day_format="%d/%m/%Y",
    kinds={"sale": "TICKET DE VENTE", "return": "TICKET DE RETOUR",
           "invoice": "FACTURE", "credit_note": "AVOIR"},
    closure_kinds={"day": "CLÔTURE JOURNALIÈRE (Z)", "month": "CLÔTURE MENSUELLE",
                   "year": "CLÔTURE ANNUELLE"},
    tenders={"cash": "Espèces", "card": "Carte bancaire", "cheque": "Chèque",
             "voucher": "Bon d'achat", "gift_card": "Carte cadeau"},
    cash_kinds={"float": "Fond de caisse", "cash_in": "Entrées", "cash_out": "Sorties",
                "safe_drop": "Dépôt coffre"},
    siret="SIRET", naf="NAF", vat_number="N° TVA", ticket_no="Ticket n°",
    sequence="N° séquence", date="Date", register="Caisse", operator="Opérateur",
    customer="Client", discount="Remise", line_count="Nombre de lignes",
    total_excl="Total HT", total_vat="TVA", total_incl="TOTAL TTC",
    vat_table=("TVA", "HT", "TVA", "TTC"), vat_rate="Taux", change="Rendu monnaie",
    signature="Signature", software="Logiciel", certification="Certification",
    category="catégorie", number_mark="n°", training="MODE FORMATION",
    training_note="Ticket sans valeur",
    duplicata="DUPLICATA", copy_printed="Réimprimé le", copy_signature="Signature duplicata",
    e_receipt="Votre ticket en ligne", period="Période", sales="Ventes",
    returns="Retours", period_total="Total période", perpetual_total="Grand total perpétuel",
    perpetual_abs="GT perpétuel absolu", ticket_count="Nombre de tickets",
    sale_count="Ventes (nombre)", return_count="Retours (nombre)", ticket_range="Tickets",
    tenders_title="Moyens de paiement", cash_title="Mouvements de caisse",
    automatic="Clôture automatique",
)

EN = Texts(
    decimal=".", thousands=",", currency_before=True,
    date_format="%Y-%m-%d %H:%M:%S", day_format="%Y-%m-%d",
    kinds={"sale": "SALES RECEIPT", "return": "RETURN RECEIPT",
           "invoice": "INVOICE", "credit_note": "CREDIT NOTE"},
    closure_kinds={"day": "DAY CLOSURE (Z)", "month": "MONTH CLOSURE",
                   "year": "YEAR CLOSURE"},
    tenders={"cash": "Cash", "card": "Card", "cheque": "Cheque", "voucher": "Voucher",
             "gift_card": "Gift card"},
    cash_kinds={"float": "Float", "cash_in": "Cash in", "cash_out": "Cash out",
                "safe_drop": "Safe drop"},
    siret="SIRET", naf="NAF", vat_number="VAT no.", ticket_no="Receipt no.",
    sequence="Sequence no.", date="Date", register="Register", operator="Operator",
    customer="Customer", discount="Discount", line_count="Number of lines",
    total_excl="Total excl. VAT", total_vat="VAT", total_incl="TOTAL",
    vat_table=("VAT", "Net", "VAT", "Gross"), vat_rate="Rate", change="Change",
    signature="Signature", software="Software", certification="Certification",
    category="category", number_mark="no.", training="TRAINING MODE",
    training_note="Not a valid receipt",
    duplicata="DUPLICATE", copy_printed="Reprinted on", copy_signature="Copy signature",
    e_receipt="Your receipt online", period="Period", sales="Sales",
    returns="Returns", period_total="Period total", perpetual_total="Perpetual total",
    perpetual_abs="Perpetual abs. total", ticket_count="Receipts",
    sale_count="Sales (count)", return_count="Returns (count)", ticket_range="Receipts",
    tenders_title="Payment methods", cash_title="Cash movements",
    automatic="Automatic closure",
)

RU = Texts(
    decimal=",", thousands=" ", currency_before=False,
    date_format="%d.%m.%Y %H:%M:%S", day_format="%d.%m.%Y",
    kinds={"sale": "КАССОВЫЙ ЧЕК", "return": "ЧЕК ВОЗВРАТА",
           "invoice": "СЧЁТ-ФАКТУРА", "credit_note": "КОРРЕКТИРОВОЧНЫЙ СЧЁТ"},
    closure_kinds={"day": "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ (Z)", "month": "ЗАКРЫТИЕ МЕСЯЦА",
                   "year": "ЗАКРЫТИЕ ГОДА"},
    tenders={"cash": "Наличные", "card": "Карта", "cheque": "Чек", "voucher": "Ваучер",
             "gift_card": "Подарочная карта"},
    cash_kinds={"float": "Размен", "cash_in": "Внесение", "cash_out": "Выплата",
                "safe_drop": "Инкассация"},
    siret="SIRET", naf="NAF", vat_number="ИНН НДС", ticket_no="Чек №",
    sequence="Порядковый №", date="Дата", register="Касса", operator="Кассир",
    customer="Покупатель", discount="Скидка", line_count="Количество строк",
    total_excl="Итого без НДС", total_vat="НДС", total_incl="ИТОГ",
    vat_table=("НДС", "Без НДС", "НДС", "Всего"), vat_rate="Ставка", change="Сдача",
    signature="Подпись", software="ПО", certification="Сертификация",
    category="категория", number_mark="№", training="РЕЖИМ ОБУЧЕНИЯ",
    training_note="Чек недействителен",
    duplicata="ДУБЛИКАТ", copy_printed="Напечатан", copy_signature="Подпись дубликата",
    e_receipt="Электронный чек", period="Период", sales="Продажи",
    returns="Возвраты", period_total="Итог за период", perpetual_total="Нарастающий итог",
    perpetual_abs="Нарастающий итог (абс.)", ticket_count="Количество чеков",
    sale_count="Продажи (кол-во)", return_count="Возвраты (кол-во)", ticket_range="Чеки",
    tenders_title="Способы оплаты", cash_title="Движение наличных",
    automatic="Автоматическое закрытие",
)

TEXTS: dict[Lang, Texts] = {"fr": FR, "en": EN, "ru": RU}


def texts(lang: Lang) -> Texts:
    """Return the texts of a language."""
    return TEXTS[lang]


def group(digits: str, sep: str) -> str:
    """Insert a thousands separator every three digits from the right."""
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i:i + 3] for i in range(head, len(digits), 3)]
    return sep.join(parts)


def number(cents: int, t: Texts) -> str:
    """An amount in cents as a decimal number of the language: ``1 234,50``; never a float."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    return f"{sign}{group(str(units), t.thousands)}{t.decimal}{rest:02d}"


def money(cents: int, t: Texts, mark: str = "€") -> str:
    """An amount in cents with its currency mark: ``12,34 €`` (fr, ru) or ``€12.34`` (en)."""
    if t.currency_before:
        sign = "-" if cents < 0 else ""
        return f"{sign}{mark}{number(abs(cents), t)}"
    return f"{number(cents, t)} {mark}"


def quantity(milli: int, t: Texts, unit: str | None = None) -> str:
    """A quantity in thousandths: ``3`` pieces, ``2,5`` pieces, ``1,255 kg`` with a unit."""
    sign = "-" if milli < 0 else ""
    whole, rest = divmod(abs(milli), 1000)
    if unit is not None:
        return f"{sign}{whole}{t.decimal}{rest:03d} {unit}"
    if rest == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}{t.decimal}{f'{rest:03d}'.rstrip('0')}"


def rate(basis_points: int, t: Texts) -> str:
    """A VAT rate in basis points as a percentage: ``20 %``, ``5,5 %``, ``2,1 %``."""
    whole, rest = divmod(basis_points, 100)
    if rest == 0:
        return f"{whole} %"
    return f"{whole}{t.decimal}{f'{rest:02d}'.rstrip('0')} %"
