"""Keyboard layouts: Linux input event key codes → characters, for US and FR-AZERTY.

A HID scanner "types" a code as key presses, choosing keys for the layout it is set to. The
tables are keyed by Linux input event codes (``KEY_1`` = 2 … as in ``linux/input-event-codes.h``)
and give the character of each key without modifier, with Shift and with AltGr (right Alt).
Decode with the layout the **scanner** is set to, not the host's: a scanner set to US on an
AZERTY host turns ``3017620422003`` into ``"à&è-éà'ééàà"`` (the AZERTY digit row gives
``&é"'(-è_çà`` unshifted and the digits with Shift).

Dead keys (``^`` and ``¨`` on AZERTY) are taken as the plain character: a scanner never composes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["FR_AZERTY", "LAYOUTS", "US", "Layout", "layout"]

# Linux input event codes (linux/input-event-codes.h).
KEY_ESC, KEY_1, KEY_2, KEY_3, KEY_4, KEY_5, KEY_6, KEY_7, KEY_8, KEY_9, KEY_0 = range(1, 12)
KEY_MINUS, KEY_EQUAL, KEY_BACKSPACE, KEY_TAB = 12, 13, 14, 15
KEY_Q, KEY_W, KEY_E, KEY_R, KEY_T, KEY_Y, KEY_U, KEY_I, KEY_O, KEY_P = range(16, 26)
KEY_LEFTBRACE, KEY_RIGHTBRACE, KEY_ENTER, KEY_LEFTCTRL = 26, 27, 28, 29
KEY_A, KEY_S, KEY_D, KEY_F, KEY_G, KEY_H, KEY_J, KEY_K, KEY_L = range(30, 39)
KEY_SEMICOLON, KEY_APOSTROPHE, KEY_GRAVE, KEY_LEFTSHIFT, KEY_BACKSLASH = 39, 40, 41, 42, 43
KEY_Z, KEY_X, KEY_C, KEY_V, KEY_B, KEY_N, KEY_M = range(44, 51)
KEY_COMMA, KEY_DOT, KEY_SLASH, KEY_RIGHTSHIFT, KEY_KPASTERISK = 51, 52, 53, 54, 55
KEY_LEFTALT, KEY_SPACE, KEY_CAPSLOCK = 56, 57, 58
KEY_KP7, KEY_KP8, KEY_KP9, KEY_KPMINUS, KEY_KP4, KEY_KP5, KEY_KP6, KEY_KPPLUS = range(71, 79)
KEY_KP1, KEY_KP2, KEY_KP3, KEY_KP0, KEY_KPDOT = range(79, 84)
KEY_102ND, KEY_KPENTER, KEY_RIGHTCTRL, KEY_KPSLASH, KEY_RIGHTALT = 86, 96, 97, 98, 100

SHIFT_KEYS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
ALTGR_KEYS = frozenset({KEY_RIGHTALT})
CTRL_KEYS = frozenset({KEY_LEFTCTRL, KEY_RIGHTCTRL})


@dataclass(frozen=True)
class Layout:
    """One keyboard layout: the character of each key code per modifier level."""

    name: str
    plain: Mapping[int, str]
    shift: Mapping[int, str]
    altgr: Mapping[int, str]

    def character(self, code: int, *, shift: bool, altgr: bool, caps: bool) -> str | None:
        """The character a key gives with these modifiers, or None for a key without one."""
        if altgr:
            return self.altgr.get(code)
        char = (self.shift if shift else self.plain).get(code)
        if caps and char is not None and char.isalpha() and len(char) == 1:
            return char.lower() if shift else char.upper()
        return char


def _row(codes: range | tuple[int, ...], chars: str) -> dict[int, str]:
    """Map consecutive key codes to the characters of a string."""
    codes = tuple(codes)
    assert len(codes) == len(chars), (codes, chars)
    return dict(zip(codes, chars, strict=True))


_DIGIT_ROW = (KEY_1, KEY_2, KEY_3, KEY_4, KEY_5, KEY_6, KEY_7, KEY_8, KEY_9, KEY_0,
              KEY_MINUS, KEY_EQUAL)
_TOP_ROW = (*range(KEY_Q, KEY_P + 1), KEY_LEFTBRACE, KEY_RIGHTBRACE)
_HOME_ROW = (*range(KEY_A, KEY_L + 1), KEY_SEMICOLON, KEY_APOSTROPHE)
_BOTTOM_ROW = (*range(KEY_Z, KEY_M + 1), KEY_COMMA, KEY_DOT, KEY_SLASH)
# Numeric keypad (Num Lock on) and space: the same on every layout.
_KEYPAD = _row((KEY_KP7, KEY_KP8, KEY_KP9, KEY_KPMINUS, KEY_KP4, KEY_KP5, KEY_KP6, KEY_KPPLUS,
                KEY_KP1, KEY_KP2, KEY_KP3, KEY_KP0, KEY_KPDOT, KEY_KPASTERISK, KEY_KPSLASH,
                KEY_SPACE), "789-456+1230.*/ ")


def _table(*parts: dict[int, str]) -> Mapping[int, str]:
    """Merge row tables into one read-only mapping."""
    merged: dict[int, str] = {}
    for part in parts:
        merged.update(part)
    return MappingProxyType(merged)


US = Layout(
    name="us",
    plain=_table(_row(_DIGIT_ROW, "1234567890-="), _row(_TOP_ROW, "qwertyuiop[]"),
                 _row(_HOME_ROW, "asdfghjkl;'"), _row(_BOTTOM_ROW, "zxcvbnm,./"),
                 _row((KEY_GRAVE, KEY_BACKSLASH), "`\\"), _KEYPAD),
    shift=_table(_row(_DIGIT_ROW, "!@#$%^&*()_+"), _row(_TOP_ROW, "QWERTYUIOP{}"),
                 _row(_HOME_ROW, 'ASDFGHJKL:"'), _row(_BOTTOM_ROW, "ZXCVBNM<>?"),
                 _row((KEY_GRAVE, KEY_BACKSLASH), "~|"), _KEYPAD),
    altgr=_table(),
)

FR_AZERTY = Layout(
    name="fr",
    plain=_table(_row(_DIGIT_ROW, "&é\"'(-è_çà)="), _row(_TOP_ROW, "azertyuiop^$"),
                 _row(_HOME_ROW, "qsdfghjklmù"), _row(_BOTTOM_ROW, "wxcvbn,;:!"),
                 _row((KEY_GRAVE, KEY_BACKSLASH, KEY_102ND), "²*<"), _KEYPAD),
    shift=_table(_row(_DIGIT_ROW, "1234567890°+"), _row(_TOP_ROW, "AZERTYUIOP¨£"),
                 _row(_HOME_ROW, "QSDFGHJKLM%"), _row(_BOTTOM_ROW, "WXCVBN?./§"),
                 _row((KEY_BACKSLASH, KEY_102ND), "µ>"), _KEYPAD),
    altgr=_table(_row((KEY_2, KEY_3, KEY_4, KEY_5, KEY_6, KEY_7, KEY_8, KEY_9, KEY_0,
                       KEY_MINUS, KEY_EQUAL, KEY_E), "~#{[|`\\^@]}€")),
)

LAYOUTS: Mapping[str, Layout] = MappingProxyType({"us": US, "fr": FR_AZERTY})


def layout(name: str) -> Layout:
    """The layout of a name (``us``, ``fr``); ValueError for an unknown one."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown keyboard layout {name!r}; known: {sorted(LAYOUTS)}") from None
