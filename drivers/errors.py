"""The one exception tree of the device drivers.

::

    DeviceError
     ├── DeviceUnavailable   the device is absent, unplugged or not answering (a state, retried)
     ├── DeviceTimeout       no answer within the call's timeout
     ├── DeviceFault         the device answered with a fault (paper out, cover open, overload…)
     └── ProtocolError       bytes on the wire that do not follow the protocol

pyserial, pyusb, socket and python-escpos exceptions are translated into these once, at the
transport boundary, with ``raise … from``. Callers never see a third-party exception.
"""

from __future__ import annotations


class DeviceError(Exception):
    """Base of every driver error; ``reason`` is a short stable code (``paper_out``…)."""

    def __init__(self, message: str, *, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


class DeviceUnavailable(DeviceError):
    """The device is absent or not answering."""


class DeviceTimeout(DeviceError):
    """The device did not answer in time."""


class DeviceFault(DeviceError):
    """The device reported a fault."""


class ProtocolError(DeviceError):
    """The device sent bytes that break its protocol."""
