"""Binding discovered devices to kinds: probes on real ptys (printer and scale simulators behind
two USB-serial bridges) and the pure proposal a technician reads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from drivers.discovery import (
    Binding,
    DeviceCandidate,
    Kind,
    Probe,
    printer_probe,
    propose_bindings,
    run_probes,
    toledo_probe,
)
from drivers.printer.pty_simulator import PtyPrinterSimulator, pty_printer
from drivers.printer.simulator import Fault
from drivers.scale.serial_transport import PTY_LINE
from drivers.scale.simulator import ScaleSimulator, scale_simulator

PROBES = {Kind.PRINTER: printer_probe(PTY_LINE, timeout=0.3),
          Kind.SCALE: toledo_probe(PTY_LINE, timeout=0.3)}


def bridge(serial: str, path: str, port: str = "2") -> DeviceCandidate:
    """A USB-serial bridge as ``classify`` reports it: unknown, needs a probe."""
    return DeviceCandidate(Kind.UNKNOWN, f"tty:pci-0000:00:14.0-usb-0:{port}:1.0:{serial}", path,
                           "0403:6001", "USB-serial bridge FTDI FT232R: serial, needs a probe",
                           needs_probe=True)


def known(kind: Kind, serial: str, path: str) -> DeviceCandidate:
    return DeviceCandidate(kind, f"usbmisc:usb-1-3:{serial}", path, "04b8:0e15", "known device")


@pytest.fixture
def printer() -> Iterator[PtyPrinterSimulator]:
    with pty_printer("ttyUSB-printer") as simulator:
        yield simulator


@pytest.fixture
def scale() -> Iterator[ScaleSimulator]:
    with scale_simulator("toledo8217") as simulator:
        simulator.set_weight(500)
        yield simulator


async def test_probes_tell_a_printer_from_a_scale(printer: PtyPrinterSimulator,
                                                  scale: ScaleSimulator) -> None:
    """Behind two identical bridges: the printer answers DLE EOT 1, the scale answers W."""
    devices = {c.stable_id: c for c in (bridge("P1", printer.path, "2"),
                                        bridge("S1", scale.path, "3"))}
    probed = await run_probes(devices, PROBES)
    printer_id, scale_id = (c.stable_id for c in devices.values())
    assert probed == {(printer_id, Kind.PRINTER): True,
                      (scale_id, Kind.PRINTER): False, (scale_id, Kind.SCALE): True}
    bindings = propose_bindings(devices, [Kind.PRINTER, Kind.SCALE, Kind.DISPLAY],
                                probed=probed)
    assert bindings[Kind.PRINTER] == Binding(Kind.PRINTER, printer.path, printer_id,
                                             "answered the ESC/POS status request (DLE EOT 1)")
    assert bindings[Kind.SCALE] == Binding(Kind.SCALE, scale.path, scale_id,
                                           "answered the scale's weight request")
    assert bindings[Kind.DISPLAY] == Binding(Kind.DISPLAY, None, None, "no device found")


async def test_probes_are_non_destructive(printer: PtyPrinterSimulator,
                                          scale: ScaleSimulator) -> None:
    """The printer is never sent the scale's W (it would print it); nothing is printed; the
    scale only saw a status request it ignores and one weight request."""
    devices = {c.stable_id: c for c in (bridge("P1", printer.path, "2"),
                                        bridge("S1", scale.path, "3"))}
    await run_probes(devices, PROBES)
    assert (printer.receipts, printer.current_text, printer.unknown) == ([], "", [])
    printer.feed(b"\n")  # a line feed prints whatever stray characters were buffered
    assert printer.current_text == "\n"
    assert scale.received() == b"\x10\x04\x01W"
    assert scale.platform.tare_grams == scale.platform.zero_offset == 0


async def test_silent_or_missing_devices_answer_no_probe() -> None:
    """A path that does not exist, or a silent printer, is simply not bound."""
    with pty_printer("ttySILENT") as silent:
        silent.set_fault(Fault.SILENT)
        devices = {c.stable_id: c for c in (bridge("X", "/dev/does-not-exist-tillbox", "5"),
                                            bridge("Y", silent.path, "6"))}
        probed = await run_probes(devices, {Kind.PRINTER: PROBES[Kind.PRINTER]})
    assert not any(probed.values())
    assert propose_bindings(devices, [Kind.PRINTER], probed=probed)[Kind.PRINTER].path is None


def test_known_devices_need_no_probe_and_configuration_wins() -> None:
    """A classified printer is bound as such; a configured path wins and frees nothing twice."""
    epson = known(Kind.PRINTER, "X5E7012345", "/dev/tillbox/printer-X5E7012345")
    scale = bridge("A50285BI", "/dev/serial/by-id/usb-FTDI-A50285BI", "4")
    devices = {epson.stable_id: epson, scale.stable_id: scale}
    bindings = propose_bindings(devices, [Kind.PRINTER, Kind.SCALE],
                                configured={Kind.SCALE: scale.path})
    assert bindings[Kind.PRINTER] == Binding(Kind.PRINTER, epson.path, epson.stable_id,
                                             "known device")
    assert bindings[Kind.SCALE] == Binding(Kind.SCALE, scale.path, scale.stable_id,
                                           "set in the configuration")
    on_s0 = propose_bindings(devices, [Kind.SCALE], configured={Kind.SCALE: "/dev/ttyS0"})
    assert str(on_s0[Kind.SCALE]) == "scale → /dev/ttyS0 (not discovered): set in the configuration"


def test_two_candidates_bind_nothing() -> None:
    """Two printers and no name: no guess, and the technician is told how to choose."""
    first = known(Kind.PRINTER, "A", "/dev/usb/lp0")
    second = DeviceCandidate(Kind.PRINTER, "usbmisc:usb-1-4:B", "/dev/usb/lp1", "04b8:0e15",
                             "known device")
    binding = propose_bindings({c.stable_id: c for c in (first, second)}, [Kind.PRINTER])
    assert binding[Kind.PRINTER].path is None
    assert "2 candidates (usbmisc:usb-1-3:A, usbmisc:usb-1-4:B)" in binding[Kind.PRINTER].reason
    assert "/dev/tillbox/printer-" in str(binding[Kind.PRINTER])


def test_a_probed_device_is_not_bound_twice() -> None:
    """A device bound to one kind is not offered to another."""
    device = bridge("P1", "/dev/serial/by-id/usb-P1")
    probed = {(device.stable_id, Kind.PRINTER): True, (device.stable_id, Kind.SCALE): True}
    bindings = propose_bindings({device.stable_id: device}, [Kind.PRINTER, Kind.SCALE],
                                probed=probed)
    assert (bindings[Kind.PRINTER].path, bindings[Kind.SCALE].path) == (device.path, None)


def test_probe_order_stops_at_the_first_answer() -> None:
    """Probes run in the order given and stop once a kind answers (the scale is never asked)."""
    asked: list[Kind] = []

    def probe_for(kind: Kind, answer: bool) -> Probe:
        async def probe(path: str) -> bool:
            asked.append(kind)
            return answer
        return probe

    device = bridge("P1", "/dev/null")
    probes = {Kind.PRINTER: probe_for(Kind.PRINTER, True), Kind.SCALE: probe_for(Kind.SCALE, True)}
    probed = asyncio.run(run_probes({device.stable_id: device}, probes))
    assert asked == [Kind.PRINTER]
    assert probed == {(device.stable_id, Kind.PRINTER): True}
