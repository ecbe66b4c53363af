"""Golden bytes of the pole display command sets, the CP858 text and the customer messages."""

from __future__ import annotations

import pytest

from drivers.display import messages
from drivers.display.commands import (
    CD5220_CP858,
    EPSON_CP858,
    EPSON_CP866,
    DisplayCommands,
    DisplayProfile,
    encode_text,
)
from drivers.display.simulator import ScreenModel

EPSON = DisplayCommands(EPSON_CP858)
CD5220 = DisplayCommands(CD5220_CP858)


def test_shared_commands_have_the_same_bytes_in_both_sets() -> None:
    """Init, clear and clear line are ESC @, FF and CAN in both command sets."""
    for commands in (EPSON, CD5220):
        assert commands.init() == bytes.fromhex("1b40")
        assert commands.clear() == bytes.fromhex("0c")
        assert commands.clear_line() == bytes.fromhex("18")


@pytest.mark.parametrize(("commands", "expected"), [
    (EPSON, {"cursor": "1f240302", "brightness": "1f5802", "cursor_on": "1f4301",
             "cursor_off": "1f4300", "code_table": "1b7413"}),
    (CD5220, {"cursor": "1b6c0302", "brightness": "1b2a02", "cursor_on": "1b5f01",
              "cursor_off": "1b5f00", "code_table": "1b6313"}),
])
def test_positioned_and_setting_commands(commands: DisplayCommands,
                                         expected: dict[str, str]) -> None:
    """Cursor, brightness, cursor visibility and code table follow PERIPHERALS.md's table."""
    assert commands.cursor(3, 2).hex() == expected["cursor"]
    assert commands.brightness(2).hex() == expected["brightness"]
    assert commands.cursor_visible(True).hex() == expected["cursor_on"]
    assert commands.cursor_visible(False).hex() == expected["cursor_off"]
    assert commands.code_table().hex() == expected["code_table"]


def test_epson_write_line_positions_then_writes_twenty_columns() -> None:
    """Epson writes a line as cursor (1, row) then the text padded to 20 columns."""
    assert EPSON.write_line(2, "Baguette") == bytes.fromhex(
        "1f240102" "4261677565747465" + "20" * 12)


def test_cd5220_write_lines_use_esc_q_and_cr() -> None:
    """CD5220 writes line 1 with ESC Q A and line 2 with ESC Q B, 20 characters and CR."""
    assert CD5220.write_line(1, "Total") == bytes.fromhex("1b5141" "546f74616c" + "20" * 15 + "0d")
    assert CD5220.write_line(2, "x" * 25) == bytes.fromhex("1b5142" + "78" * 20 + "0d")


def test_euro_sign_and_french_accents_in_cp858() -> None:
    """"€" is 0xD5 in CP858 and the French accents have their CP858 bytes."""
    assert encode_text("1,20 €", "cp858") == bytes.fromhex("312c323020d5")
    assert encode_text("éèàçù", "cp858") == bytes.fromhex("828a858797")
    assert encode_text("É", "cp858") == bytes.fromhex("90")


def test_cp866_shows_cyrillic_and_spells_out_the_euro() -> None:
    """CP866 has Cyrillic but no "€": the euro falls back to EUR, accents to their base letter."""
    assert encode_text("Итого", "cp866") == bytes.fromhex("88e2aea3ae")
    assert encode_text("5 €", "cp866") == b"5 EUR"
    assert encode_text("Café", "cp866") == b"Cafe"


def test_lines_stay_twenty_columns_when_a_replacement_is_longer() -> None:
    """The "€" → "EUR" replacement happens before fitting: a line never overflows on the wire."""
    commands = DisplayCommands(EPSON_CP866)
    assert commands.write_line(1, "x" * 18 + " €") == bytes.fromhex("1f240101") + b"x" * 18 + b" E"
    assert messages.total(990, "ru", encoding="cp866")[1] == "            9,90 EUR"


def test_control_characters_never_reach_the_display_as_commands() -> None:
    """A CR or ESC inside a product name is sent as a space."""
    assert encode_text("a\rb\x1bc", "cp858") == b"a b c"


def test_marquee_in_both_sets() -> None:
    """The marquee is US 03 + home + text on Epson, ESC Q D … CR on CD5220, at most 40 chars."""
    assert EPSON.marquee("Promo") == bytes.fromhex("1f03" "1f240101") + b"Promo"
    assert CD5220.marquee("y" * 50) == b"\x1bQD" + b"y" * 40 + b"\r"


def test_daisy_chained_display_is_addressed_and_released() -> None:
    """Behind a printer, every command is wrapped in ESC = 2 … ESC = 1."""
    chained = DisplayCommands(DisplayProfile(daisy_chained=True))
    assert chained.screen(("a", "b")).startswith(bytes.fromhex("1b3d02" "1f240101"))
    assert chained.screen(("a", "b")).endswith(bytes.fromhex("1b3d01"))
    assert chained.setup() == bytes.fromhex("1b3d02" "1b40" "1b7413" "1f4300" "0c" "1b3d01")


def test_setup_selects_the_profile_code_table() -> None:
    """The setup sequence resets, selects the profile's code table, hides the cursor, clears."""
    assert DisplayCommands(EPSON_CP866).setup() == bytes.fromhex("1b40" "1b7411" "1f4300" "0c")
    assert CD5220.setup() == bytes.fromhex("1b40" "1b6313" "1b5f00" "0c")


def test_out_of_range_arguments_are_refused() -> None:
    """A cursor off the screen or a brightness outside 1–4 is a ValueError."""
    with pytest.raises(ValueError, match="outside"):
        EPSON.cursor(21, 1)
    with pytest.raises(ValueError, match="brightness"):
        CD5220.brightness(5)


@pytest.mark.parametrize("profile", [EPSON_CP858, CD5220_CP858])
def test_the_screen_model_reads_back_what_the_commands_write(profile: DisplayProfile) -> None:
    """Both command sets, fed to the simulator's interpreter one byte at a time, show the text."""
    commands, model = DisplayCommands(profile), ScreenModel()
    wire = commands.setup() + commands.screen(messages.item_added("Éclair café", 120, 1240))
    for byte in wire:
        model.feed(bytes((byte,)))
    assert model.lines == ("Éclair café   1,20 €", "Total        12,40 €")
    assert model.cursor_visible is False
    assert model.unknown == []


def test_screen_model_ignores_bytes_meant_for_the_printer() -> None:
    """Between ESC = 1 and ESC = 2 the display ignores what it receives."""
    model = ScreenModel()
    model.feed(b"\x1b=\x01Receipt text\x0c\x1b=\x02Hi")
    assert model.lines == ("Hi" + " " * 18, " " * 20)


def test_amounts_are_formatted_per_language_without_float() -> None:
    """Integer cents become 1 234,50 € in French and Russian, €1,234.50 in English."""
    assert messages.format_amount(120) == "1,20 €"
    assert messages.format_amount(123450, "fr") == "1 234,50 €"
    assert messages.format_amount(123450, "en") == "€1,234.50"
    assert messages.format_amount(-5, "ru") == "-0,05 €"
    assert messages.format_amount(100_000_000_01) == "100 000 000,01 €"


def test_messages_fit_twenty_columns_in_every_language() -> None:
    """Every message line is at most 20 characters, names cut to leave the amount whole."""
    assert messages.item_added("Baguette", 120, 120) == ("Baguette      1,20 €",
                                                          "Total         1,20 €")
    assert messages.item_added("Pain de campagne bio", 450, 9999, quantity=2) == (
        "2 x Pain de c 4,50 €", "Total        99,99 €")
    assert messages.change_due(2000, 760, "en") == ("Paid          €20.00", "Change         €7.60")
    assert messages.total(1240, "ru") == ("К оплате", "             12,40 €")
    for lang in sorted(messages.LANGUAGES):
        for lines in (messages.idle(lang), messages.total(10**9, lang),
                      messages.change_due(10**7, 10**6, lang)):
            assert all(len(line) <= 20 for line in lines), lines


def test_unknown_language_is_refused() -> None:
    """Asking for a language without texts is a ValueError, not an English fallback."""
    with pytest.raises(ValueError, match="language"):
        messages.idle("de")
