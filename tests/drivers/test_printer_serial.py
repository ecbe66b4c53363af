"""Serial and device-file printer drivers against the ESC/POS simulator on a real pty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from escpos.printer import Dummy

from drivers.errors import DeviceFault, DeviceUnavailable
from drivers.printer.file_printer import STATUS_UNKNOWN, FilePrinter, WriteOnlyFilePrinter
from drivers.printer.protocol import ReceiptPrinter
from drivers.printer.pty_simulator import PtyPrinterSimulator, pty_printer
from drivers.printer.serial_printer import SerialPrinter
from drivers.printer.simulator import DrawerKick, EscPosMachine, Fault
from drivers.states import Backoff, DeviceState, Status, error

WAIT = 10.0


def status_is(status: Status, reason: str | None = None) -> Callable[[DeviceState], bool]:
    """Build a state predicate for ``wait_for_state``."""
    return lambda state: state.status is status and (reason is None or state.reason == reason)


def text_job(*lines: str, code_page: str = "CP858") -> bytes:
    """Encode lines of text and a cut, the code page pinned after INIT."""
    dummy = Dummy()
    dummy.hw("INIT")
    dummy.charcode(code_page)
    for line in lines:
        dummy.textln(line)
    dummy.cut()
    return bytes(dummy.output)


@pytest.fixture
def sim() -> Iterator[PtyPrinterSimulator]:
    """A printer simulator plugged on a pty."""
    with pty_printer() as simulator:
        yield simulator


@pytest.fixture
async def printer(sim: PtyPrinterSimulator) -> AsyncIterator[SerialPrinter]:
    """A serial driver on the simulator's pty, ready."""
    async with SerialPrinter(sim.path, timeout=2.0, job_timeout=WAIT, poll_interval=0.05,
                             backoff=Backoff(base=0.02, cap=0.2)) as driver:
        await driver.wait_for_state(status_is(Status.READY), WAIT)
        yield driver


def test_drivers_follow_the_protocol(sim: PtyPrinterSimulator, tmp_path: Path) -> None:
    """Serial, file and write-only file printers all type-check as ReceiptPrinter."""
    printers: list[ReceiptPrinter] = [SerialPrinter(sim.path), FilePrinter(sim.path),
                                      WriteOnlyFilePrinter(str(tmp_path / "lp0"))]
    assert len(printers) == 3


async def test_prints_french_text_through_cp858(sim: PtyPrinterSimulator,
                                                printer: SerialPrinter) -> None:
    """A CP858 job sent over the pty comes back from the simulator as the same text."""
    await printer.print_job("job-1", text_job("Café crème   3,50 €", "€ é à ç"))
    assert sim.receipts == ["Café crème   3,50 €\n€ é à ç\n"]
    assert sim.unknown == []
    assert printer.state.status is Status.READY


async def test_status_answered_over_serial(sim: PtyPrinterSimulator,
                                           printer: SerialPrinter) -> None:
    """The status request is answered: drawer sensor and paper near end come through."""
    status = await printer.status()
    assert (status.fault, status.drawer_high, status.paper_near_end) == (None, False, False)
    sim.drawer_open = True
    sim.set_fault(Fault.PAPER_NEAR_END)
    status = await printer.status()
    assert (status.fault, status.drawer_high, status.paper_near_end) == (None, True, True)


async def test_drawer_kick_and_cover_open(sim: PtyPrinterSimulator,
                                          printer: SerialPrinter) -> None:
    """A kick reaches the wire as ESC p; an open cover refuses jobs with error(cover_open)."""
    await printer.kick_drawer(5, 100, 100)
    assert sim.kicks == [DrawerKick(5, 100, 100, bytes.fromhex("1B 70 01 32 32"))]
    sim.set_fault(Fault.COVER_OPEN)
    with pytest.raises(DeviceFault) as caught:
        await printer.print_job("job-1", text_job("hello"))
    assert caught.value.reason == "cover_open"
    assert printer.state == error("cover_open")


async def test_unplugged_and_back(sim: PtyPrinterSimulator, printer: SerialPrinter) -> None:
    """Simulator closed: unavailable, jobs refused; plugged back, the driver reopens and prints."""
    sim.unplug()
    await printer.wait_for_state(status_is(Status.UNAVAILABLE), WAIT)
    with pytest.raises(DeviceUnavailable):
        await printer.print_job("job-1", text_job("lost?"))
    sim.plug()
    await printer.wait_for_state(status_is(Status.READY), WAIT)
    await printer.print_job("job-1", text_job("back"))
    assert sim.receipts == ["back\n"]


async def test_missing_port_is_unavailable(tmp_path: Path) -> None:
    """A serial path that does not exist is unavailable(not_found), not a crash."""
    async with SerialPrinter(str(tmp_path / "ttyNONE"), poll_interval=0.05,
                             backoff=Backoff(base=0.02, cap=0.1)) as printer:
        state = await printer.wait_for_state(status_is(Status.UNAVAILABLE), WAIT)
    assert state.reason == "not_found"


async def test_bidirectional_file_printer(sim: PtyPrinterSimulator) -> None:
    """The device-file driver opened read-write prints and reads the status like serial."""
    async with FilePrinter(sim.path, timeout=2.0, job_timeout=WAIT, poll_interval=0.05,
                           backoff=Backoff(base=0.02, cap=0.2)) as printer:
        await printer.wait_for_state(status_is(Status.READY), WAIT)
        await printer.print_job("job-f", text_job("Итого: 12,00 руб.", code_page="CP866"))
        sim.drawer_open = True
        assert (await printer.status()).drawer_high
    assert sim.receipts == ["Итого: 12,00 руб.\n"]


async def test_write_only_file_printer(tmp_path: Path) -> None:
    """A write-only file gets the job's bytes; status is unknown, documented as such."""
    path = tmp_path / "lp0"
    path.touch()
    printer = WriteOnlyFilePrinter(str(path))
    await printer.print_job("job-w", text_job("Merci !"))
    await printer.kick_drawer(2, 50, 50)
    assert printer.state == STATUS_UNKNOWN
    with pytest.raises(DeviceUnavailable) as caught:
        await printer.status()
    assert caught.value.reason == "status_unknown"
    machine = EscPosMachine()
    machine.feed(path.read_bytes())
    assert machine.receipts == ["Merci !\n"]
    assert machine.kicks == [DrawerKick(2, 50, 50, bytes.fromhex("1B 70 00 19 19"))]


async def test_write_only_missing_file(tmp_path: Path) -> None:
    """A write-only printer whose file is missing raises DeviceUnavailable and says why."""
    printer = WriteOnlyFilePrinter(str(tmp_path / "nodir" / "lp0"))
    with pytest.raises(DeviceUnavailable):
        await printer.print_job("job-w", b"x")
    assert printer.state.status is Status.UNAVAILABLE
    assert printer.state.reason == "not_found"
