"""A line a frontend asks for, resolved into a draft line: catalog, scale or open price.

A request names exactly one of a barcode, a sku or an open price (label, unit price, VAT rate).
Goods sold by weight take their grams from the request, from the barcode (in-store weight
labels, when the catalog decodes them: ``embedded_weight_milli``) or from the scale (a stable
reading only); an in-store price label (``embedded_price``) sells one pack at its price. Each
line is priced alone by ``fiscal`` so that a refusal names the request's field at fault.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from agent.devices import Devices
from agent.errors import ProblemError, conflict, invalid
from agent.services.catalog import Catalog, Sellable
from agent.services.drafts import DraftLine
from drivers.errors import DeviceError
from fiscal.errors import InvalidInput
from fiscal.money import check_text
from fiscal.pricing import price_line
from fiscal.settings import JournalSettings

KINDS = ("barcode", "sku")
OPEN_PRICE = ("label", "unit_price", "vat_rate")


@dataclass(frozen=True)
class LineSpec:
    """A line as a frontend asks for it: exactly one of barcode, sku or an open price."""

    barcode: str | None = None
    sku: str | None = None
    label: str | None = None
    unit_price: int | None = None
    vat_rate: int | None = None
    quantity_milli: int | None = None


class LineResolver:
    """Turns ``LineSpec`` into priced-checked ``DraftLine`` (id 0 until added to a draft)."""

    def __init__(self, catalog: Catalog, settings: JournalSettings, devices: Devices | None,
                 clock: Callable[[], dt.datetime]) -> None:
        self.catalog, self.settings, self.devices, self._clock = catalog, settings, devices, clock

    async def resolve(self, spec: LineSpec, field: str = "") -> DraftLine:
        """The draft line ``spec`` asks for; refusals name ``field`` + the request's field."""
        kind = kind_of(spec, field)
        if kind == "open":
            line = open_price(spec, field)
        else:
            line = await self._from_item(await self._sellable(kind, spec, field), spec, field)
        check_line(line, self.settings, field)
        return line

    async def _sellable(self, kind: str, spec: LineSpec, field: str) -> Sellable:
        code = spec.barcode if kind == "barcode" else spec.sku
        assert code is not None
        check_text(code, field + kind, max_length=64)
        at = self._clock()
        item = await (self.catalog.by_barcode(code, at) if kind == "barcode"
                      else self.catalog.by_sku(code, at))
        if item is None:
            raise invalid(f"unknown_{kind}", f"no product with {kind} {code!r}", field + kind)
        return item

    async def _from_item(self, item: Sellable, spec: LineSpec, field: str) -> DraftLine:
        price, grams = embedded(item, "embedded_price"), embedded(item, "embedded_weight_milli")
        unit_price, quantity = item.unit_price, spec.quantity_milli
        if price is not None:
            unit_price, quantity = price, quantity or 1000
        elif grams is not None:
            quantity = grams
        elif quantity is None:
            quantity = await self.weigh(field) if item.sold_by_weight else 1000
        return DraftLine(id=0, label=item.label, sku=item.sku, barcode=item.barcode,
                         quantity_milli=quantity, unit_price=unit_price, vat_rate=item.vat_rate,
                         sold_by_weight=item.sold_by_weight and price is None)

    async def weigh(self, field: str = "") -> int:
        """Stable grams on the scale (else 409 ``scale_unavailable``, ``weight_unstable``…)."""
        where = field + "quantity_milli"
        devices = self.devices
        scale = devices.scale if devices is not None and devices.started else None
        if scale is None:
            raise conflict("scale_unavailable", "no scale is connected: send quantity_milli",
                           where)
        try:
            weight = await scale.read_weight()
        except DeviceError as error:
            raise conflict("scale_unavailable", f"the scale does not answer ({error.reason})",
                           where) from error
        if not weight.stable or weight.grams is None:
            raise conflict("weight_unstable", "the weight is not stable yet", where)
        if weight.grams <= 0:
            raise conflict("weight_empty", "nothing is on the scale", where)
        return weight.grams


def kind_of(spec: LineSpec, field: str) -> str:
    """Which kind of line ``spec`` asks for: ``barcode``, ``sku`` or ``open`` (price)."""
    given = [name for name in KINDS if getattr(spec, name) is not None]
    given += [name for name in OPEN_PRICE if getattr(spec, name) is not None][:1]
    if len(given) != 1:
        raise invalid("line_kind", "give exactly one of barcode, sku or an open price "
                      "(label, unit_price, vat_rate)", field + (given[1:] or ["barcode"])[0])
    return given[0] if given[0] in KINDS else "open"


def open_price(spec: LineSpec, field: str) -> DraftLine:
    """An open-price line (label, unit price and VAT rate typed at the till)."""
    label, price, rate = spec.label, spec.unit_price, spec.vat_rate
    if label is None or price is None or rate is None:
        missing = next(name for name in OPEN_PRICE if getattr(spec, name) is None)
        raise invalid("open_price_incomplete",
                      "an open-price line needs label, unit_price and vat_rate", field + missing)
    return DraftLine(id=0, label=label, unit_price=price, vat_rate=rate,
                     quantity_milli=spec.quantity_milli or 1000)


def embedded(item: Sellable, name: str) -> int | None:
    """An amount a barcode carries (price or weight labels), when the catalog decoded one."""
    value = getattr(item, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_line(line: DraftLine, settings: JournalSettings, field: str) -> None:
    """Price one line alone, naming the offending field of the request."""
    try:
        price_line(line.request(), 0, settings)
    except InvalidInput as error:
        raise moved(error, "lines.0.", field) from error


def moved(error: InvalidInput, old: str, new: str) -> ProblemError:
    """A fiscal refusal as a 422 whose field is renamed from ``old…`` to ``new…``."""
    field = error.field
    if field is not None and field.startswith(old):
        field = new + field[len(old):]
    return ProblemError(422, error.code, error.message, field)
