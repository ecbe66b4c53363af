"""What the customer reads on the pole display, in French, English or Russian.

Each function returns the two lines of a 2×20 screen: the line just added (name left, amount
right) over the running total, the total to pay, the amount paid over the change due, and an
idle greeting. Amounts are integer cents, formatted without float: ``120`` → ``1,20 €`` in French
and Russian, ``€1.20`` in English. Pass the display profile's ``encoding``: a code page without
"€" (CP866) shows ``EUR``, and the lines are laid out with that replacement already made.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from drivers.display.commands import displayable

__all__ = ["LANGUAGES", "change_due", "format_amount", "idle", "item_added", "total"]

Lines = tuple[str, str]
WIDTH = 20
DEFAULT_ENCODING = "cp858"

_TEXTS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "fr": {"total": "Total", "to_pay": "À payer", "paid": "Reçu", "change": "Rendu",
           "idle": "Bienvenue !", "thanks": "Merci, à bientôt !"},
    "en": {"total": "Total", "to_pay": "To pay", "paid": "Paid", "change": "Change",
           "idle": "Welcome!", "thanks": "Thank you!"},
    "ru": {"total": "Итого", "to_pay": "К оплате", "paid": "Получено", "change": "Сдача",
           "idle": "Добро пожаловать!", "thanks": "Спасибо!"},
})
LANGUAGES = frozenset(_TEXTS)


def _text(lang: str, key: str) -> str:
    """A message in a language; ValueError for a language we do not have."""
    try:
        return _TEXTS[lang][key]
    except KeyError:
        raise ValueError(f"no display texts for language {lang!r}") from None


def _group(units: int, separator: str) -> str:
    """Whole units with thousands separators."""
    digits = str(units)
    groups = [digits[max(0, end - 3):end] for end in range(len(digits), 0, -3)]
    return separator.join(reversed(groups))


def format_amount(cents: int, lang: str = "fr") -> str:
    """Integer cents as the customer reads money: ``1 234,50 €`` (fr, ru), ``€1,234.50`` (en)."""
    _text(lang, "total")
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    if lang == "en":
        return f"{sign}€{_group(units, ',')}.{rest:02d}"
    return f"{sign}{_group(units, ' ')},{rest:02d} €"


def spread(left: str, right: str, width: int = WIDTH) -> str:
    """Left text and right text on one line, the left one cut to leave room for the right."""
    room = max(0, width - len(right) - 1)
    left = left[:room]
    return left + " " * (width - len(left) - len(right)) + right


def center(text: str, width: int = WIDTH) -> str:
    """Text centred on the line (cut to the width)."""
    return text[:width].center(width).rstrip()


def _amount(cents: int, lang: str, encoding: str) -> str:
    """An amount as the display will show it."""
    return displayable(format_amount(cents, lang), encoding)


def item_added(name: str, amount_cents: int, total_cents: int, lang: str = "fr", *,
               quantity: int = 1, encoding: str = DEFAULT_ENCODING) -> Lines:
    """The line just added (``2 x Baguette  2,40 €``) over the running total."""
    label = name if quantity == 1 else f"{quantity} x {name}"
    return (spread(displayable(label, encoding), _amount(amount_cents, lang, encoding)),
            spread(_text(lang, "total"), _amount(total_cents, lang, encoding)))


def total(total_cents: int, lang: str = "fr", *, encoding: str = DEFAULT_ENCODING) -> Lines:
    """The total to pay."""
    return (_text(lang, "to_pay"), spread("", _amount(total_cents, lang, encoding)))


def change_due(paid_cents: int, change_cents: int, lang: str = "fr", *,
               encoding: str = DEFAULT_ENCODING) -> Lines:
    """The amount tendered over the change to give back."""
    return (spread(_text(lang, "paid"), _amount(paid_cents, lang, encoding)),
            spread(_text(lang, "change"), _amount(change_cents, lang, encoding)))


def idle(lang: str = "fr", shop: str | None = None, *,
         encoding: str = DEFAULT_ENCODING) -> Lines:
    """The greeting shown between customers: the shop's name or a welcome, and a thank-you."""
    return (center(displayable(shop or _text(lang, "idle"), encoding)),
            center(_text(lang, "thanks")))
