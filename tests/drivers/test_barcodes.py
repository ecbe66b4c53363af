"""Check digits of real product codes and the decoding of weighed/priced in-store EAN-13."""

from __future__ import annotations

import pytest

from drivers.scanner.barcodes import (
    DEFAULT_PREFIXES,
    InvalidBarcode,
    Measure,
    PrefixRule,
    Symbology,
    gs1_check_digit,
    is_valid_gtin,
    parse_barcode,
)


@pytest.mark.parametrize(("code", "symbology"), [
    ("3017620422003", Symbology.EAN13),  # Nutella 400 g (France)
    ("5449000000996", Symbology.EAN13),  # Coca-Cola 33 cl can
    ("4006381333931", Symbology.EAN13),  # Stabilo pen
    ("96385074", Symbology.EAN8),
    ("73513537", Symbology.EAN8),
    ("036000291452", Symbology.UPCA),
    ("10012345678902", Symbology.GTIN14),
])
def test_real_codes_are_valid(code: str, symbology: Symbology) -> None:
    """Real EAN-13, EAN-8, UPC-A and GTIN-14 codes pass the GS1 mod-10 check."""
    assert gs1_check_digit(code[:-1]) == int(code[-1])
    barcode = parse_barcode(code)
    assert barcode.symbology is symbology
    assert barcode.variable is None
    assert barcode.gtin14 == code.rjust(14, "0")


def test_upc_a_is_the_ean13_with_a_leading_zero() -> None:
    """A UPC-A and its EAN-13 form (leading 0) are both valid and the same GTIN."""
    upc = parse_barcode("036000291452")
    assert upc.ean13 == "0036000291452"
    assert parse_barcode("0036000291452").gtin14 == upc.gtin14


@pytest.mark.parametrize("code", [
    "3017620422004",  # wrong check digit
    "3017620422030",  # two digits swapped
    "301762042200",  # 12 digits but not a UPC-A
    "30176204220",  # no GTIN length
    "301762042200X",
    "３０１７６２０４２２００３",  # full-width digits are not ASCII digits
    "",
])
def test_bad_codes_are_refused(code: str) -> None:
    """A wrong check digit, a transposition, a bad length or non-digits is InvalidBarcode."""
    assert not is_valid_gtin(code)
    with pytest.raises(InvalidBarcode):
        parse_barcode(code)


def test_priced_item_prefix_21() -> None:
    """21 PPPPP VVVVV C carries the PLU and the price to pay in cents."""
    item = parse_barcode("2112345001203").variable
    assert item is not None
    assert (item.prefix, item.plu, item.measure) == ("21", "12345", Measure.PRICE)
    assert item.price_cents == 120
    assert item.weight_grams is None


def test_weighed_item_prefix_22() -> None:
    """22 PPPPP VVVVV C carries the PLU and the net weight in grams."""
    item = parse_barcode("2200042012551").variable
    assert item is not None
    assert (item.plu, item.weight_grams, item.price_cents) == ("00042", 1255, None)


def test_prefix_table_is_configurable() -> None:
    """The same code reads as a weight with Odoo's convention (21 = weight, 6-digit PLU here)."""
    odoo_like = {"21": PrefixRule(Measure.WEIGHT, plu_digits=6), "23": PrefixRule(Measure.PRICE)}
    item = parse_barcode("2100010009951", odoo_like).variable
    assert item is not None
    assert (item.plu, item.weight_grams) == ("000100", 995)


def test_unconfigured_in_store_prefix_is_kept_without_a_value() -> None:
    """A valid 2x code whose prefix is not in the table is in-store, with no decoded value."""
    item = parse_barcode("2500001234568").variable
    assert item is not None
    assert "25" not in DEFAULT_PREFIXES
    assert (item.prefix, item.measure, item.value) == ("25", None, None)


def test_weighed_item_with_a_bad_check_digit_is_refused() -> None:
    """A misread weighed-item label is refused rather than charged at a wrong price."""
    with pytest.raises(InvalidBarcode):
        parse_barcode("2112345001204")


def test_prefix_rule_refuses_impossible_layouts() -> None:
    """A PLU of fewer than 4 or more than 6 digits is a configuration error."""
    with pytest.raises(ValueError, match="plu_digits"):
        PrefixRule(Measure.PRICE, plu_digits=8)
