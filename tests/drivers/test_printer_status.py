"""Golden bytes for the ESC/POS status codec: requests, every status bit, invalid patterns."""

from __future__ import annotations

import pytest

from drivers.errors import ProtocolError
from drivers.printer.status import (
    DRAWER_SENSOR_REQUEST,
    PAPER_SENSOR_REQUEST,
    STATUS_REQUEST,
    ErrorCause,
    OfflineCause,
    PrinterByte,
    RollSensor,
    dle_eot,
    drawer_kick,
    gs_r,
    parse_drawer_sensor,
    parse_error_cause,
    parse_offline_cause,
    parse_paper_sensor,
    parse_printer,
    parse_roll_sensor,
    parse_status,
)


def test_request_bytes() -> None:
    """DLE EOT 1-4 and GS r 1/2 are the bytes of the ESC/POS tables."""
    assert [dle_eot(n) for n in (1, 2, 3, 4)] == [
        bytes.fromhex("10 04 01"), bytes.fromhex("10 04 02"),
        bytes.fromhex("10 04 03"), bytes.fromhex("10 04 04"),
    ]
    assert bytes.fromhex("10 04 01 10 04 02 10 04 03 10 04 04") == STATUS_REQUEST
    assert PAPER_SENSOR_REQUEST == gs_r(1) == bytes.fromhex("1D 72 01")
    assert DRAWER_SENSOR_REQUEST == gs_r(2) == bytes.fromhex("1D 72 02")


@pytest.mark.parametrize("n", [0, 5, 17])
def test_request_out_of_range(n: int) -> None:
    """A status request outside the table is misuse."""
    with pytest.raises(ValueError, match="DLE EOT"):
        dle_eot(n)


def test_gs_r_out_of_range() -> None:
    """GS r only knows the paper and drawer sensors."""
    with pytest.raises(ValueError, match="GS r"):
        gs_r(3)


@pytest.mark.parametrize(("byte", "expected"), [
    (0x12, PrinterByte(drawer_high=False, offline=False, waiting_recovery=False,
                       feed_pressed=False)),
    (0x16, PrinterByte(drawer_high=True, offline=False, waiting_recovery=False,
                       feed_pressed=False)),
    (0x1A, PrinterByte(drawer_high=False, offline=True, waiting_recovery=False,
                       feed_pressed=False)),
    (0x32, PrinterByte(drawer_high=False, offline=False, waiting_recovery=True,
                       feed_pressed=False)),
    (0x52, PrinterByte(drawer_high=False, offline=False, waiting_recovery=False,
                       feed_pressed=True)),
    (0x7E, PrinterByte(drawer_high=True, offline=True, waiting_recovery=True, feed_pressed=True)),
])
def test_printer_status(byte: int, expected: PrinterByte) -> None:
    """DLE EOT 1: b2 drawer pin 3, b3 offline, b5 waiting for recovery, b6 feed button."""
    assert parse_printer(byte) == expected


@pytest.mark.parametrize(("byte", "expected"), [
    (0x12, OfflineCause(cover_open=False, feeding_by_button=False, paper_end_stop=False,
                        error=False)),
    (0x16, OfflineCause(cover_open=True, feeding_by_button=False, paper_end_stop=False,
                        error=False)),
    (0x1A, OfflineCause(cover_open=False, feeding_by_button=True, paper_end_stop=False,
                        error=False)),
    (0x32, OfflineCause(cover_open=False, feeding_by_button=False, paper_end_stop=True,
                        error=False)),
    (0x52, OfflineCause(cover_open=False, feeding_by_button=False, paper_end_stop=False,
                        error=True)),
])
def test_offline_cause(byte: int, expected: OfflineCause) -> None:
    """DLE EOT 2: b2 cover open, b3 fed by button, b5 paper end stop, b6 error."""
    assert parse_offline_cause(byte) == expected


@pytest.mark.parametrize(("byte", "expected"), [
    (0x12, ErrorCause(recoverable=False, cutter=False, unrecoverable=False,
                      auto_recoverable=False)),
    (0x16, ErrorCause(recoverable=True, cutter=False, unrecoverable=False,
                      auto_recoverable=False)),
    (0x1A, ErrorCause(recoverable=False, cutter=True, unrecoverable=False,
                      auto_recoverable=False)),
    (0x32, ErrorCause(recoverable=False, cutter=False, unrecoverable=True,
                      auto_recoverable=False)),
    (0x52, ErrorCause(recoverable=False, cutter=False, unrecoverable=False,
                      auto_recoverable=True)),
])
def test_error_cause(byte: int, expected: ErrorCause) -> None:
    """DLE EOT 3: b2 recoverable, b3 cutter, b5 unrecoverable, b6 auto-recoverable."""
    assert parse_error_cause(byte) == expected


@pytest.mark.parametrize(("byte", "near_end", "paper_end"), [
    (0x12, False, False), (0x1E, True, False), (0x16, True, False), (0x72, False, True),
    (0x32, False, True), (0x7E, True, True),
])
def test_roll_sensor(byte: int, near_end: bool, paper_end: bool) -> None:
    """DLE EOT 4: b2+b3 near end, b5+b6 paper end (either bit of a pair counts)."""
    assert parse_roll_sensor(byte) == RollSensor(near_end=near_end, paper_end=paper_end)


@pytest.mark.parametrize("byte", [0x00, 0x02, 0x10, 0x13, 0x92, 0xFF, 0x03, 0x0C])
@pytest.mark.parametrize("parse", [parse_printer, parse_offline_cause, parse_error_cause,
                                   parse_roll_sensor])
def test_realtime_pattern_enforced(parse: object, byte: int) -> None:
    """A DLE EOT answer that is not 0xx1xx10 is a protocol error, never a guess."""
    assert callable(parse)
    with pytest.raises(ProtocolError) as caught:
        parse(byte)
    assert caught.value.reason == "bad_status"


@pytest.mark.parametrize(("byte", "near_end", "paper_end"), [
    (0x00, False, False), (0x03, True, False), (0x01, True, False), (0x0C, False, True),
    (0x0F, True, True),
])
def test_paper_sensor(byte: int, near_end: bool, paper_end: bool) -> None:
    """GS r 1: b0+b1 near end, b2+b3 paper end."""
    assert parse_paper_sensor(byte) == RollSensor(near_end=near_end, paper_end=paper_end)


@pytest.mark.parametrize(("byte", "high"), [(0x00, False), (0x01, True), (0x0E, False)])
def test_drawer_sensor(byte: int, high: bool) -> None:
    """GS r 2: b0 is the drawer connector pin 3 level."""
    assert parse_drawer_sensor(byte) is high


@pytest.mark.parametrize("byte", [0x10, 0x12, 0x80, 0x91])
def test_transmit_pattern_enforced(byte: int) -> None:
    """A GS r answer with bit 4 or 7 set (e.g. a stray DLE EOT byte) is a protocol error."""
    with pytest.raises(ProtocolError):
        parse_paper_sensor(byte)
    with pytest.raises(ProtocolError):
        parse_drawer_sensor(byte)


def test_full_status_ready() -> None:
    """Four clean answers: online, no fault, drawer low."""
    status = parse_status(bytes.fromhex("12 12 12 12"))
    assert (status.online, status.fault, status.paper_near_end, status.drawer_high) == (
        True, None, False, False)


@pytest.mark.parametrize(("answer", "fault"), [
    ("1A 32 12 72", "paper_out"),
    ("1A 12 12 72", "paper_out"),
    ("1A 16 12 12", "cover_open"),
    ("1A 36 12 72", "cover_open"),
    ("1A 52 1A 12", "cutter_error"),
    ("1A 52 32 12", "unrecoverable_error"),
    ("1A 52 16 12", "recoverable_error"),
    ("1A 52 52 12", "auto_recoverable_error"),
    ("1A 52 12 12", "error"),
    ("1A 12 12 12", "offline"),
    ("12 12 12 1E", None),
])
def test_full_status_fault(answer: str, fault: str | None) -> None:
    """The fault reason is the most specific cause the four answers give."""
    assert parse_status(bytes.fromhex(answer)).fault == fault


def test_full_status_near_end_and_drawer() -> None:
    """Paper near end is a warning, not a fault; the drawer level is reported raw."""
    status = parse_status(bytes.fromhex("16 12 12 1E"))
    assert (status.fault, status.paper_near_end, status.drawer_high, status.cover_open,
            status.paper_out) == (None, True, True, False, False)


@pytest.mark.parametrize("answer", ["", "12 12 12", "12 12 12 12 12", "12 12 00 12"])
def test_full_status_malformed(answer: str) -> None:
    """A short, long or corrupt four-byte answer is a protocol error."""
    with pytest.raises(ProtocolError):
        parse_status(bytes.fromhex(answer))


@pytest.mark.parametrize(("pin", "on_ms", "off_ms", "expected"), [
    (2, 50, 50, "1B 70 00 19 19"),
    (5, 100, 200, "1B 70 01 32 64"),
    (2, 2, 510, "1B 70 00 01 FF"),
])
def test_drawer_kick(pin: int, on_ms: int, off_ms: int, expected: str) -> None:
    """ESC p m t1 t2: m 0 for pin 2, m 1 for pin 5, times in 2 ms units."""
    assert drawer_kick(pin, on_ms, off_ms) == bytes.fromhex(expected)


@pytest.mark.parametrize(("pin", "on_ms", "off_ms"), [(3, 50, 50), (2, 0, 50), (5, 50, 512)])
def test_drawer_kick_misuse(pin: int, on_ms: int, off_ms: int) -> None:
    """An unknown pin or a pulse time outside 2-510 ms is refused before any byte is sent."""
    with pytest.raises(ValueError, match="drawer"):
        drawer_kick(pin, on_ms, off_ms)
