"""The catalog's input rules: skus, labels, barcodes, variant attributes, and in-store barcodes.

Pure functions, shared by the catalog service, its HTTP routes and the CSV import, so that one
rule answers one error code wherever the input comes from (``ProblemError`` 422).

In-store barcodes with an embedded price or weight (French "prix/poids variable") are EAN-13
codes laid out ``2 T IIIII VVVVV C``: ``T`` from ``0`` to ``4`` says ``VVVVV`` is the price to
pay in cents, from ``5`` to ``9`` the net weight in grams; ``IIIII`` is the item number and
``C`` the EAN-13 check digit. The product registers the *template* code: the same 13 digits with
``VVVVV`` zeroed and the check digit recomputed (``embedded_template``). The GS1 arithmetic is
the scanner driver's (``drivers.scanner.barcodes``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from agent.errors import invalid
from drivers.scanner.barcodes import (
    InvalidBarcode,
    Measure,
    PrefixRule,
    gs1_check_digit,
    is_valid_gtin,
    parse_barcode,
)

SKU_MAX = 64
LABEL_MAX = 120
BARCODE_MAX = 64
CATEGORY_ID_MAX = 64
CATEGORY_NAME_MAX = 64
ATTRIBUTES_MAX = 8
ATTRIBUTE_KEY_MAX = 32
ATTRIBUTE_VALUE_MAX = 64
GTIN_LENGTHS = (8, 12, 13, 14)
CATEGORY_SEPARATOR = " > "
ATTRIBUTE_RESERVED = "=|"
"""Characters refused in attribute keys and values (the CSV writes ``size=M|colour=bleu``)."""

EMBEDDED_PREFIXES: Mapping[str, PrefixRule] = {
    f"2{digit}": PrefixRule(Measure.PRICE if digit < 5 else Measure.WEIGHT)
    for digit in range(10)
}
_NOT_TEXT = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class Embedded:
    """What an in-store EAN-13 carries: the template code registered and the value."""

    template: str
    price: int | None
    weight_grams: int | None


def check_text(value: str, field: str, code: str, max_length: int) -> str:
    """``value`` if it is 1 to ``max_length`` characters of text with no control character."""
    if not value or not value.strip():
        raise invalid(code, f"{field} must not be empty", field)
    if len(value) > max_length:
        raise invalid(code, f"{field} is longer than {max_length} characters", field)
    if value != value.strip():
        raise invalid(code, f"{field} starts or ends with a space", field)
    bad = next((char for char in value if unicodedata.category(char) in _NOT_TEXT), None)
    if bad is not None:
        raise invalid(code, f"control character U+{ord(bad):04X} in {field}", field)
    return value


def check_sku(sku: str, field: str = "sku") -> str:
    """A sku: 1–64 characters, no control character, no ``/`` (it goes into URLs)."""
    check_text(sku, field, "invalid_sku", SKU_MAX)
    if "/" in sku:
        raise invalid("invalid_sku", "a sku cannot contain '/'", field)
    return sku


def check_label(label: str, field: str = "label") -> str:
    """A product label: 1–120 characters of text."""
    return check_text(label, field, "invalid_label", LABEL_MAX)


def check_barcode(code: str, field: str = "barcodes") -> str:
    """A barcode: a GTIN with its right check digit, or up to 64 printable characters."""
    if code.isascii() and code.isdigit() and len(code) in GTIN_LENGTHS:
        if not is_valid_gtin(code):
            raise invalid("invalid_barcode", f"wrong check digit in {code!r}", field)
        return code
    check_text(code, field, "invalid_barcode", BARCODE_MAX)
    if "|" in code or not code.isprintable():
        raise invalid("invalid_barcode", "a barcode is printable text without '|'", field)
    return code


def check_barcodes(codes: tuple[str, ...], field: str = "barcodes") -> tuple[str, ...]:
    """Valid barcodes, each once."""
    for index, code in enumerate(codes):
        check_barcode(code, f"{field}.{index}")
    if len(set(codes)) != len(codes):
        raise invalid("invalid_barcode", "a barcode is listed twice", field)
    return codes


def check_attributes(attributes: Mapping[str, str], field: str = "attributes") -> dict[str, str]:
    """Variant attributes: 1 to 8 ``name: value`` pairs of short text without ``=`` or ``|``."""
    if not 1 <= len(attributes) <= ATTRIBUTES_MAX:
        raise invalid("invalid_attributes",
                      f"a variant has 1 to {ATTRIBUTES_MAX} attributes", field)
    for key, value in attributes.items():
        check_text(key, f"{field}.{key}", "invalid_attributes", ATTRIBUTE_KEY_MAX)
        check_text(value, f"{field}.{key}", "invalid_attributes", ATTRIBUTE_VALUE_MAX)
        if any(char in key + value for char in ATTRIBUTE_RESERVED):
            raise invalid("invalid_attributes", "attributes cannot contain '=' or '|'",
                          f"{field}.{key}")
    return dict(attributes)


def check_category_name(name: str, field: str = "name") -> str:
    """A category name: 1–64 characters of text without ``>`` (the CSV's path separator)."""
    check_text(name, field, "invalid_category", CATEGORY_NAME_MAX)
    if ">" in name:
        raise invalid("invalid_category", "a category name cannot contain '>'", field)
    return name


def check_category_id(ident: str, field: str = "category") -> str:
    """A category id: 1–64 characters, no control character, no ``/``."""
    check_text(ident, field, "invalid_category", CATEGORY_ID_MAX)
    if "/" in ident:
        raise invalid("invalid_category", "a category id cannot contain '/'", field)
    return ident


def variant_label(label: str, attributes: Mapping[str, str]) -> str:
    """``T-shirt (M, bleu)``: the product's label and the variant's values, ≤ 120 characters."""
    text = f"{label} ({', '.join(attributes.values())})"
    return text if len(text) <= LABEL_MAX else text[:LABEL_MAX - 1] + "…"


def fold(text: str) -> str:
    """``text`` without case or accents, for searching (``Crème`` → ``creme``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def slug(name: str) -> str:
    """A category id made from a name (``Fruits & légumes`` → ``fruits-legumes``)."""
    words = re.findall(r"[a-z0-9]+", fold(name))
    return "-".join(words)[:CATEGORY_ID_MAX].strip("-") or "category"


def embedded(code: str) -> Embedded | None:
    """The template and value of an in-store EAN-13 (``2…``); None for any other code."""
    if len(code) != 13 or not code.startswith("2"):
        return None
    try:
        variable = parse_barcode(code, EMBEDDED_PREFIXES).variable
    except InvalidBarcode:
        return None
    assert variable is not None
    return Embedded(embedded_template(code), variable.price_cents, variable.weight_grams)


def embedded_template(code: str) -> str:
    """The 13-digit code with its value zeroed and its check digit recomputed."""
    body = code[:7] + "00000"
    return body + str(gs1_check_digit(body))


def lookup_forms(code: str) -> tuple[str, ...]:
    """The forms a scanned code may be registered under: as is, and UPC-A ⇄ EAN-13 ``0…``."""
    if code.isascii() and code.isdigit():
        if len(code) == 12:
            return code, "0" + code
        if len(code) == 13 and code.startswith("0"):
            return code, code[1:]
    return (code,)
