"""Finding peripherals: classify udev devices, list them now, and follow plugs and unplugs.

Three layers, the first two pure:

- ``classify(properties)`` turns one udev property mapping (``SUBSYSTEM``, ``ID_VENDOR_ID``,
  ``ID_SERIAL_SHORT``, ``ID_PATH``, ``DEVNAME``…) into a ``DeviceCandidate`` (printer, scale,
  display, scanner or unknown) or ``None`` for what a cash box ignores (keyboards, mice, consoles,
  built-in serial ports, hubs). The stable id is the USB port path plus the serial number, so two
  identical devices keep their ids across replugs.
- ``diff(previous, current)`` says what a new scan added and removed.
- ``scan()`` lists the devices present with pyudev (blocking: sysfs reads), and ``Discovery``
  runs it off the event loop, again after every udev event (netlink socket read by the loop,
  never blocking it) and every few seconds in any case, reporting changes to a callback.

A candidate with ``needs_probe`` (a USB-serial bridge) could be a scale, a display, a scanner
or a serial printer: only a non-destructive probe can tell. Binding, on top:

- ``run_probes(devices, probes)`` asks each such device, kind by kind in the order given, with
  a probe per kind (``printer_probe``: ``DLE EOT 1``, a real-time status request that prints
  nothing, answered by a status byte ``0xx1xx10``; ``toledo_probe``: a Toledo 8217 weight
  request ``W``, answered by ``STX … CR``); it stops at the first kind that answers. Put the
  printer first: a printer would print a stray ``W``, a scale ignores ``DLE EOT``. Displays and
  scanners never answer: they are bound by their maker's id or a ``/dev/tillbox/`` name only.
- ``propose_bindings(devices, wanted, configured=, probed=)`` (pure) proposes, for each kind
  wanted, the one device to use, with its stable id and path (``/dev/tillbox/…``,
  ``/dev/serial/by-id/…``) and the reason a technician reads; a path set in the configuration
  wins; two candidates for one kind bind nothing (name one rather than guess).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from drivers.errors import DeviceError, ProtocolError
from drivers.printer.status import check_realtime, dle_eot
from drivers.scale.serial_transport import TOLEDO_8217_LINE
from drivers.scale.toledo8217 import WEIGHT_REQUEST, Toledo8217Parser, decode_reply
from drivers.serial_port import SerialPort, SerialSettings

__all__ = [
    "BRIDGES",
    "KNOWN_DEVICES",
    "SCANNER_VENDORS",
    "SUBSYSTEMS",
    "Binding",
    "DeviceCandidate",
    "Discovery",
    "Kind",
    "Probe",
    "classify",
    "diff",
    "printer_probe",
    "propose_bindings",
    "run_probes",
    "scan",
    "toledo_probe",
]

log = logging.getLogger(__name__)


class Kind(StrEnum):
    """What a discovered device is (``unknown``: a serial device still to be probed)."""

    PRINTER = "printer"
    SCALE = "scale"
    DISPLAY = "display"
    SCANNER = "scanner"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DeviceCandidate:
    """A device that may be a peripheral, with where to open it and why we think so."""

    kind: Kind
    stable_id: str
    path: str
    vid_pid: str | None
    reason: str
    needs_probe: bool = False


# Devices known by vendor:product id.
KNOWN_DEVICES: Mapping[str, tuple[Kind, str]] = {
    "04b8:0202": (Kind.PRINTER, "Epson TM receipt printer"),
    "04b8:0e03": (Kind.PRINTER, "Epson TM-T20"),
    "04b8:0e15": (Kind.PRINTER, "Epson TM-T20II"),
}
# Barcode scanner makers: any keyboard or serial device of theirs is a scanner.
SCANNER_VENDORS: Mapping[str, str] = {
    "0c2e": "Honeywell (Metrologic)",
    "0536": "Honeywell (Hand Held Products)",
    "05e0": "Zebra (Symbol)",
    "05f9": "Datalogic",
}
# USB-serial bridges: behind one may be a scale, a display, a scanner or a serial printer.
BRIDGES: Mapping[str, str] = {
    "0403:6001": "FTDI FT232R",
    "067b:2303": "Prolific PL2303",
    "1a86:7523": "WCH CH340",
}
SUBSYSTEMS = ("tty", "usbmisc", "input")
"""Where device nodes a driver opens live: serial ports, ``/dev/usb/lpN``, ``/dev/input/eventN``."""

_PRINTER_CLASS = "07"
_OWN_LINK = re.compile(r"^/dev/tillbox/(printer|scale|display|scanner)-")
_USB_PORT = re.compile(r"/(\d+-\d+(?:\.\d+)*(?::\d+\.\d+)?)(?=/)")


def classify(properties: Mapping[str, str]) -> DeviceCandidate | None:
    """Return what a udev device is to a cash box, or ``None`` when it is not a peripheral."""
    devname = properties.get("DEVNAME", "")
    vid_pid = _vid_pid(properties)
    if not devname or vid_pid is None:
        return None  # no node to open, or not on USB (consoles, ttyS*: configure those by path)
    found = _kind_of(properties, devname, vid_pid)
    if found is None:
        return None
    kind, reason, needs_probe = found
    return DeviceCandidate(kind, stable_id(properties), _best_path(properties, devname), vid_pid,
                           reason, needs_probe)


def _kind_of(properties: Mapping[str, str], devname: str,
             vid_pid: str) -> tuple[Kind, str, bool] | None:
    """The kind, the reason and whether a probe is needed, by the first rule that applies."""
    subsystem = properties.get("SUBSYSTEM", "")
    vendor_name = SCANNER_VENDORS.get(vid_pid[:4])
    if subsystem == "input":
        return _input_kind(properties, devname, vendor_name)
    named = _own_link_kind(properties)
    if named is not None:
        return named, "named by a tillbox udev rule", False
    if vid_pid in KNOWN_DEVICES:
        kind, name = KNOWN_DEVICES[vid_pid]
        return kind, f"known device {vid_pid}: {name}", False
    if vendor_name is not None:
        return Kind.SCANNER, f"scanner maker {vid_pid[:4]}: {vendor_name}", False
    if vid_pid in BRIDGES:
        return Kind.UNKNOWN, f"USB-serial bridge {BRIDGES[vid_pid]}: serial, needs a probe", True
    if _is_printer_class(properties, subsystem, devname):
        return Kind.PRINTER, "USB printer class (07)", False
    if subsystem == "tty":
        return Kind.UNKNOWN, "USB serial device: needs a probe", True
    return None


def _input_kind(properties: Mapping[str, str], devname: str,
                vendor_name: str | None) -> tuple[Kind, str, bool] | None:
    """Keyboards from a scanner maker are scanners; every other input device is ignored."""
    keyboard = properties.get("ID_INPUT_KEYBOARD") == "1"
    if not (keyboard and devname.startswith("/dev/input/event") and vendor_name):
        return None
    return Kind.SCANNER, f"keyboard-mode scanner: {vendor_name}", False


def _own_link_kind(properties: Mapping[str, str]) -> Kind | None:
    """The kind an administrator gave the device with a ``/dev/tillbox/<kind>-…`` symlink."""
    for link in properties.get("DEVLINKS", "").split():
        match = _OWN_LINK.match(link)
        if match:
            return Kind(match.group(1))
    return None


def _is_printer_class(properties: Mapping[str, str], subsystem: str, devname: str) -> bool:
    """A ``/dev/usb/lpN`` node of usblp, or a USB interface of class 07 (printer)."""
    if subsystem == "usbmisc" and devname.startswith("/dev/usb/lp"):
        return True
    interfaces = properties.get("ID_USB_INTERFACES", "").strip(":").split(":")
    return any(entry[:2] == _PRINTER_CLASS for entry in interfaces if len(entry) == 6)


def _vid_pid(properties: Mapping[str, str]) -> str | None:
    """``vvvv:pppp`` in lower-case hex, from udev's ids or from the kernel's ``PRODUCT``."""
    vendor, model = properties.get("ID_VENDOR_ID"), properties.get("ID_MODEL_ID")
    if vendor and model:
        return f"{vendor.lower():0>4}:{model.lower():0>4}"
    product = properties.get("PRODUCT", "").split("/")  # usb devices: "4b8/202/100"
    if len(product) == 3 and all(product):
        return f"{product[0].lower():0>4}:{product[1].lower():0>4}"
    return None


def stable_id(properties: Mapping[str, str]) -> str:
    """USB port path plus serial number: the same device in the same port keeps its id."""
    port = properties.get("ID_PATH") or _usb_port(properties.get("DEVPATH", ""))
    serial = properties.get("ID_SERIAL_SHORT") or "noserial"
    subsystem = properties.get("SUBSYSTEM", "dev")
    return f"{subsystem}:{port or properties.get('DEVNAME', '?')}:{serial}"


def _usb_port(devpath: str) -> str | None:
    """The last USB port in a sysfs path (``1-2.3:1.0``), when udev gave no ``ID_PATH``."""
    ports = _USB_PORT.findall(devpath + "/")
    return f"usb-{ports[-1]}" if ports else None


def _best_path(properties: Mapping[str, str], devname: str) -> str:
    """A path that survives replugs: our kind-named link, our link, by-id, else the node."""
    links = properties.get("DEVLINKS", "").split()
    named = [link for link in links if _OWN_LINK.match(link)]
    ours = [link for link in links if link.startswith("/dev/tillbox/")]
    by_id = [link for link in links if link.startswith("/dev/serial/by-id/")]
    return next(iter(named + ours + by_id), devname)


def diff(previous: Mapping[str, DeviceCandidate], current: Mapping[str, DeviceCandidate],
         ) -> tuple[dict[str, DeviceCandidate], dict[str, DeviceCandidate]]:
    """What appeared and what went away between two scans; a changed device is both."""
    added = {key: dev for key, dev in current.items() if previous.get(key) != dev}
    removed = {key: dev for key, dev in previous.items() if current.get(key) != dev}
    return added, removed


def scan(context: Any = None) -> dict[str, DeviceCandidate]:
    """List the peripherals present now, by stable id (blocking: run it in a thread)."""
    import pyudev

    context = context or pyudev.Context()
    found: dict[str, DeviceCandidate] = {}
    for subsystem in SUBSYSTEMS:
        for device in context.list_devices(subsystem=subsystem):
            candidate = classify(properties_of(device))
            if candidate is not None:
                found.setdefault(candidate.stable_id, candidate)
    return found


def properties_of(device: Any) -> dict[str, str]:
    """A pyudev device's properties, completed from its USB parent when udev's database is absent.

    Without a running udevd (containers, early boot) only the kernel's uevent is known; the USB
    ids and serial number are then read from the parent's sysfs attributes.
    """
    properties = {str(key): str(value) for key, value in device.properties.items()}
    usb = device.find_parent("usb", "usb_device")
    if usb is None:
        return properties
    for key, attribute in _USB_ATTRIBUTES:
        if key not in properties:
            with contextlib.suppress(KeyError, UnicodeDecodeError):
                properties[key] = usb.attributes.asstring(attribute).strip()
    return properties


_USB_ATTRIBUTES = (("ID_VENDOR_ID", "idVendor"), ("ID_MODEL_ID", "idProduct"),
                   ("ID_SERIAL_SHORT", "serial"))

Candidates = dict[str, DeviceCandidate]
OnChange = Callable[[Candidates, Candidates], Awaitable[None]]


class Discovery:
    """Keeps the list of present devices and reports additions and removals.

    ``lister`` is injected (``scan`` by default) so tests and the simulators can supply devices.
    """

    def __init__(self, lister: Callable[[], Candidates] = scan, *, interval: float = 5.0) -> None:
        self.lister = lister
        self.interval = interval
        self.devices: Candidates = {}
        self._dirty = asyncio.Event()

    async def rescan(self) -> tuple[Candidates, Candidates]:
        """List the devices again, off the event loop, and return what was added and removed."""
        current = await asyncio.to_thread(self.lister)
        added, removed = diff(self.devices, current)
        self.devices = current
        return added, removed

    async def run(self, on_change: OnChange, *, udev: bool = True) -> None:
        """Rescan at every udev event and every ``interval`` seconds; runs until cancelled."""
        with self._udev_events() if udev else contextlib.nullcontext():
            while True:
                added, removed = await self.rescan()
                if added or removed:
                    await on_change(added, removed)
                # asyncio.timeout, not wait_for: on 3.11 wait_for may swallow a cancellation
                # arriving as the event is set, and the loop would never end
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await self._dirty.wait()
                self._dirty.clear()

    @contextlib.contextmanager
    def _udev_events(self) -> Iterator[None]:
        """Read udev's netlink socket from the event loop; without it, periodic scans only."""
        loop = asyncio.get_running_loop()
        try:
            import pyudev

            monitor = pyudev.Monitor.from_netlink(pyudev.Context())
            monitor.filter_by("tty")
            monitor.filter_by("usbmisc")
            monitor.filter_by("input")
            monitor.start()
            loop.add_reader(monitor.fileno(), self._drain, monitor)
        except (OSError, ImportError) as error:
            log.info("udev events unavailable (%s): periodic scans only", error)
            yield
            return
        try:
            yield
        finally:
            loop.remove_reader(monitor.fileno())

    def _drain(self, monitor: Any) -> None:
        """Consume the pending udev events (never blocks) and ask for a rescan."""
        while monitor.poll(timeout=0) is not None:
            self._dirty.set()


# -- binding: which device for which kind ---------------------------------------------------------

Probe = Callable[[str], Awaitable[bool]]
"""A non-destructive probe: does the device at this path answer as this kind?"""
ProbeResults = Mapping[tuple[str, Kind], bool]
"""``(stable id, kind)`` → whether the device answered that kind's probe."""
PRINTER_LINE = SerialSettings()
"""Serial receipt printers' usual line: 9600 8N1."""
PROBE_REASONS: Mapping[Kind, str] = {
    Kind.PRINTER: "answered the ESC/POS status request (DLE EOT 1)",
    Kind.SCALE: "answered the scale's weight request",
}


@dataclass(frozen=True)
class Binding:
    """The device proposed for one kind (``path`` None: none), and why."""

    kind: Kind
    path: str | None
    stable_id: str | None
    reason: str

    def __str__(self) -> str:
        """One line for a technician: ``printer → /dev/… (id): reason``."""
        where = f"{self.path} ({self.stable_id or 'not discovered'})" if self.path else "—"
        return f"{self.kind} → {where}: {self.reason}"


def propose_bindings(devices: Mapping[str, DeviceCandidate], wanted: Iterable[Kind], *,
                     configured: Mapping[Kind, str] | None = None,
                     probed: ProbeResults | None = None) -> dict[Kind, Binding]:
    """For each kind wanted, the device to use: configured path, else the one candidate."""
    configured, probed = configured or {}, probed or {}
    by_path = {candidate.path: candidate for candidate in devices.values()}
    used = {by_path[path].stable_id for path in configured.values() if path in by_path}
    bindings: dict[Kind, Binding] = {}
    for kind in wanted:
        if kind in configured:
            found = by_path.get(configured[kind])
            bindings[kind] = Binding(kind, configured[kind], found.stable_id if found else None,
                                     "set in the configuration")
            continue
        binding = bindings[kind] = _choose(kind, _options(devices, kind, probed, used))
        if binding.stable_id is not None:
            used.add(binding.stable_id)
    return bindings


def _options(devices: Mapping[str, DeviceCandidate], kind: Kind, probed: ProbeResults,
             used: set[str]) -> list[tuple[DeviceCandidate, str]]:
    """Candidates of that kind, else devices that answered its probe; each with the reason."""
    free = sorted((c for c in devices.values() if c.stable_id not in used),
                  key=lambda c: c.stable_id)
    direct = [(c, c.reason) for c in free if c.kind is kind]
    answered = [(c, PROBE_REASONS.get(kind, "answered the probe")) for c in free
                if c.needs_probe and probed.get((c.stable_id, kind))]
    return direct or answered


def _choose(kind: Kind, options: list[tuple[DeviceCandidate, str]]) -> Binding:
    if not options:
        return Binding(kind, None, None, "no device found")
    if len(options) > 1:
        ids = ", ".join(candidate.stable_id for candidate, _ in options)
        return Binding(kind, None, None, f"{len(options)} candidates ({ids}): name one with a "
                       f"/dev/tillbox/{kind}-… rule or set its path")
    candidate, reason = options[0]
    return Binding(kind, candidate.path, candidate.stable_id, reason)


async def run_probes(devices: Mapping[str, DeviceCandidate],
                     probes: Mapping[Kind, Probe]) -> dict[tuple[str, Kind], bool]:
    """Probe each device that needs it, kind by kind in ``probes`` order, until one answers."""
    results: dict[tuple[str, Kind], bool] = {}
    for candidate in sorted(devices.values(), key=lambda c: c.stable_id):
        if not candidate.needs_probe:
            continue
        for kind, probe in probes.items():
            results[(candidate.stable_id, kind)] = answered = await probe(candidate.path)
            if answered:
                break
    return results


def printer_probe(settings: SerialSettings = PRINTER_LINE, *,
                  timeout: float = 0.5) -> Probe:
    """A serial ESC/POS printer answers ``DLE EOT 1`` with one status byte (nothing printed)."""

    async def probe(path: str) -> bool:
        answer = await _ask(path, settings, dle_eot(1), timeout, lambda data: len(data) >= 1)
        try:
            return len(answer) == 1 and check_realtime(answer[0]) == answer[0]
        except ProtocolError:
            return False

    return probe


def toledo_probe(settings: SerialSettings = TOLEDO_8217_LINE, *, timeout: float = 1.0) -> Probe:
    """A Toledo 8217 scale answers ``W`` with ``STX <weight or status> CR`` (weighing only)."""

    async def probe(path: str) -> bool:
        answer = await _ask(path, settings, WEIGHT_REQUEST, timeout, lambda data: b"\r" in data)
        frames = Toledo8217Parser().feed(answer)
        if len(frames) != 1:
            return False
        try:
            decode_reply(frames[0])
        except ProtocolError:
            return False
        return True

    return probe


async def _ask(path: str, settings: SerialSettings, request: bytes, timeout: float,
               complete: Callable[[bytes], bool]) -> bytes:
    """Send ``request`` and collect the answer until ``complete`` or ``timeout``; b"" on errors."""
    answer = b""
    try:
        port = await SerialPort.open(path, settings, grace=1.0)
    except DeviceError:
        return answer
    try:
        await port.discard_input()
        await port.write(request, timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not complete(answer) and (left := deadline - loop.time()) > 0:
            answer += await port.read_available(left)
    except DeviceError:
        pass
    finally:
        await port.close()
    return answer
