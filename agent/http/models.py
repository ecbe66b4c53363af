"""Building blocks of the API's request and response models, shared by every route module.

Request bodies derive from ``Body`` (unknown fields refused). Amounts are integer cents bounded
by the journal's limit, so that no input can overflow a total; VAT rates are basis points;
quantities are thousandths (grams for weighed items).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fiscal.money import MAX_AMOUNT

Cents = Annotated[int, Field(ge=0, le=MAX_AMOUNT, description="Integer cents")]
SignedCents = Annotated[int, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="Integer cents")]
Rate = Annotated[int, Field(ge=0, le=10_000, description="VAT rate in basis points")]
QuantityMilli = Annotated[int, Field(ge=1, le=1_000_000_000,
                                     description="Quantity in thousandths (grams by weight)")]
Label = Annotated[str, Field(min_length=1, max_length=120)]
Reason = Annotated[str, Field(min_length=1, max_length=200)]


class Body(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
