"""The HQ API's response models and the shared parameter types.

Amounts are integer cents, VAT rates basis points (2000 = 20 %), as in the journal.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import BaseModel

NO_NUL = r"^[^\x00]+$"
"""PostgreSQL text cannot hold NUL: such an input is refused (422), not sent."""
Ident = Annotated[str | None, Query(min_length=1, max_length=128, pattern=NO_NUL)]
BoxId = Annotated[str, Path(min_length=1, max_length=128, pattern=NO_NUL)]
Dimension = Literal["tenant", "store", "box", "register", "operator", "day"]
ClosureKind = Literal["day", "month", "year"]


class VatLine(BaseModel):
    """The totals of one VAT rate."""

    rate: int
    excl: int
    vat: int
    incl: int


class TenderLine(BaseModel):
    """The amount of one tender (cash net of change)."""

    tender: str
    amount: int


class SalesRow(BaseModel):
    """Sales and returns of one group (the dimensions asked for are set, the others null)."""

    tenant_id: str | None = None
    store_id: str | None = None
    box_id: str | None = None
    register_id: str | None = None
    operator: str | None = None
    business_date: dt.date | None = None
    sale_count: int
    return_count: int
    sales_total: int
    returns_total: int
    net_total: int
    total_excl: int
    total_vat: int


class SalesReport(BaseModel):
    """Sales grouped by the dimensions asked for, over a range of business dates."""

    by: list[Dimension]
    date_from: dt.date | None
    date_to: dt.date | None
    rows: list[SalesRow]
    totals: SalesRow


class Closure(BaseModel):
    """A closure (Z) as the box signed it: its period's totals and the perpetual totals."""

    box_id: str
    epoch: str
    store_id: str
    register_id: str
    kind: ClosureKind
    number: int
    """The closure's number in its chain (Z number for day closures)."""
    seq: int
    at_utc: dt.datetime
    period_from: dt.date
    period_to: dt.date
    operator: str | None
    automatic: bool
    ticket_count: int
    sale_count: int
    return_count: int
    sales_total: int
    returns_total: int
    period_total: int
    perpetual_total: int
    perpetual_abs: int
    breakdown: list[VatLine]
    tenders: list[TenderLine]


class PerpetualTotal(BaseModel):
    """A box's perpetual totals as of its latest closure of a kind (current journal)."""

    box_id: str
    epoch: str
    store_id: str
    register_id: str
    kind: ClosureKind
    seq: int
    period_to: dt.date
    perpetual_total: int
    perpetual_abs: int


class Alarm(BaseModel):
    """An integrity alarm raised by the ingest (refused batch, new or stale journal)."""

    alarm_id: int
    box_id: str
    epoch: str | None
    kind: str
    seq: int | None
    detail: str
    count: int
    first_at: dt.datetime
    last_at: dt.datetime
    cleared_at: dt.datetime | None


class ChainTip(BaseModel):
    """The last stored entry of a chain (what a replacement box continues from)."""

    chain: str
    chain_seq: int
    seq: int
    sig: str


class Box(BaseModel):
    """A box: identity, replication watermark and lag, state."""

    box_id: str
    tenant_id: str | None
    store_id: str | None
    register_id: str | None
    epoch: str | None
    acked_through: int
    acked_at: dt.datetime | None
    last_entry_at: dt.datetime | None
    reported_last_seq: int | None
    """The last seq the box reported on its status topic (same epoch only)."""
    lag: int | None
    """Entries the box holds that the cloud has not stored yet (from its status)."""
    link: str | None
    """The box's last reported state (``online``, ``offline``…)."""
    status_at: dt.datetime | None
    state: Literal["ok", "alarm"]
    open_alarms: int


class BoxDetail(Box):
    """A box with its chain tips and open alarms."""

    chains: list[ChainTip]
    alarms: list[Alarm]


class Health(BaseModel):
    """The HQ service and its database."""

    status: Literal["ok"]
    boxes: int
    acked_entries: int
    """Entries stored and acknowledged, over every box's current journal."""
