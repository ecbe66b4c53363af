"""The USB printer driver (pyusb) against a simulated printer behind a pyusb backend.

The backend (``drivers.printer.usb_backend_sim``) presents real descriptors and moves the bulk
OUT / bulk IN bytes to and from the ESC/POS machine: the printer contract of the TCP and serial
drivers, run on USB, plus what is USB's own (usblp, replug with a new address, permissions,
two identical printers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import usb.core
import usb.util
from escpos.printer import Dummy
from PIL import Image

from drivers.errors import DeviceFault, DeviceTimeout, DeviceUnavailable
from drivers.printer.protocol import ReceiptPrinter
from drivers.printer.simulator import DrawerKick, Fault
from drivers.printer.usb_backend_sim import SimUsbBackend, UsbPrinterSimulator
from drivers.printer.usb_printer import UsbPrinter, port_path
from drivers.states import Backoff, DeviceState, Status, error

WAIT = 10.0
VID, PID = 0x04B8, 0x0E15


def status_is(status: Status, reason: str | None = None) -> Callable[[DeviceState], bool]:
    return lambda state: state.status is status and (reason is None or state.reason == reason)


def text_job(*lines: str, code_page: str = "CP858") -> bytes:
    dummy = Dummy()
    dummy.hw("INIT")
    dummy.charcode(code_page)
    for line in lines:
        dummy.textln(line)
    dummy.cut()
    return bytes(dummy.output)


def new_printer(backend: SimUsbBackend, *, timeout: float = 2.0, serial: str | None = None,
                port: str | None = None) -> UsbPrinter:
    return UsbPrinter(VID, PID, serial=serial, port_path=port, backend=backend, timeout=timeout,
                      job_timeout=WAIT, poll_interval=0.05, backoff=Backoff(base=0.02, cap=0.2))


@pytest.fixture
def sim() -> UsbPrinterSimulator:
    return UsbPrinterSimulator(vendor_id=VID, product_id=PID, serial="X5E7012345")


@pytest.fixture
def backend(sim: UsbPrinterSimulator) -> SimUsbBackend:
    return SimUsbBackend(sim)


@pytest.fixture
async def printer(backend: SimUsbBackend) -> AsyncIterator[UsbPrinter]:
    async with new_printer(backend) as driver:
        await driver.wait_for_state(status_is(Status.READY), WAIT)
        yield driver


def test_the_simulated_device_looks_like_a_usb_printer(sim: UsbPrinterSimulator,
                                                       backend: SimUsbBackend) -> None:
    """pyusb sees a printer-class interface with bulk OUT/IN, strings and a 1284 device id."""
    device = usb.core.find(idVendor=VID, idProduct=PID, backend=backend)
    assert device is not None
    interface = device.get_active_configuration()[(0, 0)]
    assert (interface.bInterfaceClass, interface.bInterfaceSubClass) == (7, 1)
    assert sorted(e.bEndpointAddress for e in interface) == [0x01, 0x82]
    assert (device.manufacturer, device.serial_number) == ("Tillbox", "X5E7012345")
    assert port_path(device) == "1-2"
    assert device.is_kernel_driver_active(0)
    device.detach_kernel_driver(0)  # class requests claim the interface, which usblp holds
    device_id = bytes(device.ctrl_transfer(0xA1, 0, 0, 0, 1024))
    assert int.from_bytes(device_id[:2], "big") == len(device_id)
    assert b"CMD:ESC/POS;" in device_id
    assert bytes(device.ctrl_transfer(0xA1, 1, 0, 0, 1)) == b"\x18"
    usb.util.dispose_resources(device)


def test_driver_follows_the_protocol(backend: SimUsbBackend) -> None:
    printer: ReceiptPrinter = new_printer(backend)
    assert str(printer) == "usb:04b8:0e15"


async def test_prints_french_text_through_cp858(sim: UsbPrinterSimulator,
                                                printer: UsbPrinter) -> None:
    """A CP858 job written to bulk OUT comes out of the simulator as the same text."""
    await printer.print_job("job-1", text_job("Café crème   3,50 €", "€ é à ç"))
    assert sim.receipts == ["Café crème   3,50 €\n€ é à ç\n"]
    assert sim.unknown == []
    assert printer.state.status is Status.READY


async def test_usblp_is_detached_before_claiming(sim: UsbPrinterSimulator,
                                                 printer: UsbPrinter) -> None:
    """The kernel's usblp held the interface: the driver detached it once and claimed it."""
    assert (sim.kernel_driver_active, sim.detaches) == (False, 1)
    assert sim.claimed_by is not None


async def test_prints_cyrillic_through_cp866(sim: UsbPrinterSimulator,
                                             printer: UsbPrinter) -> None:
    await printer.print_job("job-ru", text_job("Итого: 12,00 руб.", code_page="CP866"))
    assert sim.receipts == ["Итого: 12,00 руб.\n"]


async def test_a_long_job_with_graphics_goes_through_in_chunks(sim: UsbPrinterSimulator,
                                                               printer: UsbPrinter) -> None:
    """A 200-line job with QR code, barcode and a raster image (many bulk chunks) prints whole."""
    dummy = Dummy()
    dummy.hw("INIT")
    dummy.charcode("CP858")
    for n in range(200):
        dummy.textln(f"ligne {n:03d} - 1,00 €")
    dummy.qr("https://receipts.example/demo/R1/42", native=True)
    dummy.barcode("4006381333931", "EAN13")
    dummy.image(Image.new("1", (256, 256)))
    dummy.cut()
    job = bytes(dummy.output)
    assert len(job) > 4096 * 2
    await printer.print_job("job-long", job)
    assert len(sim.receipts) == 1
    lines = sim.receipts[0].splitlines()
    assert lines[0] == "ligne 000 - 1,00 €"
    assert lines[-3:] == ["[QR: https://receipts.example/demo/R1/42]",
                          "[barcode: 4006381333931]", "[image 256x256]"]


async def test_status_and_drawer_sensor(sim: UsbPrinterSimulator, printer: UsbPrinter) -> None:
    """Status answers come back on bulk IN: drawer sensor and paper near end."""
    status = await printer.status()
    assert (status.fault, status.drawer_high, status.paper_near_end) == (None, False, False)
    sim.drawer_open = True
    sim.set_fault(Fault.PAPER_NEAR_END)
    status = await printer.status()
    assert (status.fault, status.drawer_high, status.paper_near_end) == (None, True, True)
    assert printer.state == DeviceState(Status.READY, None, "paper_near_end")


async def test_drawer_kick_bytes(sim: UsbPrinterSimulator, printer: UsbPrinter) -> None:
    await printer.kick_drawer(2, 50, 50)
    await printer.kick_drawer(5, 100, 100)
    assert sim.kicks == [DrawerKick(2, 50, 50, bytes.fromhex("1B 70 00 19 19")),
                         DrawerKick(5, 100, 100, bytes.fromhex("1B 70 01 32 32"))]


async def test_paper_out_mid_job(sim: UsbPrinterSimulator, printer: UsbPrinter) -> None:
    """Paper out mid-job: DeviceFault, the rest unprinted; a new roll: ready, reprinted whole."""
    sim.paper_lines_left = 3
    lines = [f"line {n}" for n in range(1, 11)]
    with pytest.raises(DeviceFault) as caught:
        await printer.print_job("job-long", text_job(*lines))
    assert caught.value.reason == "paper_out"
    assert printer.state == error("paper_out")
    assert (sim.receipts, sim.interrupted) == ([], ["line 1\nline 2\nline 3\n"])
    sim.set_fault(Fault.PAPER_OUT, active=False)
    await printer.wait_for_state(status_is(Status.READY), WAIT)
    await printer.print_job("job-long-again", text_job(*lines))
    assert sim.receipts == ["".join(f"{line}\n" for line in lines)]


async def test_cover_open(sim: UsbPrinterSimulator, printer: UsbPrinter) -> None:
    sim.set_fault(Fault.COVER_OPEN)
    await printer.wait_for_state(status_is(Status.ERROR, "cover_open"), WAIT)
    with pytest.raises(DeviceFault):
        await printer.kick_drawer(2)
    sim.set_fault(Fault.COVER_OPEN, active=False)
    await printer.wait_for_state(status_is(Status.READY), WAIT)
    await printer.print_job("job-1", text_job("hello"))
    assert (sim.receipts, sim.kicks) == (["hello\n"], [])


async def test_silent_printer_is_offline(sim: UsbPrinterSimulator,
                                         backend: SimUsbBackend) -> None:
    """Bulk IN reads that time out are unavailable(offline); answers again bring ready."""
    async with new_printer(backend, timeout=0.3) as printer:
        await printer.wait_for_state(status_is(Status.READY), WAIT)
        sim.set_fault(Fault.SILENT)
        with pytest.raises(DeviceTimeout) as caught:
            await printer.status()
        assert caught.value.reason == "offline"
        assert printer.state.reason == "offline"
        sim.set_fault(Fault.SILENT, active=False)
        await printer.wait_for_state(status_is(Status.READY), WAIT)


async def test_unplugged_and_back(sim: UsbPrinterSimulator, printer: UsbPrinter) -> None:
    """Unplugged: unavailable(unplugged), never a crash; replugged (new address, usblp bound
    again): found, detached, claimed and ready; nothing printed twice."""
    await printer.print_job("job-1", text_job("before"))
    address = sim.address
    sim.unplug()
    await printer.wait_for_state(status_is(Status.UNAVAILABLE), WAIT)
    assert printer.state.reason in ("unplugged", "not_found")
    with pytest.raises(DeviceUnavailable):
        await printer.print_job("job-2", text_job("lost?"))
    sim.plug()
    await printer.wait_for_state(status_is(Status.READY), WAIT)
    assert (sim.address, sim.detaches) == (address + 1, 2)
    await printer.print_job("job-2", text_job("back"))
    assert sim.receipts == ["before\n", "back\n"]


async def test_not_plugged_from_the_start() -> None:
    """No such device on the bus: unavailable(not_found), retried with backoff."""
    sim = UsbPrinterSimulator()
    sim.unplug()
    async with new_printer(SimUsbBackend(sim)) as printer:
        state = await printer.wait_for_state(status_is(Status.UNAVAILABLE), WAIT)
        assert state.reason == "not_found"
        sim.plug()
        await printer.wait_for_state(status_is(Status.READY), WAIT)


async def test_permission_denied_is_a_state(sim: UsbPrinterSimulator,
                                            backend: SimUsbBackend) -> None:
    """Without the udev rule (EACCES) the printer is unavailable(permission_denied)."""
    sim.accessible = False
    async with new_printer(backend) as printer:
        state = await printer.wait_for_state(status_is(Status.UNAVAILABLE), WAIT)
        assert state.reason == "permission_denied"
        sim.accessible = True
        await printer.wait_for_state(status_is(Status.READY), WAIT)


async def test_busy_interface_is_a_state(sim: UsbPrinterSimulator,
                                         backend: SimUsbBackend) -> None:
    """Another program holding the interface makes the printer unavailable(busy)."""
    other = usb.core.find(idVendor=VID, idProduct=PID, backend=backend)
    other.detach_kernel_driver(0)
    usb.util.claim_interface(other, 0)
    async with new_printer(backend) as printer:
        state = await printer.wait_for_state(status_is(Status.UNAVAILABLE), WAIT)
        assert state.reason == "busy"
        usb.util.dispose_resources(other)
        await printer.wait_for_state(status_is(Status.READY), WAIT)


@pytest.mark.parametrize(("serial", "port"), [("B-2", None), (None, "1-4"), ("B-2", "1-4")])
async def test_two_identical_printers_by_serial_or_port(serial: str | None,
                                                        port: str | None) -> None:
    """Two printers with the same ids: the serial number or the USB port path picks one."""
    first = UsbPrinterSimulator(vendor_id=VID, product_id=PID, serial="A-1", port_numbers=(2,))
    second = UsbPrinterSimulator(vendor_id=VID, product_id=PID, serial="B-2", port_numbers=(4,))
    async with new_printer(SimUsbBackend(first, second), serial=serial, port=port) as printer:
        await printer.wait_for_state(status_is(Status.READY), WAIT)
        await printer.print_job("job-1", text_job("for B"))
    assert (first.receipts, second.receipts) == ([], ["for B\n"])
    assert (first.detaches, second.detaches) == (0, 1)


async def test_no_match_on_serial_is_not_found(sim: UsbPrinterSimulator,
                                               backend: SimUsbBackend) -> None:
    async with new_printer(backend, serial="OTHER") as printer:
        state = await printer.wait_for_state(status_is(Status.UNAVAILABLE), WAIT)
    assert state.reason == "not_found"
    assert sim.detaches == 0
