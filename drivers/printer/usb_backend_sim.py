"""A simulated USB receipt printer behind a pyusb backend: the printer simulator on USB.

pyusb talks to devices through a backend (``usb.backend.IBackend``: libusb1 on a real box).
:class:`SimUsbBackend` is such a backend, presenting :class:`UsbPrinterSimulator` devices with
real descriptors — a device (vendor/product id, string descriptors for maker, product and
serial number, bus, address and port path), one configuration, one printer-class interface
(07/01/02, bidirectional) with a bulk OUT and a bulk IN endpoint — so that
``usb.core.find(backend=SimUsbBackend(sim), idVendor=…)`` finds it and the USB driver runs
unchanged on top. Bytes written to bulk OUT feed the
:class:`~drivers.printer.simulator.EscPosMachine` and its answers (``DLE EOT``, ``GS r``)
come back on bulk IN, at most one packet per read.

What a real device and libusb do that the driver must cope with, modelled here:

- ``usblp`` owns the interface when the device appears (``kernel_driver_active``): claiming it
  fails with ``EBUSY`` until the driver detaches the kernel driver; it is attached again at
  every replug, and one claim at a time;
- :meth:`UsbPrinterSimulator.unplug`: the device leaves the bus, every open handle fails with
  ``ENODEV`` (a blocked read wakes up with it); :meth:`~UsbPrinterSimulator.plug` brings it
  back with a new address, as after a real replug;
- ``accessible = False``: opening fails with ``EACCES`` (no udev rule for the user);
- a bulk IN read with nothing to read times out (``USBTimeoutError``);
- the printer class requests ``GET_DEVICE_ID`` (IEEE 1284 id) and ``GET_PORT_STATUS``.

Thread-safe: the driver's worker thread reads and writes while a test sets faults.
"""

from __future__ import annotations

import array
import errno
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import usb.backend
import usb.core

from drivers.printer.simulator import EscPosMachine, Fault

__all__ = ["SimUsbBackend", "UsbPrinterSimulator"]

OUT_ENDPOINT, IN_ENDPOINT, MAX_PACKET = 0x01, 0x82, 64
PRINTER_CLASS, PRINTER_SUBCLASS, BIDIRECTIONAL = 7, 1, 2
GET_DESCRIPTOR, DESCRIPTOR_STRING = 6, 3
GET_DEVICE_ID, GET_PORT_STATUS, SOFT_RESET = 0, 1, 2
LANGID_EN_US = 0x0409
STRINGS = {1: "manufacturer", 2: "product", 3: "serial"}
"""String descriptor index → simulator attribute."""


def _usb_error(message: str, code: int) -> usb.core.USBError:
    """A ``USBError`` as the libusb1 backend raises it (message, libusb code, errno)."""
    return usb.core.USBError(message, None, code)


HANDLE_IDS = itertools.count(1)


@dataclass
class Descriptor:
    """A descriptor: its USB fields as attributes (pyusb copies them)."""

    fields: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        """The field ``name``."""
        try:
            return self.fields[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


@dataclass(frozen=True)
class SimHandle:
    """An open device: valid while the device stays plugged (same ``generation``)."""

    device: UsbPrinterSimulator
    generation: int
    id: int = field(default_factory=lambda: next(HANDLE_IDS))


class UsbPrinterSimulator(EscPosMachine):
    """A USB printer-class ESC/POS printer; faults and drawer as :class:`EscPosMachine`."""

    def __init__(self, *, vendor_id: int = 0x04B8, product_id: int = 0x0E15,
                 serial: str | None = "SIM0001", bus: int = 1,
                 port_numbers: tuple[int, ...] = (2,), manufacturer: str = "Tillbox",
                 product: str = "Simulated receipt printer") -> None:
        super().__init__()
        self.vendor_id, self.product_id, self.serial = vendor_id, product_id, serial
        self.bus, self.port_numbers = bus, port_numbers
        self.manufacturer, self.product = manufacturer, product
        self.address = 5
        self.plugged = True
        self.accessible = True
        self.kernel_driver_active = True
        self.detaches = 0
        self.configuration = 1
        self.claimed_by: int | None = None
        self.generation = 0
        self._in = bytearray()
        self._cond = threading.Condition()

    @property
    def port_path(self) -> str:
        """The sysfs USB path (``1-2``, ``1-2.4``): where the device is plugged."""
        return f"{self.bus}-{'.'.join(map(str, self.port_numbers))}"

    def unplug(self) -> None:
        """Leave the bus: open handles fail with ``ENODEV``, ``find`` no longer lists it."""
        with self._cond:
            self.plugged, self.claimed_by = False, None
            self.generation += 1
            self._in.clear()
            self._cond.notify_all()

    def plug(self) -> None:
        """Come back with a new address; ``usblp`` binds the interface again."""
        with self._cond:
            self.plugged, self.kernel_driver_active = True, True
            self.address += 1

    def feed(self, data: bytes) -> bytes:
        """Feed the machine under the lock (the driver's thread and tests share it)."""
        with self._cond:
            return super().feed(data)

    # -- the USB side, called by the backend ----------------------------------------------------

    def check(self, handle: SimHandle) -> None:
        """Raise ``ENODEV`` when ``handle`` is from before an unplug."""
        if not self.plugged or handle.generation != self.generation:
            raise _usb_error("No such device (it may have been disconnected)", errno.ENODEV)

    def bulk_out(self, handle: SimHandle, data: bytes) -> int:
        """Bytes from the host: feed the machine, queue its answers for bulk IN."""
        with self._cond:
            self._claimed(handle)
            answer = super().feed(data)
            if answer:
                self._in += answer
                self._cond.notify_all()
        return len(data)

    def bulk_in(self, handle: SimHandle, size: int, timeout_ms: int) -> bytes:
        """At most one packet of answers, waiting up to ``timeout_ms`` (0: forever)."""
        deadline = None if timeout_ms == 0 else time.monotonic() + timeout_ms / 1000
        with self._cond:
            self._claimed(handle)
            while not self._in:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise usb.core.USBTimeoutError("Operation timed out", None, errno.ETIMEDOUT)
                self._cond.wait(left)
                self._claimed(handle)
            count = min(size, MAX_PACKET, len(self._in))
            data = bytes(self._in[:count])
            del self._in[:count]
            return data

    def claim(self, handle: SimHandle) -> None:
        """Claim the interface: refused while ``usblp`` or another handle holds it."""
        with self._cond:
            self.check(handle)
            if self.kernel_driver_active or self.claimed_by not in (None, handle.id):
                raise _usb_error("Resource busy", errno.EBUSY)
            self.claimed_by = handle.id

    def release(self, handle: SimHandle) -> None:
        """Release the interface if ``handle`` holds it."""
        with self._cond:
            if self.claimed_by == handle.id:
                self.claimed_by = None

    def _claimed(self, handle: SimHandle) -> None:
        self.check(handle)
        if self.claimed_by != handle.id:
            raise _usb_error("Resource busy (interface not claimed)", errno.EBUSY)

    def device_id(self) -> bytes:
        """The IEEE 1284 device id of ``GET_DEVICE_ID``: 2-byte big-endian length first."""
        text = (f"MFG:{self.manufacturer};CMD:ESC/POS;MDL:{self.product};CLS:PRINTER;"
                f"SN:{self.serial or ''};").encode("ascii", errors="replace")
        return (len(text) + 2).to_bytes(2, "big") + text

    def port_status(self) -> int:
        """``GET_PORT_STATUS``: bit 3 no error, bit 4 selected, bit 5 paper empty."""
        paper_out = Fault.PAPER_OUT in self.faults
        return (0x00 if self.offline else 0x08) | 0x10 | (0x20 if paper_out else 0x00)

    def string(self, index: int) -> str | None:
        """String descriptor ``index`` (1 maker, 2 product, 3 serial)."""
        name = STRINGS.get(index)
        return None if name is None else getattr(self, name)


def _device_descriptor(sim: UsbPrinterSimulator) -> Descriptor:
    return Descriptor({
        "bLength": 18, "bDescriptorType": 1, "bcdUSB": 0x0200, "bDeviceClass": 0,
        "bDeviceSubClass": 0, "bDeviceProtocol": 0, "bMaxPacketSize0": 64,
        "idVendor": sim.vendor_id, "idProduct": sim.product_id, "bcdDevice": 0x0100,
        "iManufacturer": 1, "iProduct": 2, "iSerialNumber": 3 if sim.serial else 0,
        "bNumConfigurations": 1, "bus": sim.bus, "address": sim.address,
        "port_number": sim.port_numbers[-1], "port_numbers": sim.port_numbers, "speed": 2})


CONFIGURATION = Descriptor({
    "bLength": 9, "bDescriptorType": 2, "wTotalLength": 32, "bNumInterfaces": 1,
    "bConfigurationValue": 1, "iConfiguration": 0, "bmAttributes": 0xC0, "bMaxPower": 50,
    "extra_descriptors": []})
INTERFACE = Descriptor({
    "bLength": 9, "bDescriptorType": 4, "bInterfaceNumber": 0, "bAlternateSetting": 0,
    "bNumEndpoints": 2, "bInterfaceClass": PRINTER_CLASS, "bInterfaceSubClass": PRINTER_SUBCLASS,
    "bInterfaceProtocol": BIDIRECTIONAL, "iInterface": 0, "extra_descriptors": []})
ENDPOINTS = tuple(Descriptor({
    "bLength": 7, "bDescriptorType": 5, "bEndpointAddress": address, "bmAttributes": 2,
    "wMaxPacketSize": MAX_PACKET, "bInterval": 0, "bRefresh": 0, "bSynchAddress": 0,
    "extra_descriptors": []}) for address in (OUT_ENDPOINT, IN_ENDPOINT))


class SimUsbBackend(usb.backend.IBackend):  # type: ignore[misc]  # pyusb is untyped
    """A pyusb backend whose bus holds the given simulated printers (see the module doc)."""

    def __init__(self, *devices: UsbPrinterSimulator) -> None:
        super().__init__()
        self.devices = list(devices)

    def enumerate_devices(self) -> list[UsbPrinterSimulator]:
        """The plugged devices."""
        return [device for device in self.devices if device.plugged]

    def get_parent(self, dev: UsbPrinterSimulator) -> None:
        """No hub is modelled."""

    def get_device_descriptor(self, dev: UsbPrinterSimulator) -> Descriptor:
        """The device descriptor, with bus, address and port path."""
        return _device_descriptor(dev)

    def get_configuration_descriptor(self, dev: UsbPrinterSimulator, config: int) -> Descriptor:
        """The one configuration."""
        _index(config, 1, "configuration")
        return CONFIGURATION

    def get_interface_descriptor(self, dev: UsbPrinterSimulator, intf: int, alt: int,
                                 config: int) -> Descriptor:
        """The printer-class interface (no alternate settings)."""
        _index(intf, 1, "interface")
        _index(alt, 1, "alternate setting")
        return INTERFACE

    def get_endpoint_descriptor(self, dev: UsbPrinterSimulator, ep: int, intf: int, alt: int,
                                config: int) -> Descriptor:
        """Bulk OUT (index 0) and bulk IN (index 1)."""
        _index(ep, len(ENDPOINTS), "endpoint")
        return ENDPOINTS[ep]

    def open_device(self, dev: UsbPrinterSimulator) -> SimHandle:
        """A handle on the device as it is plugged now (``EACCES`` if not accessible)."""
        if not dev.plugged:
            raise _usb_error("No such device (it may have been disconnected)", errno.ENODEV)
        if not dev.accessible:
            raise _usb_error("Access denied (insufficient permissions)", errno.EACCES)
        return SimHandle(dev, dev.generation)

    def close_device(self, dev_handle: SimHandle) -> None:
        """Close: the claim, if any, goes."""
        dev_handle.device.release(dev_handle)

    def set_configuration(self, dev_handle: SimHandle, config_value: int) -> None:
        """Select the configuration (only 1 exists)."""
        dev_handle.device.check(dev_handle)
        dev_handle.device.configuration = config_value

    def get_configuration(self, dev_handle: SimHandle) -> int:
        """The active configuration (1 since enumeration)."""
        dev_handle.device.check(dev_handle)
        return dev_handle.device.configuration

    def set_interface_altsetting(self, dev_handle: SimHandle, intf: int, altsetting: int) -> None:
        """Only setting 0 exists."""
        dev_handle.device.check(dev_handle)

    def claim_interface(self, dev_handle: SimHandle, intf: int) -> None:
        """Claim the printer interface (``EBUSY`` while ``usblp`` has it)."""
        dev_handle.device.claim(dev_handle)

    def release_interface(self, dev_handle: SimHandle, intf: int) -> None:
        """Release the printer interface."""
        dev_handle.device.release(dev_handle)

    def bulk_write(self, dev_handle: SimHandle, ep: int, intf: int, data: array.array[int],
                   timeout: int) -> int:
        """Bulk OUT: print data and commands."""
        return dev_handle.device.bulk_out(dev_handle, data.tobytes())

    def bulk_read(self, dev_handle: SimHandle, ep: int, intf: int, buff: array.array[int],
                  timeout: int) -> int:
        """Bulk IN: status answers, one packet at most."""
        data = dev_handle.device.bulk_in(dev_handle, len(buff), timeout)
        buff[: len(data)] = array.array("B", data)
        return len(data)

    def ctrl_transfer(self, dev_handle: SimHandle, bmRequestType: int, bRequest: int,  # noqa: N803
                      wValue: int, wIndex: int, data: array.array[int],  # noqa: N803
                      timeout: int) -> int:
        """Standard string descriptors and the printer class requests; others stall."""
        device = dev_handle.device
        device.check(dev_handle)
        if not bmRequestType & 0x80:
            return _control_out(bmRequestType, bRequest, len(data))
        answer = _control_in(device, bmRequestType, bRequest, wValue)
        count = min(len(answer), len(data))
        data[:count] = array.array("B", answer[:count])
        return count

    def clear_halt(self, dev_handle: SimHandle, ep: int) -> None:
        """Nothing halts."""
        dev_handle.device.check(dev_handle)

    def reset_device(self, dev_handle: SimHandle) -> None:
        """A reset changes nothing visible here."""
        dev_handle.device.check(dev_handle)

    def is_kernel_driver_active(self, dev_handle: SimHandle, intf: int) -> bool:
        """Whether ``usblp`` holds the interface."""
        dev_handle.device.check(dev_handle)
        return dev_handle.device.kernel_driver_active

    def detach_kernel_driver(self, dev_handle: SimHandle, intf: int) -> None:
        """Take the interface away from ``usblp``."""
        device = dev_handle.device
        device.check(dev_handle)
        if not device.kernel_driver_active:
            raise _usb_error("Entity not found", errno.ENOENT)
        device.kernel_driver_active = False
        device.detaches += 1

    def attach_kernel_driver(self, dev_handle: SimHandle, intf: int) -> None:
        """Give the interface back to ``usblp``."""
        dev_handle.device.check(dev_handle)
        dev_handle.device.kernel_driver_active = True


def _index(value: int, count: int, what: str) -> None:
    if not 0 <= value < count:
        raise IndexError(f"Invalid {what} index {value}")


def _control_out(request_type: int, request: int, length: int) -> int:
    if (request_type, request) == (0x21, SOFT_RESET):
        return length
    raise _usb_error("Pipe error", errno.EPIPE)


def _control_in(device: UsbPrinterSimulator, request_type: int, request: int,
                value: int) -> bytes:
    if (request_type, request) == (0x80, GET_DESCRIPTOR) and value >> 8 == DESCRIPTOR_STRING:
        return _string_descriptor(device, value & 0xFF)
    if (request_type, request) == (0xA1, GET_DEVICE_ID):
        return device.device_id()
    if (request_type, request) == (0xA1, GET_PORT_STATUS):
        return bytes((device.port_status(),))
    raise _usb_error("Pipe error", errno.EPIPE)


def _string_descriptor(device: UsbPrinterSimulator, index: int) -> bytes:
    if index == 0:
        payload = LANGID_EN_US.to_bytes(2, "little")
    else:
        text = device.string(index)
        if text is None:
            raise _usb_error("Pipe error", errno.EPIPE)
        payload = text.encode("utf-16-le")
    return bytes((len(payload) + 2, DESCRIPTOR_STRING)) + payload
