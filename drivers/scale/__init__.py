"""Scales: typed weights, the async ``Scale`` Protocol, Toledo 8217 and Dialog 06 drivers.

``protocol`` holds the types every caller uses (``Weight`` in integer grams, ``ScaleStatus``,
``Scale``); ``toledo8217`` and ``dialog06`` each hold a sans-I/O codec and a driver;
``serial_transport`` moves bytes (pyserial in one worker thread); ``simulator`` speaks both
protocols on a real pty for tests and ``tillbox sim scale``.
"""

from drivers.scale.protocol import NOT_WEIGHABLE, Scale, ScaleStatus, Weighing, Weight

__all__ = ["NOT_WEIGHABLE", "Scale", "ScaleStatus", "Weighing", "Weight"]
