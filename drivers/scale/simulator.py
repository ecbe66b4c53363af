"""Wire-level scale simulators (Toledo 8217, Dialog 06) on a real pty, with fault injection.

``ScaleSimulator`` serves a ``drivers.pty_link.PtyLink`` (a raw pty behind a stable symlink,
like the display and scanner simulators) from one thread and publishes the path (``.path``)
for a driver to open with pyserial. Use 8N1 (``PTY_LINE``) on the driver side: reopening a pty
with 7-bit settings fails.

The physical scale is a ``Platform`` (gross weight, motion, zero, tare, capacity), shared by
two sans-I/O device models that speak the protocols: ``ToledoModel`` and ``Dialog06Model``.
Settable from tests (and, later, a ``tillbox sim scale`` command): ``set_weight``, ``set_motion``,
``set_outside_zero_range``; faults: ``silent`` (the scale neither reads nor answers, like a
cut cable) and ``garbage`` (each answer replaced by these bytes).

    with scale_simulator("toledo8217") as sim:
        scale = pty_driver(sim)          # a real driver on sim.path, 8N1
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from drivers.errors import ProtocolError
from drivers.pty_link import PtyLink
from drivers.scale import dialog06 as d06
from drivers.scale import toledo8217 as t8217
from drivers.scale.dialog06 import Dialog06Scale
from drivers.scale.protocol import ScaleStatus
from drivers.scale.serial_transport import PTY_LINE, SerialTransport
from drivers.scale.toledo8217 import Toledo8217Scale

ScaleProtocolName = Literal["toledo8217", "dialog06"]
DEFAULT_GARBAGE = b"\x7f#garbage#\xff"


@dataclass
class Platform:
    """The physical scale: what lies on it, where zero is, the tare and the capacity (grams)."""

    gross_grams: int = 0
    zero_offset: int = 0
    tare_grams: int = 0
    capacity_grams: int = 15_000
    in_motion: bool = False
    outside_zero_range: bool = False
    changes: int = 0

    @property
    def displayed(self) -> int:
        """Gross weight above zero."""
        return self.gross_grams - self.zero_offset

    @property
    def net(self) -> int:
        """Displayed weight minus tare."""
        return self.displayed - self.tare_grams

    def status(self) -> ScaleStatus:
        """The flags a scale would report now."""
        flags = ScaleStatus.STABLE
        for on, flag in ((self.in_motion, ScaleStatus.IN_MOTION),
                         (self.displayed > self.capacity_grams, ScaleStatus.OVER_CAPACITY),
                         (self.displayed < 0 or self.net < 0, ScaleStatus.UNDER_ZERO),
                         (self.outside_zero_range, ScaleStatus.OUTSIDE_ZERO_RANGE),
                         (self.displayed == 0, ScaleStatus.CENTER_OF_ZERO),
                         (self.tare_grams > 0, ScaleStatus.NET_MODE)):
            if on:
                flags |= flag
        return flags


class ScaleModel(Protocol):
    """A sans-I/O device: bytes from the POS in, bytes to the POS out."""

    platform: Platform

    def feed(self, data: bytes) -> bytes:
        """Consume bytes from the POS; return the answer."""
        ...

    def idle(self) -> bytes:
        """The line has been quiet for a moment; return what the scale sends then."""
        ...


_TOLEDO_BLOCKERS = ScaleStatus.IN_MOTION | ScaleStatus.OVER_CAPACITY | ScaleStatus.UNDER_ZERO \
    | ScaleStatus.OUTSIDE_ZERO_RANGE


class ToledoModel:
    """Toledo 8217: ``W``, ``Z``, ``T``, ``T wwwww CR``, ``C``, echo mode ``E`` … ``F``.

    A lone ``T`` (no digit follows before the line goes quiet) is the pushbutton-like tare.
    """

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._echo = False
        self._tare_digits: bytearray | None = None

    def feed(self, data: bytes) -> bytes:
        """Consume bytes; return the replies."""
        return b"".join(self._byte(byte) for byte in data)

    def idle(self) -> bytes:
        """A pending lone ``T`` is a tare; a cut-off digital tare is dropped."""
        digits, self._tare_digits = self._tare_digits, None
        return self._tare() if digits == bytearray() else b""

    def _byte(self, byte: int) -> bytes:
        if self._echo:
            self._echo = byte != ord("F")
            return bytes([byte]) if self._echo else b""
        if self._tare_digits is not None:
            return self._tare_byte(byte)
        handlers: dict[int, Callable[[], bytes]] = {
            ord("W"): self._weigh, ord("Z"): self._zero, ord("C"): self._clear,
            ord("T"): self._start_tare, ord("E"): self._start_echo}
        handler = handlers.get(byte)
        return handler() if handler else b""

    def _tare_byte(self, byte: int) -> bytes:
        assert self._tare_digits is not None
        if ord("0") <= byte <= ord("9") and len(self._tare_digits) < 5:
            self._tare_digits.append(byte)
            return b""
        digits, self._tare_digits = bytes(self._tare_digits), None
        if byte == t8217.CR and digits:
            self.platform.tare_grams = int(digits)
            return self._status()
        return (self._tare() if not digits else b"") + self._byte(byte)

    def _status(self) -> bytes:
        return t8217.encode_status_reply(self.platform.status())

    def _weigh(self) -> bytes:
        p = self.platform
        if p.status() & _TOLEDO_BLOCKERS or p.net > t8217.MAX_WEIGHT_GRAMS:
            return self._status()
        return t8217.encode_weight_reply(p.net, net=p.tare_grams > 0)

    def _zero(self) -> bytes:
        if not self.platform.status() & t8217.ZERO_BLOCKERS:
            self.platform.zero_offset = self.platform.gross_grams
        return self._status()

    def _start_tare(self) -> bytes:
        self._tare_digits = bytearray()
        return b""

    def _tare(self) -> bytes:
        if not self.platform.status() & t8217.TARE_BLOCKERS:
            self.platform.tare_grams = max(self.platform.displayed, 0)
        return self._status()

    def _clear(self) -> bytes:
        self.platform.tare_grams = 0
        return self._status()

    def _start_echo(self) -> bytes:
        self._echo = True
        return t8217.ECHO_ACK


class Dialog06Model:
    """Dialog 06: price records, ``EOT ENQ`` weighings, status, the checksum handshake.

    The handshake is due at power-on and every ``handshake_every`` weighings; a weighing is
    refused with code 21 until the load changes (legal-for-trade rule).
    """

    def __init__(self, platform: Platform, *, polynomial: int, handshake_every: int = 50,
                 minimum_grams: int = 40, seed: int = 0) -> None:
        self.platform = platform
        self.checksum = d06.Dialog06Checksum(polynomial)
        self.handshake_every = handshake_every
        self.minimum_grams = minimum_grams
        self.handshake_due = True
        self.handshakes = 0
        self.price: d06.PriceRecord | None = None
        self._parser = d06.Dialog06Parser()
        self._rng = random.Random(seed)
        self._z: bytes | None = None
        self._weighings = 0
        self._weighed_at: int | None = None

    def feed(self, data: bytes) -> bytes:
        """Consume bytes; return the answers."""
        return b"".join(self._token(token) for token in self._parser.feed(data))

    def idle(self) -> bytes:
        """Nothing is sent unasked."""
        return b""

    def _token(self, token: d06.Token) -> bytes:
        if token == d06.ENQ:
            return d06.encode_record(self._result())
        if not isinstance(token, bytes):
            return b""
        try:
            return self._record(d06.decode_record(token))
        except ProtocolError:
            return bytes([d06.NAK])

    def _record(self, record: d06.Record) -> bytes:
        if isinstance(record, d06.PriceRecord):
            self.price = record
            return bytes([d06.ACK])
        if isinstance(record, d06.StatusRequest):
            return d06.encode_record(d06.StatusRecord(self._status_code()))
        if isinstance(record, d06.ChecksumAnswer) and self._z is not None \
                and record == self.checksum.answer(self._z):
            self.handshake_due, self._z, self._weighings = False, None, 0
            self.handshakes += 1
            return bytes([d06.ACK])
        return bytes([d06.NAK])

    def _result(self) -> d06.Record:
        if self.handshake_due:
            self._z = b"%04d" % self._rng.randrange(10_000)
            return d06.ChecksumRequest(self._z)
        if self.price is None:
            return d06.StatusRecord(11)
        code = self._status_code()
        if code:
            return d06.StatusRecord(code)
        if self._weighed_at == self.platform.changes:
            return d06.StatusRecord(21)
        return self._weighing(self.price)

    def _weighing(self, price: d06.PriceRecord) -> d06.Record:
        net = self._net()
        to_pay = (net * price.unit_price_cents + 500) // 1000
        if to_pay >= 10**6:
            return d06.StatusRecord(11)
        self._weighed_at = self.platform.changes
        self._weighings += 1
        self.handshake_due = self._weighings >= self.handshake_every
        return d06.WeighingRecord(0, net, price.unit_price_cents, to_pay)

    def _net(self) -> int:
        tare = self.price.tare_grams if self.price and self.price.tare_grams else 0
        return self.platform.net - tare

    def _status_code(self) -> int:
        p = self.platform
        if p.in_motion:
            return 20
        if p.displayed > p.capacity_grams:
            return 32
        if p.displayed < 0 or self._net() < 0:
            return 31
        if self._net() < self.minimum_grams:
            return 30
        return 0


class ScaleSimulator:
    """A scale model served on a :class:`PtyLink` from one thread; see the module doc."""

    def __init__(self, model: ScaleModel, *, idle_interval: float = 0.05,
                 name: str = "ttySCALE") -> None:
        self.model = model
        self.idle_interval = idle_interval
        self.silent = False
        self.garbage: bytes | None = None
        self.path = ""
        self._received = bytearray()
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._name = name
        self._link: PtyLink | None = None
        self._thread: threading.Thread | None = None

    @property
    def platform(self) -> Platform:
        """The simulated physical scale (mutate it through the setters)."""
        return self.model.platform

    def start(self) -> str:
        """Open the pty, start serving, return the path for the driver."""
        link = PtyLink(self._name)
        self._link, self.path = link, link.path
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(link,),
                                        name=f"scale sim {self.path}", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        """Stop serving and close the pty (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def __enter__(self) -> ScaleSimulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_weight(self, grams: int) -> None:
        """Put ``grams`` on the platform (a change of load)."""
        self._change(gross_grams=grams)

    def set_motion(self, moving: bool) -> None:
        """Make the platform move or settle."""
        self._change(in_motion=moving)

    def set_outside_zero_range(self, outside: bool) -> None:
        """Make zeroing impossible (or possible again)."""
        self._change(outside_zero_range=outside)

    def received(self) -> bytes:
        """Every byte the POS sent while the scale was listening."""
        with self._lock:
            return bytes(self._received)

    def wait_received(self, count: int, timeout: float = 5.0) -> bytes:
        """Block until the scale has received at least ``count`` bytes; return them all."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._received) >= count, timeout):
                raise TimeoutError(f"received {len(self._received)} of {count} bytes")
            return bytes(self._received)

    def _change(self, **values: int | bool) -> None:
        with self._lock:
            for name, value in values.items():
                setattr(self.platform, name, value)
            self.platform.changes += 1

    def _serve(self, link: PtyLink) -> None:
        while not self._stop.is_set():
            answer = self._answer(link.read(self.idle_interval))
            if answer:
                link.write(answer)

    def _answer(self, data: bytes) -> bytes:
        with self._lock:
            if self.silent:
                return b""
            self._received += data
            self._lock.notify_all()
            answer = self.model.feed(data) if data else self.model.idle()
            return self.garbage if answer and self.garbage is not None else answer


def scale_simulator(protocol: ScaleProtocolName, *, polynomial: int | None = None,
                    handshake_every: int = 50, platform: Platform | None = None
                    ) -> ScaleSimulator:
    """A (not yet started) simulator for ``protocol``; Dialog 06 needs ``polynomial``."""
    platform = platform or Platform()
    if protocol == "toledo8217":
        return ScaleSimulator(ToledoModel(platform))
    if polynomial is None:
        raise ValueError("a Dialog 06 simulator needs the checksum polynomial")
    return ScaleSimulator(Dialog06Model(platform, polynomial=polynomial,
                                        handshake_every=handshake_every))


def pty_driver(sim: ScaleSimulator, *, timeout: float = 1.0
               ) -> Toledo8217Scale | Dialog06Scale:
    """A real driver on the simulator's pty (8N1), matching the simulator's protocol."""
    transport = SerialTransport(sim.path, PTY_LINE)
    if isinstance(sim.model, Dialog06Model):
        return Dialog06Scale(transport, polynomial=sim.model.checksum.polynomial,
                             timeout=timeout)
    return Toledo8217Scale(transport, timeout=timeout)

