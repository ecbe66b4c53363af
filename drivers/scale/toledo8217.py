"""Mettler Toledo 8217 (and 8213) scales: the sans-I/O codec and the async driver.

Wire protocol (PERIPHERALS.md § Scales): 9600 baud 7E1, single ASCII command bytes.

* ``W`` → ``STX ww.www CR`` (kg; ``N`` before CR for a net weight), or ``STX ? <status> CR``
  when no weight can be given. Only a numeric reply is a stable weight.
* ``Z`` zero, ``T`` tare, ``T wwwww CR`` digital tare, ``C`` clear tare → a status reply.
* ``E`` starts echo mode (answered ``STX E CR``, then every byte is echoed), ``F`` ends it;
  ``Ehello`` is the non-destructive probe.
* Status byte: b0 in motion, b1 over capacity, b2 under zero, b3 outside zero range, b4 centre
  of zero, b5 net mode, b6 always 1, b7 parity — b6/b7 are masked when decoding.

Assumed where the table is silent: the digital tare ``wwwww`` is in grams (the ``ww.www`` kg
reading without its point); ``Z``/``T`` count as refused when their status reply shows motion
(or, for a tare, over capacity / under zero), and the driver raises ``DeviceFault`` then.

Weights are integer grams. The driver polls at most every ``poll_interval`` (0.2 s = 5 Hz) and
waits ``timeout`` (1 s) for bytes; silence makes the scale ``unavailable(no_answer)``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from drivers.errors import DeviceFault, ProtocolError
from drivers.scale.protocol import ScaleStatus, Weight
from drivers.scale.serial_transport import ByteTransport, Link, read_frame
from drivers.states import Backoff, DeviceState

STX = 0x02
CR = 0x0D
WEIGHT_REQUEST = b"W"
ZERO = b"Z"
TARE = b"T"
CLEAR_TARE = b"C"
ECHO_START = b"E"
ECHO_END = b"F"
ECHO_ACK = b"\x02E\r"
MAX_TARE_GRAMS = 99_999
MAX_WEIGHT_GRAMS = 99_999

_WEIGHT = re.compile(rb"(\d{1,3})\.(\d{3})(N?)")
_STATUS_BITS = 0x3F
_ALWAYS_ONE = 0x40


# --- codec -----------------------------------------------------------------------------------

def encode_set_tare(grams: int) -> bytes:
    """``T wwwww CR``: a digital tare of ``grams`` (0–99 999)."""
    if not 0 <= grams <= MAX_TARE_GRAMS:
        raise ValueError(f"tare out of range: {grams} g")
    return b"T%05d\r" % grams


def decode_status_byte(byte: int) -> ScaleStatus:
    """The flags of a status byte, b6 (always 1) and b7 (parity) masked."""
    return ScaleStatus(byte & _STATUS_BITS)


def encode_status_byte(status: ScaleStatus) -> int:
    """A status byte as the scale sends it: b6 set, b7 the even-parity bit."""
    byte = (status.value & _STATUS_BITS) | _ALWAYS_ONE
    return byte | (0x80 if byte.bit_count() % 2 else 0)


def encode_weight_reply(grams: int, *, net: bool = False) -> bytes:
    """``STX ww.www [N] CR`` for a stable weight in grams."""
    if not 0 <= grams <= MAX_WEIGHT_GRAMS:
        raise ValueError(f"weight out of range: {grams} g")
    kilos, rest = divmod(grams, 1000)
    return b"\x02%02d.%03d%s\r" % (kilos, rest, b"N" if net else b"")


def encode_status_reply(status: ScaleStatus) -> bytes:
    """``STX ? <status> CR``."""
    return bytes([STX, ord("?"), encode_status_byte(status), CR])


def decode_reply(body: bytes) -> Weight:
    """Decode a reply frame's body (between STX and CR) into a ``Weight``."""
    if len(body) == 2 and body[:1] == b"?":
        return Weight.not_stable(decode_status_byte(body[1]))
    match = _WEIGHT.fullmatch(body)
    if match is None:
        raise ProtocolError(f"not a Toledo 8217 reply: {body!r}", reason="bad_reply")
    grams = int(match[1]) * 1000 + int(match[2])
    net = match[3] == b"N"
    return Weight(grams, net, ScaleStatus.NET_MODE if net else ScaleStatus.STABLE)


class Toledo8217Parser:
    """Deframer for ``STX … CR`` replies; bytes outside a frame are counted in ``discarded``."""

    max_body = 16

    def __init__(self) -> None:
        self.discarded = 0
        self._body: bytearray | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return the bodies of the frames it completed."""
        frames: list[bytes] = []
        for byte in data:
            if byte == STX:
                self._restart()
            elif self._body is None:
                self.discarded += 1
            elif byte == CR:
                frames.append(bytes(self._body))
                self._body = None
            else:
                self._body.append(byte)
                if len(self._body) > self.max_body:
                    self._restart(keep=False)
        return frames

    def _restart(self, *, keep: bool = True) -> None:
        if self._body is not None:
            self.discarded += len(self._body) + 1
        self._body = bytearray() if keep else None


# --- driver ----------------------------------------------------------------------------------

ZERO_BLOCKERS = ScaleStatus.IN_MOTION | ScaleStatus.OUTSIDE_ZERO_RANGE
TARE_BLOCKERS = ScaleStatus.IN_MOTION | ScaleStatus.OVER_CAPACITY | ScaleStatus.UNDER_ZERO


class Toledo8217Scale:
    """A Toledo 8217 on a byte transport (``SerialTransport`` at 9600 7E1 on real hardware)."""

    def __init__(self, transport: ByteTransport, *, name: str = "toledo8217",
                 timeout: float = 1.0, poll_interval: float = 0.2,
                 backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._clock = clock
        self._link = Link(transport, name=name, backoff=backoff, clock=clock)
        self._last_poll: float | None = None

    @property
    def state(self) -> DeviceState:
        """The device state."""
        return self._link.state

    async def read_weight(self) -> Weight:
        """Send ``W`` (at most ``1 / poll_interval`` times a second) and decode the reply."""
        return decode_reply(await self._command(WEIGHT_REQUEST, poll=True))

    async def zero(self) -> None:
        """Send ``Z``; ``DeviceFault`` when the scale is in motion or outside the zero range."""
        await self._checked(ZERO, ZERO_BLOCKERS)

    async def tare(self) -> None:
        """Send ``T``; ``DeviceFault`` when the scale is in motion, over or under."""
        await self._checked(TARE, TARE_BLOCKERS)

    async def set_tare(self, grams: int) -> None:
        """Send the digital tare ``T wwwww CR``."""
        await self._checked(encode_set_tare(grams), TARE_BLOCKERS)

    async def clear_tare(self) -> None:
        """Send ``C``."""
        await self._checked(CLEAR_TARE, ScaleStatus.STABLE)

    async def probe(self, text: bytes = b"hello") -> bool:
        """Echo probe: ``E<text>`` must come back as ``STX E CR <text>``; ``F`` ends it."""
        expected = ECHO_ACK + text
        async with self._link.use() as transport:
            await transport.discard_input()
            await transport.write(ECHO_START + text)
            try:
                received = await self._read_exactly(transport, len(expected))
            finally:
                await transport.write(ECHO_END)
        return received == expected

    async def close(self) -> None:
        """Close the port."""
        await self._link.close()

    async def _checked(self, command: bytes, blockers: ScaleStatus) -> None:
        reply = decode_reply(await self._command(command))
        refused = reply.status & blockers
        if refused:
            reason = (refused.name or "refused").split("|")[0].lower()
            raise DeviceFault(f"scale refused {command!r}: {refused}", reason=reason)

    async def _command(self, command: bytes, *, poll: bool = False) -> bytes:
        async with self._link.use() as transport:
            if poll:
                await self._pace()
            await transport.discard_input()
            await transport.write(command)
            return await read_frame(transport, Toledo8217Parser(), timeout=self.timeout)

    async def _pace(self) -> None:
        now = self._clock()
        if self._last_poll is not None and now < self._last_poll + self.poll_interval:
            await asyncio.sleep(self._last_poll + self.poll_interval - now)
        self._last_poll = self._clock()

    async def _read_exactly(self, transport: ByteTransport, size: int) -> bytes:
        data = b""
        while len(data) < size:
            data += await transport.read(self.timeout)
        return data
