"""Money: the one rounding rule, exact allocation, amount and text checks, formatting."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fiscal.errors import InvalidInput
from fiscal.money import (
    FRENCH_VAT_RATES,
    MAX_AMOUNT,
    allocate,
    check_amount,
    check_rate,
    check_text,
    format_amount,
    format_rate,
    line_gross,
    percent_of,
    round_div,
    vat_from_excl,
    vat_from_incl,
)


def reference_round(numerator: int, denominator: int) -> int:
    """Round half away from zero, computed with exact fractions."""
    exact = abs(Fraction(numerator, denominator))
    magnitude = int(exact + Fraction(1, 2))
    return -magnitude if numerator < 0 else magnitude


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (5, 2, 3), (-5, 2, -3), (7, 2, 4), (-7, 2, -4), (1, 2, 1), (-1, 2, -1),
        (15, 10, 2), (-15, 10, -2), (25, 10, 3), (-25, 10, -3), (14, 10, 1), (-14, 10, -1),
        (16, 10, 2), (-16, 10, -2), (4, 3, 1), (-4, 3, -1), (5, 3, 2), (-5, 3, -2),
        (1, 3, 0), (-1, 3, 0), (0, 7, 0), (9, 3, 3), (-9, 3, -3), (2_500_000, 1_000_000, 3),
    ],
)
def test_round_div_halves_away_from_zero(numerator: int, denominator: int, expected: int) -> None:
    """round_div rounds to nearest, halves away from zero, on both signs (never to even)."""
    assert round_div(numerator, denominator) == expected


@given(st.integers(-(10**15), 10**15), st.integers(1, 10**6))
def test_round_div_matches_exact_reference(numerator: int, denominator: int) -> None:
    """round_div equals the exact-fraction rounding for any integers."""
    assert round_div(numerator, denominator) == reference_round(numerator, denominator)


@pytest.mark.parametrize("denominator", [0, -1])
def test_round_div_refuses_non_positive_denominator(denominator: int) -> None:
    """A zero or negative denominator is a programming error."""
    with pytest.raises(ValueError, match="denominator"):
        round_div(10, denominator)


weights_st = st.lists(st.integers(0, 10**7), min_size=1, max_size=12).filter(any)


@given(st.integers(-(10**9), 10**9), weights_st)
def test_allocate_sums_exactly_and_is_proportional(total: int, weights: list[int]) -> None:
    """Every part is within one cent of its exact share, parts carry total's sign, sum is exact."""
    parts = allocate(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * weight, weight_sum)) < 1
        assert part * total >= 0
        if weight == 0:
            assert part == 0


def test_allocate_ties_go_to_the_earliest_weight() -> None:
    """Equal remainders give the extra cent to the earliest weight, for both signs."""
    assert allocate(1, [1, 1]) == [1, 0]
    assert allocate(-1, [1, 1]) == [-1, 0]
    assert allocate(100, [1000, 2000, 3000]) == [17, 33, 50]


def test_allocate_zero_and_degenerate_weights() -> None:
    """Zero over anything is zeros; a non-zero total over zero weights is refused."""
    assert allocate(0, [0, 0]) == [0, 0]
    assert allocate(0, [3, 4]) == [0, 0]
    with pytest.raises(ValueError, match="zero weights"):
        allocate(5, [0, 0])


def test_check_amount_accepts_the_limit() -> None:
    """Exactly 10^11 cents is accepted, negative too when allowed."""
    assert check_amount(MAX_AMOUNT, "x") == 10**11
    assert check_amount(-MAX_AMOUNT, "x", allow_negative=True) == -(10**11)
    assert check_amount(0, "x") == 0


@pytest.mark.parametrize(
    ("value", "allow_negative", "code"),
    [
        (10**11 + 1, False, "amount_too_large"),
        (-(10**11) - 1, True, "amount_too_large"),
        (10**30, False, "amount_too_large"),
        (-1, False, "amount_negative"),
        (True, False, "not_integer"),
        (False, False, "not_integer"),
        (1.0, False, "not_integer"),
        (0.5, False, "not_integer"),
        ("100", False, "not_integer"),
    ],
)
def test_check_amount_refuses(value: object, allow_negative: bool, code: str) -> None:
    """Too large, negative, bool, float and text amounts are refused with a stable code."""
    with pytest.raises(InvalidInput) as caught:
        check_amount(value, "lines.0.unit_price", allow_negative=allow_negative)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert caught.value.field == "lines.0.unit_price"


def test_check_rate_accepts_only_configured_rates() -> None:
    """Configured rates pass; others, bools and non-integers are refused."""
    for rate in FRENCH_VAT_RATES:
        assert check_rate(rate, FRENCH_VAT_RATES, "r") == rate
    for bad in (1900, True, 20.0, "2000"):
        with pytest.raises(InvalidInput) as caught:
            check_rate(bad, FRENCH_VAT_RATES, "r")  # type: ignore[arg-type]
        assert caught.value.code == "unknown_vat_rate"


@given(st.text(max_size=20), st.characters(categories=["Cc"]), st.text(max_size=20))
@example("Baguette", "\x00", "")
@example("", "\n", "x")
@example("a", "\x7f", "b")
@example("a", "\x85", "b")
def test_check_text_refuses_every_control_character(before: str, control: str,
                                                     after: str) -> None:
    """Any control character anywhere in a text is refused with code control_character."""
    with pytest.raises(InvalidInput) as caught:
        check_text(f"ok{before}{control}{after}", "label", max_length=1000)
    assert caught.value.code == "control_character"
    assert caught.value.field == "label"


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\ud800", "\ue000", "\u0378"])
def test_check_text_refuses_separators_surrogates_private_and_unassigned(char: str) -> None:
    """Line/paragraph separators, lone surrogates, private-use and unassigned code points fail."""
    with pytest.raises(InvalidInput) as caught:
        check_text(f"a{char}b", "label")
    assert caught.value.code == "control_character"


@given(st.text(st.characters(exclude_categories=["Cc", "Cs", "Co", "Cn", "Zl", "Zp"]),
               min_size=1, max_size=50).filter(str.strip))
@example("Vin rouge, AOC | 50% 🍷 Zoé")
def test_check_text_accepts_printable_text(text: str) -> None:
    """Printable text (accents, emoji, separators of the signed data) is returned unchanged."""
    assert check_text(text, "label") == text


def test_check_text_length_and_emptiness() -> None:
    """Empty or blank required text and text over the limit are refused; optional may be empty."""
    for text, code in (("", "text_empty"), ("   ", "text_empty"), ("x" * 201, "text_too_long")):
        with pytest.raises(InvalidInput) as caught:
            check_text(text, "operator")
        assert caught.value.code == code
    assert check_text("x" * 200, "operator") == "x" * 200
    assert check_text("", "reason", required=False) == ""
    with pytest.raises(InvalidInput) as caught:
        check_text(42, "operator")  # type: ignore[arg-type]
    assert caught.value.code == "not_text"


@pytest.mark.parametrize(
    ("unit_price", "quantity_milli", "expected"),
    [(120, 3000, 360), (1299, 1255, 1630), (5, 500, 3), (2490, 255, 635), (1, 1, 0),
     (1, 500, 1), (-5, 500, -3)],
)
def test_line_gross_rounds_once(unit_price: int, quantity_milli: int, expected: int) -> None:
    """A line's gross is unit price × quantity / 1000 rounded by the one rule."""
    assert line_gross(unit_price, quantity_milli) == expected


def test_percent_and_vat_helpers() -> None:
    """Percentages and VAT from incl/excl amounts use the one rounding rule."""
    assert percent_of(1299, 1000) == 130
    assert percent_of(125, 1000) == 13
    assert percent_of(-125, 1000) == -13
    assert vat_from_incl(1000, 2000) == 167
    assert vat_from_incl(-1000, 2000) == -167
    assert vat_from_incl(1055, 550) == 55
    assert vat_from_excl(1000, 550) == 55
    assert vat_from_excl(10, 550) == 1
    assert vat_from_excl(1000, 0) == 0


@pytest.mark.parametrize(
    ("cents", "expected"),
    [(0, "0,00"), (5, "0,05"), (-5, "-0,05"), (1234, "12,34"), (-1234, "-12,34"),
     (100_000, "1000,00"), (10**11, "1000000000,00")],
)
def test_format_amount(cents: int, expected: str) -> None:
    """Cents are formatted with two decimals, a comma and a leading minus."""
    assert format_amount(cents) == expected
    assert format_amount(cents, decimal_mark=".") == expected.replace(",", ".")


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(2000, "20 %"), (1000, "10 %"), (550, "5,5 %"), (210, "2,1 %"), (0, "0 %"),
     (1234, "12,34 %"), (205, "2,05 %")],
)
def test_format_rate(rate: int, expected: str) -> None:
    """Basis points are formatted as a French percentage without trailing zeros."""
    assert format_rate(rate) == expected

