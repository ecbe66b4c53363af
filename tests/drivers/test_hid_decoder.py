"""The HID scanner decoder on recorded key-event sequences, US and FR-AZERTY layouts.

Events are ``(code, value)`` as evdev reports them: value 1 press, 0 release, 2 auto-repeat;
codes are Linux input event codes (KEY_1 = 2 … KEY_0 = 11, KEY_ENTER = 28, KEY_LEFTSHIFT = 42).
"""

from __future__ import annotations

import pytest

from drivers.errors import DeviceUnavailable
from drivers.scanner import keymaps
from drivers.scanner.hid import TAB, EvdevScanner, HidDecoder, decode_events
from drivers.states import Status

# EAN-8 96385074 from a scanner set to US: the digit row without Shift, then Enter.
US_SCANNER_96385074 = [
    (10, 1), (10, 0), (7, 1), (7, 0), (4, 1), (4, 0), (9, 1), (9, 0),
    (6, 1), (6, 0), (11, 1), (11, 0), (8, 1), (8, 0), (5, 1), (5, 0), (28, 1), (28, 0),
]
# The same code from a scanner set to FR-AZERTY: Shift held over the digit row, released
# between some digits, next key pressed before the last one is released (fast scanners do).
AZERTY_SCANNER_96385074 = [
    (42, 1), (10, 1), (10, 0), (7, 1), (7, 0), (4, 1), (4, 0), (42, 0),
    (42, 1), (9, 1), (6, 1), (9, 0), (6, 0), (11, 1), (11, 0), (8, 1), (8, 0), (5, 1), (5, 0),
    (42, 0), (28, 1), (28, 0),
]
# EAN-13 3017620422003 from a US-set scanner, with an auto-repeat of KEY_0 and of Enter.
US_SCANNER_3017620422003 = [
    (4, 1), (4, 0), (11, 1), (11, 2), (11, 0), (2, 1), (2, 0), (8, 1), (8, 0), (7, 1), (7, 0),
    (3, 1), (3, 0), (11, 1), (11, 0), (5, 1), (5, 0), (3, 1), (3, 0), (3, 1), (3, 0),
    (11, 1), (11, 0), (11, 1), (11, 0), (4, 1), (4, 0), (28, 1), (28, 2), (28, 0),
]


def test_us_scanner_on_us_layout() -> None:
    """A US-set scanner decoded with the US table gives the digits."""
    assert decode_events(US_SCANNER_96385074, keymaps.US) == ["96385074"]
    assert decode_events(US_SCANNER_3017620422003, keymaps.US) == ["3017620422003"]


def test_us_scanner_read_with_the_azerty_table_gives_the_classic_garbage() -> None:
    """A US-set scanner read as AZERTY turns digits into &é"'(-è_çà: decode with its layout."""
    assert decode_events(US_SCANNER_96385074, keymaps.FR_AZERTY) == ["ç-\"_(àè'"]
    assert decode_events(US_SCANNER_3017620422003, keymaps.FR_AZERTY) == ["\"à&è-éà'ééàà\""]


def test_azerty_scanner_on_azerty_layout() -> None:
    """An AZERTY-set scanner sends Shift + digit row; the AZERTY table gives the digits."""
    assert decode_events(AZERTY_SCANNER_96385074, keymaps.FR_AZERTY) == ["96385074"]


def test_azerty_scanner_read_with_the_us_table_gives_symbols() -> None:
    """The AZERTY-set scanner read as US gives the shifted US symbols instead of digits."""
    assert decode_events(AZERTY_SCANNER_96385074, keymaps.US) == ["(^#*%)&$"]


def test_repeats_are_ignored() -> None:
    """Auto-repeat events (value 2) add no character and end no extra scan."""
    decoder = HidDecoder(keymaps.US)
    assert decoder.feed_all([(4, 1), (4, 2), (4, 2), (4, 0), (28, 1), (28, 2), (28, 0)]) == ["3"]


def test_shifted_letters_and_symbols_of_a_code_128_label() -> None:
    """Shift gives capitals and the shifted symbols; releasing it goes back to plain keys."""
    events = [(54, 1), (30, 1), (30, 0), (48, 1), (48, 0), (54, 0), (12, 1), (12, 0),
              (42, 1), (3, 1), (3, 0), (42, 0), (53, 1), (53, 0), (28, 1), (28, 0)]
    assert decode_events(events, keymaps.US) == ["AB-@/"]
    assert decode_events(events, keymaps.FR_AZERTY) == ["QB)2!"]


def test_caps_lock_toggles_letters_only() -> None:
    """Caps Lock makes letters capital (Shift makes them small again) but not digits."""
    events = [(58, 1), (58, 0), (16, 1), (16, 0), (42, 1), (17, 1), (17, 0), (42, 0),
              (2, 1), (2, 0), (28, 1), (28, 0)]
    assert decode_events(events, keymaps.US) == ["Qw1"]
    assert decode_events(events, keymaps.FR_AZERTY) == ["Az&"]


def test_altgr_on_azerty() -> None:
    """AltGr gives the third level on AZERTY: @ on KEY_0, # on KEY_3, € on KEY_E."""
    events = [(100, 1), (11, 1), (11, 0), (4, 1), (4, 0), (18, 1), (18, 0), (100, 0),
              (28, 1), (28, 0)]
    assert decode_events(events, keymaps.FR_AZERTY) == ["@#€"]


def test_tab_terminator_when_configured() -> None:
    """A scanner set to end with Tab completes its scans on Tab, and Enter does nothing then."""
    events = [(2, 1), (2, 0), (28, 1), (28, 0), (3, 1), (3, 0), (15, 1), (15, 0)]
    assert decode_events(events, keymaps.US, terminators=TAB) == ["12"]


def test_several_scans_and_empty_enters() -> None:
    """Each Enter ends one scan; Enters with nothing typed are not scans; keypad Enter counts."""
    events = [(28, 1), (28, 0), (79, 1), (79, 0), (96, 1), (96, 0), (28, 1), (28, 0),
              (80, 1), (80, 0), (28, 1), (28, 0)]
    assert decode_events(events, keymaps.US) == ["1", "2"]


def test_keys_without_a_character_and_ctrl_chords_are_skipped() -> None:
    """Escape, Backspace and Ctrl+key add nothing to the scan."""
    events = [(1, 1), (1, 0), (14, 1), (14, 0), (29, 1), (30, 1), (30, 0), (29, 0),
              (5, 1), (5, 0), (28, 1), (28, 0)]
    assert decode_events(events, keymaps.US) == ["4"]


def test_key_codes_match_the_kernel_and_evdev() -> None:
    """Our key-code constants are the Linux input event codes evdev reports."""
    ecodes = pytest.importorskip("evdev.ecodes")
    for name in ("KEY_1", "KEY_0", "KEY_Q", "KEY_A", "KEY_M", "KEY_ENTER", "KEY_KPENTER",
                 "KEY_LEFTSHIFT", "KEY_RIGHTSHIFT", "KEY_RIGHTALT", "KEY_102ND", "KEY_TAB",
                 "KEY_CAPSLOCK", "KEY_KP0", "KEY_KPDOT", "KEY_SLASH", "KEY_APOSTROPHE"):
        assert getattr(keymaps, name) == getattr(ecodes, name), name


def test_layouts_by_name() -> None:
    """Layouts are found by name; an unknown one is a ValueError naming the known ones."""
    assert keymaps.layout("fr") is keymaps.FR_AZERTY
    with pytest.raises(ValueError, match="us"):
        keymaps.layout("dvorak")


def test_missing_input_device_is_unavailable_not_a_crash(tmp_path: object) -> None:
    """Opening an input device that is not there gives DeviceUnavailable and state unavailable."""
    scanner = EvdevScanner(f"{tmp_path}/event99", keymaps.US)
    with pytest.raises(DeviceUnavailable) as raised:
        scanner.open()
    assert raised.value.reason == "unplugged"
    assert scanner.state.status is Status.UNAVAILABLE
