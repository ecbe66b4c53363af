"""Barcode check digits and weighed-item decoding (EAN-8, EAN-13, UPC-A, GTIN-14; prefix 2x).

Every GTIN (EAN-8, UPC-A, EAN-13, GTIN-14) ends in the GS1 mod-10 check digit: from the right,
the digits before it are weighted 3, 1, 3, 1…; the check digit brings the sum to a multiple of 10.

Weighed and priced items (variable measure, "restricted circulation") are EAN-13 codes whose
first two digits are 20–29. GS1 France leaves their layout to the shop and its scales; the
usual French layout, printed by Bizerba, Mettler Toledo, Dibal… price-computing scales, is::

    2T PPPPP VVVVV C      T: type digit, P: PLU (article number in the scale),
                          V: value, C: EAN-13 check digit

where the prefix ``2T`` says whether ``VVVVV`` is the price to pay in cents (up to 999,99 €) or
the weight in grams (up to 99,999 kg). Which prefix means what is configured in the scale and
must be configured identically here: ``DEFAULT_PREFIXES`` follows the common convention
"21 = price, 22 = weight" (20 = price too); Odoo's default nomenclature uses 21 = weight,
23 = price instead. Some scales shorten the value to four digits and add a price check digit;
set ``plu_digits=6`` for a six-digit PLU and a four-digit value. A prefix missing from the table
is still a valid in-store code, returned without a decoded value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_PREFIXES",
    "Barcode",
    "InvalidBarcode",
    "Measure",
    "PrefixRule",
    "Symbology",
    "VariableMeasure",
    "gs1_check_digit",
    "is_valid_gtin",
    "parse_barcode",
]


class InvalidBarcode(ValueError):
    """A scanned code that is not a valid GTIN (bad length, not digits, wrong check digit)."""


class Symbology(StrEnum):
    """The kind of GTIN a code is, from its length."""

    EAN8 = "ean8"
    UPCA = "upca"
    EAN13 = "ean13"
    GTIN14 = "gtin14"


class Measure(StrEnum):
    """What the value field of a weighed-item code holds."""

    PRICE = "price"  # price to pay, in cents
    WEIGHT = "weight"  # net weight, in grams


@dataclass(frozen=True)
class PrefixRule:
    """How the scale lays out codes with one 2x prefix."""

    measure: Measure
    plu_digits: int = 5

    def __post_init__(self) -> None:
        if not 4 <= self.plu_digits <= 6:
            raise ValueError("plu_digits must be 4, 5 or 6")


DEFAULT_PREFIXES: Mapping[str, PrefixRule] = {
    "20": PrefixRule(Measure.PRICE),
    "21": PrefixRule(Measure.PRICE),
    "22": PrefixRule(Measure.WEIGHT),
}


@dataclass(frozen=True)
class VariableMeasure:
    """The decoded content of a weighed or priced in-store EAN-13 (prefix 20–29)."""

    prefix: str
    plu: str
    measure: Measure | None  # None: the prefix is not in the table
    value: int | None  # cents for PRICE, grams for WEIGHT

    @property
    def price_cents(self) -> int | None:
        """The price to pay in cents, for a priced item."""
        return self.value if self.measure is Measure.PRICE else None

    @property
    def weight_grams(self) -> int | None:
        """The net weight in grams, for a weighed item."""
        return self.value if self.measure is Measure.WEIGHT else None


@dataclass(frozen=True)
class Barcode:
    """A valid scanned GTIN: as scanned, normalised to 14 digits, and its in-store content."""

    code: str
    symbology: Symbology
    variable: VariableMeasure | None = None

    @property
    def gtin14(self) -> str:
        """The code padded with leading zeros to 14 digits (the GS1 normal form)."""
        return self.code.rjust(14, "0")

    @property
    def ean13(self) -> str | None:
        """The code as EAN-13 (a UPC-A gets a leading 0); None for EAN-8 and GTIN-14."""
        if self.symbology is Symbology.UPCA:
            return "0" + self.code
        return self.code if self.symbology is Symbology.EAN13 else None


_LENGTHS = {8: Symbology.EAN8, 12: Symbology.UPCA, 13: Symbology.EAN13, 14: Symbology.GTIN14}


def gs1_check_digit(body: str) -> int:
    """The GS1 mod-10 check digit of a GTIN without its last digit."""
    if not body.isascii() or not body.isdigit():
        raise InvalidBarcode(f"not digits: {body!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gtin(code: str) -> bool:
    """Whether the code has a GTIN length, only digits and the right check digit."""
    if len(code) not in _LENGTHS or not code.isascii() or not code.isdigit():
        return False
    return gs1_check_digit(code[:-1]) == int(code[-1])


def parse_barcode(code: str, prefixes: Mapping[str, PrefixRule] = DEFAULT_PREFIXES) -> Barcode:
    """Validate a scanned GTIN and decode a weighed-item code; raise InvalidBarcode otherwise."""
    code = code.strip()
    if not is_valid_gtin(code):
        raise InvalidBarcode(f"not a valid EAN-8/UPC-A/EAN-13/GTIN-14: {code!r}")
    symbology = _LENGTHS[len(code)]
    variable = None
    if symbology is Symbology.EAN13 and code.startswith("2"):
        variable = _variable_measure(code, prefixes)
    return Barcode(code, symbology, variable)


def _variable_measure(ean13: str, prefixes: Mapping[str, PrefixRule]) -> VariableMeasure:
    """Split an in-store EAN-13 into prefix, PLU and value by the prefix table."""
    prefix = ean13[:2]
    rule = prefixes.get(prefix)
    if rule is None:
        return VariableMeasure(prefix, ean13[2:12], None, None)
    plu_end = 2 + rule.plu_digits
    return VariableMeasure(prefix, ean13[2:plu_end], rule.measure, int(ean13[plu_end:12]))
