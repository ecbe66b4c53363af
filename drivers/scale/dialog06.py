"""Dialog 06 price-computing scales (Mettler Toledo, Bizerba, Dibal…): codec and async driver.

Wire protocol (PERIPHERALS.md § Scales): 9600 baud 7O1. Control bytes EOT 04, STX 02, ETX 03,
ENQ 05, ACK 06, NAK 15, ESC 1B (field separator). Weights are integer grams, prices integer
cents.

* POS → scale, each message opened by EOT: record 01 ``STX 01 ESC <unit price 6> ESC ETX``;
  03 adds the tare (4 digits, g), 04 the text (13 characters), 05 both; 08 status request;
  10 checksum answer ``STX 10 ESC <CS 4 hex><KW 4 hex> ETX``; ``EOT ENQ`` asks for the result.
* Scale → POS: ACK / NAK; record 02 ``STX 02 ESC <status 1> ESC <weight 5> ESC <unit price 6>
  ESC <price to pay 6> ETX``; 09 a status code (``STATUS_CODES``); 11 checksum request with a
  random value Z. The POS answers every scale record (02, 09, 11) with EOT; ACK/NAK are
  followed by the EOT that opens the POS's next message.

Known vs assumed. Known: the records and fields above, the status codes, that a checksum
handshake is requested after power-on, errors and every 50 weighings, and that CS and KW are
computed from Z with a generator polynomial the scale maker supplies. **Assumed** (the real
algorithm is maker-specific and not public; check it against the maker's manual before use):

* the handshake is requested as the answer to ``EOT ENQ``; after it the POS resends its price;
* CS = CRC-16 (MSB first, init 0x0000, no reflection, no final XOR) over the ASCII bytes of Z,
  KW = the same CRC over Z followed by the four ASCII hex digits of CS; both upper-case hex;
* in records 03/04/05 the extra fields follow the price, each after an ESC, and the record
  ends with ETX (record 01 keeps its documented trailing ESC).

The polynomial is always a parameter (``Dialog06Checksum(polynomial)``, from configuration);
there is no default in this code.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from drivers.errors import DeviceFault, ProtocolError
from drivers.scale.protocol import ScaleStatus, Weighing, Weight
from drivers.scale.serial_transport import ByteTransport, Link, read_frame
from drivers.states import Backoff, DeviceState

EOT, STX, ETX, ENQ, ACK, NAK, ESC = 0x04, 0x02, 0x03, 0x05, 0x06, 0x15, 0x1B
TEXT_WIDTH = 13
WEIGHING_REQUEST = bytes([EOT, ENQ])

STATUS_CODES: dict[int, str] = {
    0: "ok", 1: "general_error", 2: "parity_error",
    10: "bad_record", 11: "bad_price", 12: "bad_tare", 13: "bad_text",
    20: "in_motion", 21: "no_motion_since_last", 22: "measuring",
    30: "under_minimum", 31: "below_zero", 32: "overload",
}
#: Status codes that are a reading without a usable weight rather than an error.
WEIGHT_STATUS: dict[int, ScaleStatus] = {
    20: ScaleStatus.IN_MOTION, 22: ScaleStatus.IN_MOTION, 30: ScaleStatus.UNDER_MINIMUM,
    31: ScaleStatus.UNDER_ZERO, 32: ScaleStatus.OVER_CAPACITY,
}


# --- records ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PriceRecord:
    """Records 01/03/04/05: unit price (cents per kg), optional tare (g) and text."""

    unit_price_cents: int
    tare_grams: int | None = None
    text: str | None = None

    @property
    def number(self) -> str:
        """01 price, 03 + tare, 04 + text, 05 + both."""
        return {(False, False): "01", (True, False): "03",
                (False, True): "04", (True, True): "05"}[
            (self.tare_grams is not None, self.text is not None)]


@dataclass(frozen=True)
class StatusRequest:
    """Record 08."""


@dataclass(frozen=True)
class ChecksumAnswer:
    """Record 10: CS and KW, four upper-case hex digits each."""

    cs: str
    kw: str


@dataclass(frozen=True)
class WeighingRecord:
    """Record 02: the weighing result."""

    status: int
    grams: int
    unit_price_cents: int
    price_cents: int


@dataclass(frozen=True)
class StatusRecord:
    """Record 09: a status code (``STATUS_CODES``)."""

    code: int


@dataclass(frozen=True)
class ChecksumRequest:
    """Record 11: the scale asks for the checksum handshake with the random value Z."""

    z: bytes


Record = PriceRecord | StatusRequest | ChecksumAnswer | WeighingRecord | StatusRecord \
    | ChecksumRequest


# --- encoding --------------------------------------------------------------------------------

def _digits(value: int, width: int, what: str) -> bytes:
    if not 0 <= value < 10**width:
        raise ValueError(f"{what} out of range for {width} digits: {value}")
    return b"%0*d" % (width, value)


def encode_text(text: str) -> bytes:
    """Thirteen 7-bit characters: accents dropped, control bytes and non-ASCII replaced."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text)
                    if not unicodedata.combining(c))
    raw = plain.encode("ascii", errors="replace")[:TEXT_WIDTH]
    return bytes(b if 0x20 <= b < 0x7F else 0x3F for b in raw).ljust(TEXT_WIDTH)


def _fields(record: Record) -> list[bytes]:
    match record:
        case PriceRecord(price, tare, text):
            fields = [_digits(price, 6, "unit price")]
            fields += [] if tare is None else [_digits(tare, 4, "tare")]
            fields += [] if text is None else [encode_text(text)]
            return fields + ([b""] if record.number == "01" else [])
        case StatusRequest():
            return []
        case ChecksumAnswer(cs, kw):
            return [(cs + kw).encode("ascii")]
        case WeighingRecord(status, grams, price, to_pay):
            return [_digits(status, 1, "status"), _digits(grams, 5, "weight"),
                    _digits(price, 6, "unit price"), _digits(to_pay, 6, "price")]
        case StatusRecord(code):
            return [_digits(code, 2, "status code")]
        case ChecksumRequest(z):
            return [z]
    raise TypeError(f"not a Dialog 06 record: {record!r}")


_NUMBERS: dict[type, str] = {StatusRequest: "08", ChecksumAnswer: "10", WeighingRecord: "02",
                             StatusRecord: "09", ChecksumRequest: "11"}


def encode_record(record: Record) -> bytes:
    """``STX <nn> (ESC <field>)… ETX`` — without the EOT that opens a POS message."""
    number = record.number if isinstance(record, PriceRecord) else _NUMBERS[type(record)]
    body = b"".join(bytes([ESC]) + field for field in _fields(record))
    return bytes([STX]) + number.encode() + body + bytes([ETX])


def pos_message(record: Record) -> bytes:
    """A POS → scale message: EOT then the record."""
    return bytes([EOT]) + encode_record(record)


# --- decoding --------------------------------------------------------------------------------

def _number(field: bytes, width: int) -> int:
    if len(field) != width or not field.isdigit():
        raise ProtocolError(f"expected {width} digits, got {field!r}", reason="bad_record")
    return int(field)


def _decode_price(number: bytes, fields: list[bytes]) -> PriceRecord:
    expected = {b"01": 1, b"03": 2, b"04": 2, b"05": 3}[number]
    if len(fields) != expected:
        raise ProtocolError(f"record {number!r} has {len(fields)} fields", reason="bad_record")
    price = _number(fields[0], 6)
    tare = _number(fields[1], 4) if number in (b"03", b"05") else None
    text = fields[-1].decode("ascii") if number in (b"04", b"05") else None
    if text is not None and len(text) != TEXT_WIDTH:
        raise ProtocolError(f"text of {len(text)} characters", reason="bad_record")
    return PriceRecord(price, tare, text)


def _decode_checksum(fields: list[bytes]) -> ChecksumAnswer:
    value = fields[0].decode("ascii", errors="replace") if len(fields) == 1 else ""
    if len(value) != 8:
        raise ProtocolError(f"bad checksum record {fields!r}", reason="bad_record")
    return ChecksumAnswer(value[:4], value[4:])


def decode_record(body: bytes) -> Record:
    """Decode a record's body (between STX and ETX)."""
    number, *fields = body.split(bytes([ESC]))
    if number == b"01" and fields[-1:] == [b""]:
        fields = fields[:-1]
    try:
        return _decode_fields(number, fields)
    except (IndexError, ValueError) as exc:
        raise ProtocolError(f"bad record {body!r}", reason="bad_record") from exc


def _decode_fields(number: bytes, fields: list[bytes]) -> Record:
    if number in (b"01", b"03", b"04", b"05"):
        return _decode_price(number, fields)
    if number == b"08" and not fields:
        return StatusRequest()
    if number == b"10":
        return _decode_checksum(fields)
    if number == b"02" and len(fields) == 4:
        return WeighingRecord(_number(fields[0], 1), _number(fields[1], 5),
                              _number(fields[2], 6), _number(fields[3], 6))
    if number == b"09" and len(fields) == 1:
        return StatusRecord(_number(fields[0], 2))
    if number == b"11" and len(fields) == 1:
        return ChecksumRequest(fields[0])
    raise ProtocolError(f"unknown record {number!r} {fields!r}", reason="bad_record")


Token = int | bytes
"""What the deframer yields: a control byte (EOT, ENQ, ACK, NAK) or a record body."""


class Dialog06Parser:
    """Deframer: control bytes outside records and ``STX … ETX`` record bodies."""

    controls = frozenset({EOT, ENQ, ACK, NAK})
    max_body = 64

    def __init__(self) -> None:
        self.discarded = 0
        self._body: bytearray | None = None

    def feed(self, data: bytes) -> list[Token]:
        """Consume ``data``; return the tokens it completed."""
        tokens: list[Token] = []
        for byte in data:
            token = self._byte(byte)
            if token is not None:
                tokens.append(token)
        return tokens

    def _byte(self, byte: int) -> Token | None:
        if byte == STX or (byte == EOT and self._body is not None):
            self._drop()
            self._body = bytearray() if byte == STX else None
            return None if byte == STX else EOT
        if self._body is None:
            if byte in self.controls:
                return byte
            self.discarded += 1
            return None
        if byte == ETX:
            body, self._body = bytes(self._body), None
            return body
        self._body.append(byte)
        if len(self._body) > self.max_body:
            self._drop()
        return None

    def _drop(self) -> None:
        if self._body is not None:
            self.discarded += len(self._body) + 1
        self._body = None


# --- checksum --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dialog06Checksum:
    """CS/KW of the checksum handshake, from the maker's generator polynomial (configuration).

    The CRC shape is an assumption, see the module docstring.
    """

    polynomial: int
    init: int = 0x0000

    def __post_init__(self) -> None:
        if not 0 < self.polynomial <= 0xFFFF:
            raise ValueError(f"a 16-bit generator polynomial is required, got {self.polynomial}")

    def crc16(self, data: bytes) -> int:
        """CRC-16, MSB first, no reflection, no final XOR."""
        crc = self.init
        for byte in data:
            crc ^= byte << 8
            for _ in range(8):
                crc = ((crc << 1) ^ self.polynomial) if crc & 0x8000 else crc << 1
                crc &= 0xFFFF
        return crc

    def answer(self, z: bytes) -> ChecksumAnswer:
        """The record 10 answering the challenge ``z``."""
        cs = f"{self.crc16(z):04X}"
        return ChecksumAnswer(cs, f"{self.crc16(z + cs.encode('ascii')):04X}")


# --- driver ----------------------------------------------------------------------------------

class Dialog06Scale:
    """A Dialog 06 scale on a byte transport (``SerialTransport`` at 9600 7O1 on hardware).

    ``read_weight`` weighs at ``unit_price_cents`` (settable). Zero and tare-from-platform are
    done on the scale's own keys: over Dialog 06 they raise ``DeviceFault(reason="unsupported")``.
    A tare set with ``set_tare`` is sent with every price record until cleared.
    """

    def __init__(self, transport: ByteTransport, *, polynomial: int, name: str = "dialog06",
                 timeout: float = 1.0, unit_price_cents: int = 0,
                 backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.checksum = Dialog06Checksum(polynomial)
        self.timeout = timeout
        self.unit_price_cents = unit_price_cents
        self.tare_grams: int | None = None
        self._link = Link(transport, name=name, backoff=backoff, clock=clock,
                          stateful_faults=frozenset({"checksum_rejected", "general_error"}))

    @property
    def state(self) -> DeviceState:
        """The device state."""
        return self._link.state

    async def read_weight(self) -> Weight:
        """Weigh at ``unit_price_cents`` and return the weight."""
        return (await self.weigh(self.unit_price_cents)).weight

    async def weigh(self, unit_price_cents: int, *, text: str | None = None) -> Weighing:
        """Send the price (with tare and text), ask for the result, handshake if asked."""
        record = PriceRecord(unit_price_cents, self.tare_grams, text)
        async with self._link.use() as transport:
            await transport.discard_input()
            await self._send(transport, record)
            for _ in range(2):
                reply = await self._ask(transport, WEIGHING_REQUEST)
                if not isinstance(reply, ChecksumRequest):
                    return self._weighing(reply)
                await self._send(transport, self.checksum.answer(reply.z), "checksum_rejected")
                await self._send(transport, record)
        raise ProtocolError("the scale asked for the checksum twice", reason="checksum_loop")

    async def status(self) -> int:
        """Record 08: the scale's status code (``STATUS_CODES``); a non-destructive probe."""
        async with self._link.use() as transport:
            await transport.discard_input()
            reply = await self._ask(transport, pos_message(StatusRequest()))
        if not isinstance(reply, StatusRecord):
            raise ProtocolError(f"unexpected answer to 08: {reply!r}", reason="bad_reply")
        return reply.code

    async def zero(self) -> None:
        """Not possible over Dialog 06 (the scale's zero key does it)."""
        raise DeviceFault("Dialog 06 cannot zero the scale", reason="unsupported")

    async def tare(self) -> None:
        """Not possible over Dialog 06: use ``set_tare`` or the scale's tare key."""
        raise DeviceFault("Dialog 06 cannot take the tare", reason="unsupported")

    async def set_tare(self, grams: int) -> None:
        """Send ``grams`` (0–9 999) as tare with the next price records."""
        _digits(grams, 4, "tare")
        self.tare_grams = grams

    async def clear_tare(self) -> None:
        """Stop sending a tare."""
        self.tare_grams = None

    async def close(self) -> None:
        """Close the port."""
        await self._link.close()

    async def _send(self, transport: ByteTransport, record: Record,
                    refusal: str = "record_rejected") -> None:
        await transport.write(pos_message(record))
        token = await self._read(transport)
        if token == NAK:
            raise DeviceFault(f"scale refused record {encode_record(record)!r}", reason=refusal)
        if token != ACK:
            raise ProtocolError(f"expected ACK, got {token!r}", reason="bad_reply")

    async def _ask(self, transport: ByteTransport, message: bytes) -> Record:
        await transport.write(message)
        token = await self._read(transport)
        if not isinstance(token, bytes):
            raise ProtocolError(f"expected a record, got {token!r}", reason="bad_reply")
        await transport.write(bytes([EOT]))
        return decode_record(token)

    async def _read(self, transport: ByteTransport) -> Token:
        return await read_frame(transport, Dialog06Parser(), timeout=self.timeout)

    def _weighing(self, reply: Record) -> Weighing:
        if isinstance(reply, WeighingRecord):
            net = self.tare_grams is not None
            status = ScaleStatus.NET_MODE if net else ScaleStatus.STABLE
            return Weighing(Weight(reply.grams, net, status), reply.unit_price_cents,
                            reply.price_cents)
        if isinstance(reply, StatusRecord) and reply.code in WEIGHT_STATUS:
            return Weighing(Weight.not_stable(WEIGHT_STATUS[reply.code]))
        if isinstance(reply, StatusRecord):
            reason = STATUS_CODES.get(reply.code, f"status_{reply.code:02d}")
            raise DeviceFault(f"scale status {reply.code:02d} ({reason})", reason=reason)
        raise ProtocolError(f"unexpected answer to ENQ: {reply!r}", reason="bad_reply")
