"""Golden bytes for the Toledo 8217 and Dialog 06 codecs (PERIPHERALS.md § Scales)."""

from __future__ import annotations

import binascii
import inspect

import pytest

from drivers.errors import ProtocolError
from drivers.scale import dialog06 as d06
from drivers.scale import toledo8217 as t8217
from drivers.scale.protocol import ScaleStatus, Weight
from drivers.scale.serial_transport import (
    DIALOG_06_LINE,
    PTY_LINE,
    TOLEDO_8217_LINE,
    SerialSettings,
)

S = ScaleStatus

# --- Toledo 8217 -----------------------------------------------------------------------------


def test_toledo_command_bytes() -> None:
    """W, Z, T, C, E and F are the single ASCII command bytes of the table."""
    commands = (t8217.WEIGHT_REQUEST, t8217.ZERO, t8217.TARE, t8217.CLEAR_TARE,
                t8217.ECHO_START, t8217.ECHO_END)
    assert b"".join(commands) == bytes.fromhex("57 5A 54 43 45 46")
    assert bytes.fromhex("02 45 0D") == t8217.ECHO_ACK


def test_toledo_weight_reply_golden() -> None:
    """``02 30 31 2E 32 35 35 0D`` is 1.255 kg, a stable gross 1255 g."""
    golden = bytes.fromhex("02 30 31 2E 32 35 35 0D")
    assert t8217.encode_weight_reply(1255) == golden
    assert t8217.decode_reply(golden[1:-1]) == Weight(1255, False, S.STABLE)
    assert t8217.decode_reply(golden[1:-1]).stable


def test_toledo_net_weight_reply_golden() -> None:
    """An ``N`` before CR marks a net weight."""
    golden = bytes.fromhex("02 31 32 2E 30 30 35 4E 0D")
    assert t8217.encode_weight_reply(12_005, net=True) == golden
    assert t8217.decode_reply(golden[1:-1]) == Weight(12_005, True, S.NET_MODE)


@pytest.mark.parametrize(("status", "byte"), [
    (S.STABLE, 0xC0), (S.IN_MOTION, 0x41), (S.OVER_CAPACITY, 0x42), (S.UNDER_ZERO, 0x44),
    (S.OUTSIDE_ZERO_RANGE, 0x48), (S.CENTER_OF_ZERO, 0x50), (S.NET_MODE, 0x60),
    (S.IN_MOTION | S.NET_MODE, 0xE1), (S.UNDER_ZERO | S.CENTER_OF_ZERO, 0xD4),
])
def test_toledo_status_byte_golden(status: ScaleStatus, byte: int) -> None:
    """Status bits b0–b5 as documented, b6 always 1, b7 the even-parity bit."""
    assert t8217.encode_status_byte(status) == byte
    assert t8217.decode_status_byte(byte) == status


def test_toledo_status_decoding_masks_b6_and_b7() -> None:
    """b6 and b7 are ignored when decoding, whatever their value."""
    assert t8217.decode_status_byte(0x01) == S.IN_MOTION
    assert t8217.decode_status_byte(0x81) == S.IN_MOTION
    assert t8217.decode_status_byte(0xFF) == S(0x3F)


def test_toledo_status_reply_is_not_a_weight() -> None:
    """``STX ? <status> CR`` decodes to a reading without grams."""
    golden = bytes.fromhex("02 3F 42 0D")
    assert t8217.encode_status_reply(S.OVER_CAPACITY) == golden
    reading = t8217.decode_reply(golden[1:-1])
    assert reading == Weight(None, False, S.OVER_CAPACITY)
    assert not reading.stable


def test_toledo_digital_tare_golden() -> None:
    """``T wwwww CR`` carries the tare in grams on five digits."""
    assert t8217.encode_set_tare(250) == bytes.fromhex("54 30 30 32 35 30 0D")
    with pytest.raises(ValueError, match="tare"):
        t8217.encode_set_tare(100_000)


def test_toledo_non_reply_is_a_protocol_error() -> None:
    """A frame that is neither a weight nor a status raises ``ProtocolError``."""
    with pytest.raises(ProtocolError):
        t8217.decode_reply(b"1,255")


def test_toledo_parser_joins_chunks_and_counts_garbage() -> None:
    """Frames split across reads are joined; bytes before STX are counted as discarded."""
    parser = t8217.Toledo8217Parser()
    assert parser.feed(bytes.fromhex("FF 00 02 30 31 2E")) == []
    assert parser.feed(bytes.fromhex("32 35 35 0D 02 3F")) == [b"01.255"]
    assert parser.discarded == 2


# --- Dialog 06: POS → scale ------------------------------------------------------------------


def test_dialog_price_record_01_golden() -> None:
    """Record 01: EOT STX 0 1 ESC <unit price 6> ESC ETX."""
    assert d06.pos_message(d06.PriceRecord(1234)) == bytes.fromhex(
        "04 02 30 31 1B 30 30 31 32 33 34 1B 03")


def test_dialog_price_record_03_golden() -> None:
    """Record 03 adds ESC and the tare on four digits (grams)."""
    assert d06.pos_message(d06.PriceRecord(1234, tare_grams=150)) == bytes.fromhex(
        "04 02 30 33 1B 30 30 31 32 33 34 1B 30 31 35 30 03")


def test_dialog_price_record_04_golden() -> None:
    """Record 04 adds ESC and a 13-character text."""
    assert d06.pos_message(d06.PriceRecord(990, text="Pommes")) == bytes.fromhex(
        "04 02 30 34 1B 30 30 30 39 39 30 1B 50 6F 6D 6D 65 73 20 20 20 20 20 20 20 03")


def test_dialog_price_record_05_golden() -> None:
    """Record 05 carries price, tare and text."""
    assert d06.pos_message(d06.PriceRecord(1, tare_grams=9999, text="ABCDEFGHIJKLMNOP")) == (
        b"\x04\x0205\x1b000001\x1b9999\x1bABCDEFGHIJKLM\x03")


def test_dialog_status_request_golden() -> None:
    """Record 08 has no field."""
    assert d06.pos_message(d06.StatusRequest()) == bytes.fromhex("04 02 30 38 03")


def test_dialog_checksum_answer_golden() -> None:
    """Record 10: STX 1 0 ESC <CS 4 hex><KW 4 hex> ETX."""
    assert d06.pos_message(d06.ChecksumAnswer("31C3", "0A9F")) == bytes.fromhex(
        "04 02 31 30 1B 33 31 43 33 30 41 39 46 03")


def test_dialog_weighing_request_golden() -> None:
    """``EOT ENQ`` asks for the weighing result."""
    assert bytes.fromhex("04 05") == d06.WEIGHING_REQUEST


def test_dialog_text_is_seven_bit_and_padded() -> None:
    """Accents are dropped, control bytes replaced, the text cut or padded to 13."""
    assert d06.encode_text("Crème brûlée au caramel") == b"Creme brulee "
    assert d06.encode_text("a\x1bb€") == b"a?b?         "


def test_dialog_out_of_range_fields_are_refused() -> None:
    """A price over six digits or a tare over four is a ``ValueError``, never a bad frame."""
    with pytest.raises(ValueError, match="unit price"):
        d06.encode_record(d06.PriceRecord(1_000_000))
    with pytest.raises(ValueError, match="tare"):
        d06.encode_record(d06.PriceRecord(1, tare_grams=10_000))


# --- Dialog 06: scale → POS ------------------------------------------------------------------


def test_dialog_weighing_record_02_golden() -> None:
    """Record 02: status, weight 5 (g), unit price 6 and price to pay 6 (cents)."""
    golden = bytes.fromhex(
        "02 30 32 1B 30 1B 30 31 32 35 35 1B 30 30 31 32 33 34 1B 30 30 31 35 34 39 03")
    record = d06.WeighingRecord(0, 1255, 1234, 1549)
    assert d06.encode_record(record) == golden
    assert d06.decode_record(golden[1:-1]) == record


@pytest.mark.parametrize("code", sorted(d06.STATUS_CODES))
def test_dialog_status_record_09_golden(code: int) -> None:
    """Record 09 carries each documented status code on two digits."""
    golden = bytes([0x02, 0x30, 0x39, 0x1B, 0x30 + code // 10, 0x30 + code % 10, 0x03])
    assert d06.encode_record(d06.StatusRecord(code)) == golden
    assert d06.decode_record(golden[1:-1]) == d06.StatusRecord(code)


def test_dialog_status_code_table() -> None:
    """The status table names the thirteen documented codes."""
    assert d06.STATUS_CODES == {
        0: "ok", 1: "general_error", 2: "parity_error", 10: "bad_record", 11: "bad_price",
        12: "bad_tare", 13: "bad_text", 20: "in_motion", 21: "no_motion_since_last",
        22: "measuring", 30: "under_minimum", 31: "below_zero", 32: "overload"}
    assert d06.WEIGHT_STATUS[32] == S.OVER_CAPACITY
    assert d06.WEIGHT_STATUS[20] == S.IN_MOTION


def test_dialog_checksum_request_record_11_golden() -> None:
    """Record 11 carries the scale's random value Z."""
    golden = bytes.fromhex("02 31 31 1B 34 32 30 37 03")
    assert d06.decode_record(golden[1:-1]) == d06.ChecksumRequest(b"4207")
    assert d06.encode_record(d06.ChecksumRequest(b"4207")) == golden


@pytest.mark.parametrize("record", [
    d06.PriceRecord(0), d06.PriceRecord(999_999, 0), d06.PriceRecord(5, None, "x" * 13),
    d06.PriceRecord(5, 12, "Brie de Meaux"), d06.StatusRequest(),
    d06.ChecksumAnswer("0000", "FFFF"),
])
def test_dialog_pos_records_round_trip(record: d06.Record) -> None:
    """Every POS record decodes back to itself (the simulator's side of the codec)."""
    assert d06.decode_record(d06.encode_record(record)[1:-1]) == record


@pytest.mark.parametrize("body", [b"02\x1b0\x1b12", b"77\x1b00", b"01\x1b12a456\x1b", b"09"])
def test_dialog_bad_records_are_protocol_errors(body: bytes) -> None:
    """Malformed or unknown records raise ``ProtocolError``."""
    with pytest.raises(ProtocolError):
        d06.decode_record(body)


def test_dialog_parser_tokens() -> None:
    """Control bytes are tokens, records are joined across reads, stray bytes are counted."""
    parser = d06.Dialog06Parser()
    assert parser.feed(bytes.fromhex("06 15 41 02 30 39")) == [d06.ACK, d06.NAK]
    assert parser.feed(bytes.fromhex("1B 32 30 03 04")) == [b"09\x1b20", d06.EOT]
    assert parser.discarded == 1


def test_dialog_parser_eot_aborts_a_record() -> None:
    """An EOT inside a record drops the partial record and is reported."""
    parser = d06.Dialog06Parser()
    assert parser.feed(bytes.fromhex("02 30 31 04 05")) == [d06.EOT, d06.ENQ]
    assert parser.discarded == 3


# --- Dialog 06: checksum ---------------------------------------------------------------------


@pytest.mark.parametrize(("polynomial", "check"), [(0x1021, 0x31C3), (0x8005, 0xFEE8)])
def test_dialog_crc16_matches_catalogued_check_values(polynomial: int, check: int) -> None:
    """The CRC core gives the published check values of CRC-16/XMODEM and CRC-16/UMTS."""
    assert d06.Dialog06Checksum(polynomial).crc16(b"123456789") == check


def test_dialog_checksum_answer_from_polynomial() -> None:
    """CS is the CRC of Z and KW the CRC of Z + CS (checked against binascii's CRC-CCITT)."""
    z = b"4207"
    cs = binascii.crc_hqx(z, 0)
    kw = binascii.crc_hqx(z + b"%04X" % cs, 0)
    assert d06.Dialog06Checksum(0x1021).answer(z) == d06.ChecksumAnswer(f"{cs:04X}", f"{kw:04X}")
    assert d06.Dialog06Checksum(0x8005).answer(z) != d06.Dialog06Checksum(0x1021).answer(z)


def test_dialog_polynomial_is_configuration_not_a_constant() -> None:
    """Neither the checksum nor the driver has a default polynomial; 0 is refused."""
    assert inspect.signature(d06.Dialog06Checksum).parameters["polynomial"].default is (
        inspect.Parameter.empty)
    assert inspect.signature(d06.Dialog06Scale).parameters["polynomial"].default is (
        inspect.Parameter.empty)
    with pytest.raises(ValueError, match="polynomial"):
        d06.Dialog06Checksum(0)


# --- line settings ---------------------------------------------------------------------------


def test_line_settings() -> None:
    """Real scales run 9600 7E1 (Toledo) and 7O1 (Dialog 06); ptys use 8N1."""
    assert SerialSettings(9600, 7, "E", 1) == TOLEDO_8217_LINE
    assert SerialSettings(9600, 7, "O", 1) == DIALOG_06_LINE
    assert SerialSettings(9600, 8, "N", 1) == PTY_LINE
