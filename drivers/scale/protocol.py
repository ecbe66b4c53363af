"""What every scale driver gives its callers: typed weights and the async ``Scale`` Protocol.

Weights are **integer grams** (``int``), never floats: both supported protocols resolve to
1 g (Toledo 8217 ``ww.www`` kg, Dialog 06 five-digit grams). Prices are integer cents.

A reading that is not a stable weight is a value, not an exception: ``Weight.grams`` is
``None`` and ``Weight.status`` says why (in motion, over capacity, under zero…). Exceptions
(``drivers.errors``) are kept for a scale that does not answer, answers garbage, or refuses a
command.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from drivers.states import DeviceState


class ScaleStatus(enum.Flag):
    """What the scale says about its platform; the empty flag ``STABLE`` means all is well.

    The first six values are the bits b0–b5 of the Toledo 8217 status byte, so a masked
    status byte converts directly. ``UNDER_MINIMUM`` (Dialog 06 code 30: below the minimum
    weight legal for trade) has no Toledo bit.
    """

    STABLE = 0
    IN_MOTION = 0x01
    OVER_CAPACITY = 0x02
    UNDER_ZERO = 0x04
    OUTSIDE_ZERO_RANGE = 0x08
    CENTER_OF_ZERO = 0x10
    NET_MODE = 0x20
    UNDER_MINIMUM = 0x40


#: Flags that forbid selling on the reading (a weight must not be taken with any of them).
NOT_WEIGHABLE = (
    ScaleStatus.IN_MOTION
    | ScaleStatus.OVER_CAPACITY
    | ScaleStatus.UNDER_ZERO
    | ScaleStatus.OUTSIDE_ZERO_RANGE
    | ScaleStatus.UNDER_MINIMUM
)


@dataclass(frozen=True)
class Weight:
    """One reading: ``grams`` when stable (net if ``net``), else ``None`` and ``status`` why."""

    grams: int | None
    net: bool
    status: ScaleStatus

    @property
    def stable(self) -> bool:
        """Whether this reading is a stable weight one may sell on."""
        return self.grams is not None and not (self.status & NOT_WEIGHABLE)

    @classmethod
    def not_stable(cls, status: ScaleStatus) -> Weight:
        """A reading with no usable weight, for the reason(s) in ``status``."""
        return cls(None, ScaleStatus.NET_MODE in status, status)


@dataclass(frozen=True)
class Weighing:
    """A price-computing scale's answer (Dialog 06 record 02): weight and prices in cents."""

    weight: Weight
    unit_price_cents: int | None = None
    price_cents: int | None = None


class Scale(Protocol):
    """An async scale; every method may raise ``drivers.errors.DeviceError``.

    ``read_weight`` returns a ``Weight`` (stable or not, see ``Weight.stable``); it raises
    ``DeviceTimeout``/``DeviceUnavailable`` when the scale does not answer and updates
    ``state`` accordingly. ``zero``/``tare`` raise ``DeviceFault`` when the scale refuses
    (in motion, over capacity…) or cannot do it over its protocol (``reason="unsupported"``).
    """

    @property
    def state(self) -> DeviceState:
        """The device state (``drivers.states``)."""
        ...

    async def read_weight(self) -> Weight:
        """Return the current reading."""
        ...

    async def zero(self) -> None:
        """Set the scale to zero."""
        ...

    async def tare(self) -> None:
        """Take the weight on the platform as tare."""
        ...

    async def set_tare(self, grams: int) -> None:
        """Set a known tare, in grams."""
        ...

    async def clear_tare(self) -> None:
        """Remove the tare."""
        ...

    async def close(self) -> None:
        """Release the port; the driver may be opened again by the next call."""
        ...
