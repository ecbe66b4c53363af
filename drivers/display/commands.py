"""Pole display command sets (sans-I/O): Epson display mode and CD5220, 2×20 characters.

::

    function              Epson display mode        CD5220
    init, clear, clr line 1B 40, 0C, 18             same
    cursor (col, row)     1F 24 x y                 1B 6C x y
    write line 1 / 2      cursor + 20 chars         1B 51 41|42 <20 chars> 0D
    marquee upper line    1F 03 + text              1B 51 44 <up to 40 chars> 0D
    brightness 1-4        1F 58 n                   1B 2A n
    cursor on/off         1F 43 n                   1B 5F n
    code table            1B 74 n                   1B 63 n

Rows and columns are 1-based. Text is encoded with the display profile's code page (CP858 by
default: "€" is 0xD5 and every French accent is there; CP866 for Cyrillic), truncated or padded
to the width. A display daisy-chained behind a receipt printer gets every command wrapped in
``ESC = 2`` (to the display) … ``ESC = 1`` (back to the printer).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CD5220_CP858",
    "EPSON_CP858",
    "EPSON_CP866",
    "CommandSet",
    "DisplayCommands",
    "DisplayProfile",
    "displayable",
    "encode_text",
    "fit",
]

ESC, US_, CR = 0x1B, 0x1F, 0x0D
INIT, CLEAR, CLEAR_LINE = b"\x1b@", b"\x0c", b"\x18"
TO_DISPLAY, TO_PRINTER = b"\x1b=\x02", b"\x1b=\x01"
MARQUEE_MAX = 40
# Characters a code page may lack, and what to show instead.
FALLBACKS = {"€": "EUR", "«": '"', "»": '"', "’": "'", "–": "-", "—": "-", "…": "...",
             "\u00a0": " ", "\u202f": " "}


class CommandSet(StrEnum):
    """The command set a pole display speaks."""

    EPSON = "epson"
    CD5220 = "cd5220"


@dataclass(frozen=True)
class DisplayProfile:
    """What one display model needs: command set, code page and its table number, size."""

    command_set: CommandSet = CommandSet.EPSON
    encoding: str = "cp858"
    code_table: int = 19
    columns: int = 20
    rows: int = 2
    daisy_chained: bool = False


EPSON_CP858 = DisplayProfile(CommandSet.EPSON, "cp858", 19)
EPSON_CP866 = DisplayProfile(CommandSet.EPSON, "cp866", 17)
CD5220_CP858 = DisplayProfile(CommandSet.CD5220, "cp858", 19)


def fit(text: str, width: int) -> str:
    """Truncate or pad with spaces to exactly ``width`` characters."""
    return text[:width].ljust(width)


def displayable(text: str, encoding: str) -> str:
    """The text with each character the code page lacks replaced (``€`` → ``EUR`` in CP866).

    Apply it before measuring a line: a replacement can be longer than the character.
    """
    return "".join(_displayable_char(char, encoding) for char in text)


def encode_text(text: str, encoding: str) -> bytes:
    """Encode text for the display, with replacements for the characters the code page lacks."""
    return displayable(text, encoding).encode(encoding)


def _displayable_char(char: str, encoding: str) -> str:
    """One character if the code page has it, else its fallback, its base letter, or ``?``."""
    if not char.isprintable():
        return " "  # a control character would be taken as a command
    for candidate in (char, FALLBACKS.get(char, ""), _base_letter(char)):
        if candidate:
            try:
                candidate.encode(encoding)
            except UnicodeEncodeError:
                continue
            return candidate
    return "?"


def _base_letter(char: str) -> str:
    """The character without its accents (``é`` → ``e``), or empty if that leaves nothing."""
    return "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))


class DisplayCommands:
    """Builds the bytes of each display command for one profile."""

    def __init__(self, profile: DisplayProfile = EPSON_CP858) -> None:
        self.profile = profile
        self._epson = profile.command_set is CommandSet.EPSON

    def wrap(self, payload: bytes) -> bytes:
        """Address the display behind a printer if daisy-chained (``ESC = 2`` … ``ESC = 1``)."""
        return TO_DISPLAY + payload + TO_PRINTER if self.profile.daisy_chained else payload

    def text(self, text: str, width: int | None = None) -> bytes:
        """Encode text, fitted to ``width`` columns when given."""
        shown = displayable(text, self.profile.encoding)
        return (fit(shown, width) if width else shown).encode(self.profile.encoding)

    def init(self) -> bytes:
        """Reset the display (``ESC @``)."""
        return INIT

    def clear(self) -> bytes:
        """Clear the whole screen, cursor home."""
        return CLEAR

    def clear_line(self) -> bytes:
        """Clear the line the cursor is on."""
        return CLEAR_LINE

    def cursor(self, column: int, row: int) -> bytes:
        """Move the cursor to a 1-based column and row."""
        self._check_position(column, row)
        prefix = b"\x1f\x24" if self._epson else b"\x1b\x6c"
        return prefix + bytes((column, row))

    def write_line(self, row: int, text: str) -> bytes:
        """Write a whole line (padded or truncated to the width)."""
        body = self.text(text, self.profile.columns)
        if self._epson:
            return self.cursor(1, row) + body
        if row not in (1, 2):
            raise ValueError("CD5220 writes rows 1 and 2 only")
        return b"\x1bQ" + (b"A" if row == 1 else b"B") + body + bytes((CR,))

    def marquee(self, text: str) -> bytes:
        """Scroll up to 40 characters on the upper line."""
        body = self.text(text[:MARQUEE_MAX])
        if self._epson:
            return b"\x1f\x03" + self.cursor(1, 1) + body
        return b"\x1bQD" + body + bytes((CR,))

    def brightness(self, level: int) -> bytes:
        """Set the brightness, 1 (dim) to 4 (bright)."""
        if not 1 <= level <= 4:
            raise ValueError("brightness is 1 to 4")
        return (b"\x1f\x58" if self._epson else b"\x1b\x2a") + bytes((level,))

    def cursor_visible(self, visible: bool) -> bytes:
        """Show or hide the cursor."""
        return (b"\x1f\x43" if self._epson else b"\x1b\x5f") + bytes((int(visible),))

    def code_table(self, table: int | None = None) -> bytes:
        """Select the character code table (the profile's by default)."""
        number = self.profile.code_table if table is None else table
        return (b"\x1bt" if self._epson else b"\x1bc") + bytes((number,))

    def setup(self) -> bytes:
        """Everything sent after connecting: reset, code table, cursor off, clear."""
        return self.wrap(self.init() + self.code_table() + self.cursor_visible(False) + CLEAR)

    def screen(self, lines: tuple[str, str]) -> bytes:
        """Show two whole lines."""
        return self.wrap(self.write_line(1, lines[0]) + self.write_line(2, lines[1]))

    def _check_position(self, column: int, row: int) -> None:
        """Refuse a position outside the screen."""
        if not (1 <= column <= self.profile.columns and 1 <= row <= self.profile.rows):
            raise ValueError(f"position ({column}, {row}) is outside the screen")
