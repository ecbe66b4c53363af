"""ESC/POS status, sans I/O: the request bytes the driver sends itself, and typed status parsing.

Real-time requests (``DLE EOT n``) are answered at once, even while the printer is offline; every
answer byte has the fixed pattern ``0xx1xx10`` (bits 1 and 4 set, bits 0 and 7 clear). ``GS r n``
is answered only after everything received before it was processed, so it doubles as a "printed up
to here" barrier; its answer has bits 4 and 7 clear. Anything else is a :class:`ProtocolError`.

The drawer pulse ``ESC p m t1 t2`` lives here too: it is the one print command the driver builds
itself (receipt content comes from the encoder).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import ProtocolError

DLE, EOT, GS, ESC = 0x10, 0x04, 0x1D, 0x1B


def dle_eot(n: int) -> bytes:
    """Return the real-time status request ``DLE EOT n`` (n = 1 printer … 4 roll paper sensor)."""
    if n not in (1, 2, 3, 4):
        raise ValueError(f"DLE EOT n must be 1-4, not {n}")
    return bytes((DLE, EOT, n))


def gs_r(n: int) -> bytes:
    """Return the transmit-status request ``GS r n`` (1 paper sensor, 2 drawer connector)."""
    if n not in (1, 2):
        raise ValueError(f"GS r n must be 1 or 2, not {n}")
    return bytes((GS, ord("r"), n))


STATUS_REQUEST = dle_eot(1) + dle_eot(2) + dle_eot(3) + dle_eot(4)
"""The four real-time requests in one write; the answer is four bytes, in that order."""
PAPER_SENSOR_REQUEST = gs_r(1)
DRAWER_SENSOR_REQUEST = gs_r(2)


def drawer_kick(pin: int, on_ms: int, off_ms: int) -> bytes:
    """Return ``ESC p m t1 t2``: pulse connector pin 2 (m 0) or 5 (m 1), times in 2 ms units."""
    if pin not in (2, 5):
        raise ValueError(f"drawer pin must be 2 or 5, not {pin}")
    return bytes((ESC, ord("p"), 0 if pin == 2 else 1, _two_ms(on_ms), _two_ms(off_ms)))


def _two_ms(ms: int) -> int:
    if not 2 <= ms <= 510:
        raise ValueError(f"drawer pulse time must be 2-510 ms, not {ms}")
    return ms // 2


def _bit(byte: int, n: int) -> bool:
    return bool(byte >> n & 1)


def check_realtime(byte: int) -> int:
    """Return a ``DLE EOT`` answer byte, or raise :class:`ProtocolError` if not ``0xx1xx10``."""
    if byte & 0b1001_0011 != 0b0001_0010:
        raise ProtocolError(f"not a DLE EOT status byte: 0x{byte:02X}", reason="bad_status")
    return byte


def check_transmit(byte: int) -> int:
    """Return a ``GS r`` answer byte, or raise :class:`ProtocolError` if bit 4 or 7 is set."""
    if byte & 0b1001_0000:
        raise ProtocolError(f"not a GS r status byte: 0x{byte:02X}", reason="bad_status")
    return byte


@dataclass(frozen=True)
class PrinterByte:
    """``DLE EOT 1``: b2 drawer pin 3 high, b3 offline, b5 waiting recovery, b6 feed pressed."""

    drawer_high: bool
    offline: bool
    waiting_recovery: bool
    feed_pressed: bool


@dataclass(frozen=True)
class OfflineCause:
    """``DLE EOT 2``: b2 cover open, b3 fed by button, b5 stopped at paper end, b6 error."""

    cover_open: bool
    feeding_by_button: bool
    paper_end_stop: bool
    error: bool


@dataclass(frozen=True)
class ErrorCause:
    """``DLE EOT 3``: b2 recoverable, b3 cutter, b5 unrecoverable, b6 auto-recoverable."""

    recoverable: bool
    cutter: bool
    unrecoverable: bool
    auto_recoverable: bool


@dataclass(frozen=True)
class RollSensor:
    """``DLE EOT 4`` (b2+b3 near end, b5+b6 paper end) or ``GS r 1`` (b0+b1, b2+b3)."""

    near_end: bool
    paper_end: bool


def parse_printer(byte: int) -> PrinterByte:
    """Parse the answer to ``DLE EOT 1``."""
    b = check_realtime(byte)
    return PrinterByte(_bit(b, 2), _bit(b, 3), _bit(b, 5), _bit(b, 6))


def parse_offline_cause(byte: int) -> OfflineCause:
    """Parse the answer to ``DLE EOT 2``."""
    b = check_realtime(byte)
    return OfflineCause(_bit(b, 2), _bit(b, 3), _bit(b, 5), _bit(b, 6))


def parse_error_cause(byte: int) -> ErrorCause:
    """Parse the answer to ``DLE EOT 3``."""
    b = check_realtime(byte)
    return ErrorCause(_bit(b, 2), _bit(b, 3), _bit(b, 5), _bit(b, 6))


def parse_roll_sensor(byte: int) -> RollSensor:
    """Parse the answer to ``DLE EOT 4``; either bit of a pair counts."""
    b = check_realtime(byte)
    return RollSensor(near_end=bool(b & 0x0C), paper_end=bool(b & 0x60))


def parse_paper_sensor(byte: int) -> RollSensor:
    """Parse the answer to ``GS r 1``; either bit of a pair counts."""
    b = check_transmit(byte)
    return RollSensor(near_end=bool(b & 0x03), paper_end=bool(b & 0x0C))


def parse_drawer_sensor(byte: int) -> bool:
    """Parse the answer to ``GS r 2``: whether drawer connector pin 3 is high."""
    return _bit(check_transmit(byte), 0)


@dataclass(frozen=True)
class PrinterStatus:
    """Everything the four ``DLE EOT`` answers say, with the fault that stops printing, if any.

    ``drawer_high`` is the raw pin 3 level: whether high means "open" depends on the drawer and
    is configured by the caller.
    """

    printer: PrinterByte
    offline_cause: OfflineCause
    error_cause: ErrorCause
    roll: RollSensor

    @property
    def online(self) -> bool:
        """Whether the printer accepts print data."""
        return not self.printer.offline

    @property
    def cover_open(self) -> bool:
        """Whether the cover is open."""
        return self.offline_cause.cover_open

    @property
    def paper_out(self) -> bool:
        """Whether the roll is out (roll sensor or a stop at paper end)."""
        return self.roll.paper_end or self.offline_cause.paper_end_stop

    @property
    def paper_near_end(self) -> bool:
        """Whether the roll is nearly out (a warning, not a fault)."""
        return self.roll.near_end

    @property
    def drawer_high(self) -> bool:
        """Whether drawer connector pin 3 is high."""
        return self.printer.drawer_high

    @property
    def fault(self) -> str | None:
        """The stable reason printing is stopped, most specific first, or None when it is not."""
        causes = (
            (self.cover_open, "cover_open"),
            (self.paper_out, "paper_out"),
            (self.error_cause.cutter, "cutter_error"),
            (self.error_cause.unrecoverable, "unrecoverable_error"),
            (self.error_cause.recoverable, "recoverable_error"),
            (self.error_cause.auto_recoverable, "auto_recoverable_error"),
            (self.offline_cause.error, "error"),
            (self.printer.offline, "offline"),
        )
        return next((reason for active, reason in causes if active), None)


def parse_status(answer: bytes) -> PrinterStatus:
    """Parse the four answer bytes to :data:`STATUS_REQUEST`."""
    if len(answer) != 4:
        raise ProtocolError(f"expected 4 status bytes, got {answer.hex(' ')}", reason="bad_status")
    return PrinterStatus(
        parse_printer(answer[0]),
        parse_offline_cause(answer[1]),
        parse_error_cause(answer[2]),
        parse_roll_sensor(answer[3]),
    )
