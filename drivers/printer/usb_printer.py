"""USB receipt printers (pyusb): ESC/POS on the printer-class bulk endpoints.

:class:`UsbPrinter` is the shared :class:`~drivers.printer.stream.StreamPrinter` (job and status
logic, states, supervisor with backoff) over a :class:`UsbLink`: print data and commands go to
the bulk OUT endpoint, status answers come back on bulk IN. Both endpoints are read from the
descriptors of the printer-class interface (07), never assumed.

The printer is found by vendor and product id, narrowed by serial number and/or USB port path
(``1-2.4``, as in sysfs) when two identical printers are plugged. Opening it: the active
configuration (set if there is none), the kernel's ``usblp`` detached from the interface when it
holds it (pick one owner: this driver), the interface claimed. ``usb.core.find`` takes a
``backend``: libusb1 on a box (needs ``libusb-1.0``), or a test backend
(``drivers.printer.usb_backend_sim``).

pyusb is blocking: every call of one link runs in the link's own worker thread, with the I/O
timeout plus a grace period. pyusb errors become driver errors here, once:

* no matching device → ``DeviceUnavailable(not_found)``; no libusb → ``no_libusb``;
* ``EACCES`` → ``permission_denied`` (udev rule missing); ``EBUSY`` → ``busy`` (another
  program has it); gone from the bus (``ENODEV``, ``EIO``…) → ``unplugged``;
* a read or write that times out → ``DeviceTimeout(offline)``;
* no printer interface or no bulk endpoints → ``DeviceUnavailable(bad_descriptor)``.

Unplugged, the printer is ``unavailable(unplugged)`` and the supervisor looks for it again with
backoff; plugged back (a new bus address), it is found, claimed and ``ready`` again.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import usb.core
import usb.util

from drivers.errors import DeviceError, DeviceTimeout, DeviceUnavailable
from drivers.printer.stream import PrinterLink, StreamPrinter
from drivers.states import Backoff

__all__ = ["UsbLink", "UsbPrinter", "UsbTarget", "port_path"]

T = TypeVar("T")
PRINTER_CLASS = 7
CHUNK = 4096
"""Bytes per bulk OUT write: a long job is written in chunks, each with its own timeout."""
GRACE = 5.0
"""Seconds a worker call may exceed its I/O timeout before the thread counts as hung."""
EMPTY_READ_PAUSE = 0.01
"""Some printers answer a bulk IN read at once with no data: wait this long before asking again."""
_GONE = {errno.ENODEV, errno.ENOENT, errno.EIO, errno.EPIPE, errno.ESHUTDOWN}
_REASONS = {errno.EACCES: "permission_denied", errno.EPERM: "permission_denied",
            errno.EBUSY: "busy"}


@dataclass(frozen=True)
class UsbTarget:
    """Which printer: vendor and product id, and optionally its serial number and port path."""

    vendor_id: int
    product_id: int
    serial: str | None = None
    port_path: str | None = None

    def __str__(self) -> str:
        """``usb:04b8:0e15`` with ``:serial`` and ``@port`` when given."""
        name = f"usb:{self.vendor_id:04x}:{self.product_id:04x}"
        name += f":{self.serial}" if self.serial else ""
        return name + (f"@{self.port_path}" if self.port_path else "")

    def matches(self, device: Any) -> bool:
        """Whether ``device`` (already matched on ids) has the serial number and port path."""
        if self.port_path is not None and port_path(device) != self.port_path:
            return False
        if self.serial is None:
            return True
        try:
            return bool(device.serial_number == self.serial)
        except (usb.core.USBError, ValueError):
            return False  # no access to its strings: not provably ours


def port_path(device: Any) -> str | None:
    """The sysfs USB port path of a pyusb device (``1-2.4``), when the backend knows it."""
    ports = getattr(device, "port_numbers", None)
    if device.bus is None or not ports:
        return None
    return f"{device.bus}-{'.'.join(str(port) for port in ports)}"


def usb_error(exc: BaseException, name: str) -> DeviceError:
    """The driver error for a pyusb exception."""
    if isinstance(exc, usb.core.USBTimeoutError):
        return DeviceTimeout(f"{name}: USB transfer timed out", reason="offline")
    if isinstance(exc, usb.core.NoBackendError):
        return DeviceUnavailable(f"{name}: libusb is not installed", reason="no_libusb")
    code = getattr(exc, "errno", None)
    if code in _REASONS:
        return DeviceUnavailable(f"{name}: {exc}", reason=_REASONS[code])
    reason = "unplugged" if code in _GONE else "io_error"
    return DeviceUnavailable(f"{name}: {exc}", reason=reason)


@dataclass(frozen=True)
class _Opened:
    device: Any
    interface: int
    out_endpoint: int
    in_endpoint: int
    in_packet: int


class UsbLink:
    """An open, claimed USB printer interface as a :class:`PrinterLink`; one worker thread."""

    def __init__(self, opened: _Opened, executor: ThreadPoolExecutor, name: str) -> None:
        self._opened, self.name = opened, name
        self._executor: ThreadPoolExecutor | None = executor
        self._surplus = bytearray()
        self.detached_kernel_driver = False

    @classmethod
    async def open(cls, target: UsbTarget, backend: Any = None, *,
                   timeout: float = 3.0) -> UsbLink:
        """Find, configure and claim the printer; ``DeviceUnavailable`` when it cannot."""
        name = str(target)
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"usb {name}")
        future = asyncio.get_running_loop().run_in_executor(
            executor, _open, target, backend, name)
        try:
            async with asyncio.timeout(timeout + GRACE):
                opened, detached = await future
        except TimeoutError as exc:
            executor.shutdown(wait=False)
            raise DeviceUnavailable(f"{name}: opening hangs", reason="open_failed") from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        link = cls(opened, executor, name)
        link.detached_kernel_driver = detached
        return link

    async def send(self, data: bytes, timeout: float) -> None:
        """Write ``data`` to bulk OUT in chunks; ``DeviceTimeout(offline)`` if not taken."""
        await self._call(lambda: self._write(data, timeout), timeout)

    async def receive(self, size: int, timeout: float) -> bytes:
        """Read ``size`` bytes from bulk IN; ``DeviceTimeout(offline)`` if they do not come."""
        data = await self._call(lambda: self._read(size, timeout), timeout)
        if len(data) < size:
            raise DeviceTimeout(f"{self.name}: no answer within {timeout} s", reason="offline")
        return data

    async def close(self) -> None:
        """Release the interface and free the device (never raises)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        future = asyncio.get_running_loop().run_in_executor(executor, self._dispose)
        with suppress(TimeoutError):
            async with asyncio.timeout(GRACE):
                await future
        executor.shutdown(wait=False)

    async def _call(self, call: Callable[[], T], timeout: float) -> T:
        if self._executor is None:
            raise DeviceUnavailable(f"{self.name}: link closed", reason="not_open")
        future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        try:
            async with asyncio.timeout(timeout + GRACE):
                return await future
        except TimeoutError as exc:
            raise DeviceTimeout(f"{self.name}: the USB worker hangs", reason="offline") from exc
        except (usb.core.USBError, ValueError) as exc:
            raise usb_error(exc, self.name) from exc

    # Blocking, in the worker thread only.

    def _write(self, data: bytes, timeout: float) -> None:
        o = self._opened
        for start in range(0, len(data), CHUNK):
            o.device.write(o.out_endpoint, data[start : start + CHUNK], _ms(timeout))

    def _read(self, size: int, timeout: float) -> bytes:
        o, deadline = self._opened, time.monotonic() + timeout
        while len(self._surplus) < size and (left := deadline - time.monotonic()) > 0:
            try:
                chunk = bytes(o.device.read(o.in_endpoint, o.in_packet, _ms(left)))
            except usb.core.USBTimeoutError:
                break
            if not chunk:
                time.sleep(EMPTY_READ_PAUSE)
            self._surplus += chunk
        data = bytes(self._surplus[:size])
        del self._surplus[: len(data)]
        return data

    def _dispose(self) -> None:
        o = self._opened
        with suppress(usb.core.USBError, ValueError):
            usb.util.release_interface(o.device, o.interface)
        with suppress(usb.core.USBError, ValueError):
            usb.util.dispose_resources(o.device)


def _ms(seconds: float) -> int:
    """A pyusb timeout: milliseconds, at least 1 (0 would mean forever)."""
    return max(1, int(seconds * 1000))


def _open(target: UsbTarget, backend: Any, name: str) -> tuple[_Opened, bool]:
    """Find, configure, detach ``usblp``, claim; map pyusb errors (worker thread)."""
    try:
        device = usb.core.find(idVendor=target.vendor_id, idProduct=target.product_id,
                               backend=backend, custom_match=target.matches)
    except (usb.core.USBError, usb.core.NoBackendError) as exc:
        raise usb_error(exc, name) from exc
    if device is None:
        raise DeviceUnavailable(f"{name}: no such USB device", reason="not_found")
    try:
        return _claim(device, name)
    except BaseException as exc:
        with suppress(usb.core.USBError, ValueError):
            usb.util.dispose_resources(device)
        if isinstance(exc, usb.core.USBError):
            raise usb_error(exc, name) from exc
        raise


def _claim(device: Any, name: str) -> tuple[_Opened, bool]:
    try:
        config = device.get_active_configuration()
    except usb.core.USBError:
        device.set_configuration()
        config = device.get_active_configuration()
    interface = usb.util.find_descriptor(config, bInterfaceClass=PRINTER_CLASS)
    if interface is None:
        raise DeviceUnavailable(f"{name}: no printer interface", reason="bad_descriptor")
    number = interface.bInterfaceNumber
    detached = _detach_kernel_driver(device, number)
    usb.util.claim_interface(device, number)
    out_ep, in_ep = (_bulk(interface, direction) for direction in
                     (usb.util.ENDPOINT_OUT, usb.util.ENDPOINT_IN))
    if out_ep is None or in_ep is None:
        raise DeviceUnavailable(f"{name}: no bulk OUT and IN endpoints (a unidirectional "
                                "printer cannot report its status)", reason="bad_descriptor")
    opened = _Opened(device, number, out_ep.bEndpointAddress, in_ep.bEndpointAddress,
                     in_ep.wMaxPacketSize)
    return opened, detached


def _detach_kernel_driver(device: Any, interface: int) -> bool:
    """Take the interface from ``usblp`` if it holds it (not possible on every OS)."""
    try:
        if not device.is_kernel_driver_active(interface):
            return False
    except NotImplementedError:
        return False
    device.detach_kernel_driver(interface)
    return True


def _bulk(interface: Any, direction: int) -> Any:
    def wanted(endpoint: Any) -> bool:
        return bool(usb.util.endpoint_direction(endpoint.bEndpointAddress) == direction
                    and usb.util.endpoint_type(endpoint.bmAttributes)
                    == usb.util.ENDPOINT_TYPE_BULK)

    return usb.util.find_descriptor(interface, custom_match=wanted)


class UsbPrinter(StreamPrinter):
    """An ESC/POS printer on USB; ``async with`` keeps it claimed, polled and reconnected."""

    def __init__(self, vendor_id: int, product_id: int, *, serial: str | None = None,
                 port_path: str | None = None, backend: Any = None, timeout: float = 3.0,
                 job_timeout: float = 60.0, poll_interval: float = 10.0,
                 backoff: Backoff | None = None) -> None:
        self.target = UsbTarget(vendor_id, product_id, serial, port_path)

        async def connect() -> PrinterLink:
            return await UsbLink.open(self.target, backend, timeout=timeout)

        super().__init__(connect, name=str(self.target), timeout=timeout,
                         job_timeout=job_timeout, poll_interval=poll_interval, backoff=backoff)
