"""Money, VAT rates and the one rounding rule of tillbox.

All amounts are integers in minor units (cents); VAT rates are integers in basis points
(``2000`` = 20 %, ``550`` = 5.5 %); quantities are integers in thousandths (``1000`` = one
piece, ``1255`` = 1.255 kg). No float is ever used.

Rounding rule (the only one): a quotient is rounded to the nearest integer, halves away from
zero (``round_div``). It is applied

* once per line to ``unit_price × quantity / 1000`` (the gross line amount);
* once per percentage discount;
* once per VAT rate of a ticket to the VAT of that rate's summed amounts — VAT is never
  computed per line and then summed.

With prices including VAT, the per-rate VAT is ``round_div(incl × rate, 10000 + rate)`` and
``excl = incl − VAT``. With prices excluding VAT, ``VAT = round_div(excl × rate, 10000)`` and
``incl = excl + VAT``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence

from fiscal.errors import InvalidInput

MAX_AMOUNT = 10**11
"""Largest absolute amount (in cents) accepted anywhere: one billion euros."""

MAX_QUANTITY_MILLI = 10**9
"""Largest quantity (in thousandths) on a line."""

FRENCH_VAT_RATES: tuple[int, ...] = (2000, 1000, 550, 210, 0)
"""The French VAT rates in basis points: 20 %, 10 %, 5.5 %, 2.1 % and 0 %."""

BASIS = 10_000


def round_div(numerator: int, denominator: int) -> int:
    """Divide two integers, rounding to the nearest integer with halves away from zero."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return sign * quotient


def check_amount(value: int, field: str, *, allow_negative: bool = False) -> int:
    """Return ``value`` if it is an integer amount within bounds, else raise ``InvalidInput``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("amount must be an integer number of cents", code="not_integer",
                           field=field)
    if abs(value) > MAX_AMOUNT:
        raise InvalidInput(f"amount exceeds {MAX_AMOUNT} cents", code="amount_too_large",
                           field=field)
    if value < 0 and not allow_negative:
        raise InvalidInput("amount must not be negative", code="amount_negative", field=field)
    return value


def check_rate(rate: int, allowed: Collection[int], field: str) -> int:
    """Return ``rate`` if it is one of the configured VAT rates, else raise ``InvalidInput``."""
    if isinstance(rate, bool) or not isinstance(rate, int) or rate not in allowed:
        raise InvalidInput(f"unknown VAT rate {rate!r} (basis points)", code="unknown_vat_rate",
                           field=field)
    return rate


def check_text(value: str, field: str, *, max_length: int = 200, required: bool = True) -> str:
    """Return ``value`` if it is printable text; control characters are refused."""
    if not isinstance(value, str):
        raise InvalidInput("text expected", code="not_text", field=field)
    if required and not value.strip():
        raise InvalidInput("text must not be empty", code="text_empty", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"text longer than {max_length} characters", code="text_too_long",
                           field=field)
    if value.isprintable():
        return value
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise InvalidInput(f"control character U+{ord(char):04X} in text",
                               code="control_character", field=field)
    return value


def line_gross(unit_price: int, quantity_milli: int) -> int:
    """Return the gross amount of ``quantity_milli`` thousandths at ``unit_price`` cents."""
    return round_div(unit_price * quantity_milli, 1000)


def percent_of(amount: int, basis_points: int) -> int:
    """Return ``basis_points`` of ``amount``, rounded by the one rule."""
    return round_div(amount * basis_points, BASIS)


def vat_from_incl(incl: int, rate: int) -> int:
    """Return the VAT contained in an amount including VAT at ``rate``."""
    return round_div(incl * rate, BASIS + rate)


def vat_from_excl(excl: int, rate: int) -> int:
    """Return the VAT due on an amount excluding VAT at ``rate``."""
    return round_div(excl * rate, BASIS)


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` so that the parts sum exactly to ``total``.

    Largest-remainder method; ties go to the earliest weight. Weights must be non-negative
    and not all zero unless ``total`` is zero.
    """
    weight_sum = sum(weights)
    if total == 0 or weight_sum == 0:
        if total and not weight_sum:
            raise ValueError("cannot allocate a non-zero total over zero weights")
        return [0] * len(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    shares = [divmod(magnitude * w, weight_sum) for w in weights]
    parts = [q for q, _ in shares]
    left = magnitude - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-shares[i][1], i))
    for index in order[:left]:
        parts[index] += 1
    return [sign * p for p in parts]


def format_amount(cents: int, *, decimal_mark: str = ",") -> str:
    """Format cents as a decimal string (``-1234`` → ``-12,34``) for documents."""
    sign = "-" if cents < 0 else ""
    units, minor = divmod(abs(cents), 100)
    return f"{sign}{units}{decimal_mark}{minor:02d}"


def format_rate(rate: int) -> str:
    """Format basis points as a percentage (``550`` → ``5,5 %``, ``2000`` → ``20 %``)."""
    units, minor = divmod(rate, 100)
    if minor == 0:
        return f"{units} %"
    return f"{units},{str(minor).rstrip('0') if minor % 10 == 0 else f'{minor:02d}'} %"
