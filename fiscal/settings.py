"""The store-level settings the journal needs: identity, VAT table, tenders, closure policy."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from fiscal.money import FRENCH_VAT_RATES

STANDARD_TENDERS: tuple[str, ...] = (
    "cash", "card", "cheque", "meal_voucher", "gift_voucher", "store_credit",
)


class ClosurePolicy(BaseModel):
    """When business days end and what happens if one is left open."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day_starts_at_hour: int = Field(default=0, ge=0, le=23)
    """Local hour at which a business day starts (4 = sales until 03:59 count for yesterday)."""
    grace_hours: int = Field(default=6, ge=0, le=72)
    """Hours after the end of a business day before sales are refused if it is still open."""
    auto_close: bool = True
    """Close the previous business day automatically instead of refusing sales."""
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)


class JournalSettings(BaseModel):
    """Everything ``fiscal`` needs to know about the store and register it journals for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store_id: str = "demo-store"
    register_id: str = "R1"
    timezone: str = "Europe/Paris"
    currency: str = "EUR"
    prices_include_vat: bool = True
    vat_rates: tuple[int, ...] = FRENCH_VAT_RATES
    extra_tenders: tuple[str, ...] = ()
    closure: ClosurePolicy = ClosurePolicy()
    software_name: str = "tillbox"
    software_version: str = "0.1.0"

    @property
    def tenders(self) -> tuple[str, ...]:
        """Every tender a payment may use."""
        return STANDARD_TENDERS + tuple(t for t in self.extra_tenders if t not in STANDARD_TENDERS)
