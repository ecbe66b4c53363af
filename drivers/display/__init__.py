"""Customer pole displays: command sets, localised messages, the serial driver, a pty simulator.

``commands`` builds the bytes (sans-I/O), ``messages`` the two lines a customer reads,
``driver`` holds the ``CustomerDisplay`` Protocol and ``SerialDisplay``, and ``simulator`` a
display on a pty for tests and for working without hardware.
"""

from drivers.display.commands import (
    CD5220_CP858,
    EPSON_CP858,
    EPSON_CP866,
    CommandSet,
    DisplayCommands,
    DisplayProfile,
)
from drivers.display.driver import CustomerDisplay, SerialDisplay

__all__ = [
    "CD5220_CP858",
    "EPSON_CP858",
    "EPSON_CP866",
    "CommandSet",
    "CustomerDisplay",
    "DisplayCommands",
    "DisplayProfile",
    "SerialDisplay",
]
