"""A register's handover from a replaced box: the chain tips and closures its journal continues.

When a box is lost or broken, a new box is provisioned for the same register. It must not start
the register's chains again at 1 nor its perpetual totals at 0: the cloud hands it the
predecessor's chain tips (last ``chain_seq`` and signature of each chain), the register's
perpetual totals at the handover (every ticket the predecessor recorded, including those of days
it never closed) and the period each kind of closure had reached; the new journal's
initialisation event (260) records that handover in ``details.continues``. From then on every
chain continues from its tip (``chain_seq + 1``, ``prev_sig`` = the tip's signature), the first
closure of each kind adds its period to the handed-over perpetual totals, and closed periods stay
closed; the verifier checks exactly that.

``Handover.from_json`` validates a handover document (the cloud's answer, or the event's
details) and names the offending field; ``details()`` is what the event records.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fiscal.chain import CHAINS, ChainHead
from fiscal.errors import InvalidInput
from fiscal.money import MAX_AMOUNT

CLOSURE_KINDS = ("day_closure", "month_closure", "year_closure")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_SIG = re.compile(r"^[A-Za-z0-9_-]{16,200}$")
MAX_PERPETUAL = MAX_AMOUNT * 10**6


@dataclass(frozen=True)
class Tip:
    """The last entry of one of the predecessor's chains."""

    chain_seq: int
    seq: int
    sig: str


@dataclass(frozen=True)
class ClosedPeriod:
    """The period of the predecessor's last closure of one kind."""

    period_from: str
    period_to: str


@dataclass(frozen=True)
class Handover:
    """What a replacement box's journal continues from."""

    box_id: str
    epoch: str
    store_id: str
    register_id: str
    last_seq: int
    key_id: str
    chains: Mapping[str, Tip]
    perpetual_total: int
    """The register's perpetual total (sales less returns, cents) at the handover."""
    perpetual_abs: int
    """The register's perpetual total of sales plus returns in absolute value (cents)."""
    closures: Mapping[str, ClosedPeriod]

    @classmethod
    def from_json(cls, doc: Any) -> Handover:
        """Validate a handover document; ``InvalidInput`` names the first bad field."""
        if not isinstance(doc, Mapping):
            raise _bad("handover", "the handover must be a JSON object")
        chains = _mapping(doc, "chains")
        closures = _mapping(doc, "closures")
        if not chains:
            raise _bad("handover.chains", "the handover holds no chain")
        total, absolute = _perpetual(_mapping(doc, "perpetual"))
        return cls(
            box_id=_text(doc, "box_id"), epoch=_text(doc, "epoch"),
            store_id=_text(doc, "store_id"), register_id=_text(doc, "register_id"),
            last_seq=_count(doc, "last_seq", "handover"), key_id=_text(doc, "key_id"),
            chains=MappingProxyType({_chain(name): _tip(name, tip)
                                     for name, tip in chains.items()}),
            perpetual_total=total, perpetual_abs=absolute,
            closures=MappingProxyType({_kind(kind): _closure(kind, closure)
                                       for kind, closure in closures.items()}),
        )

    def details(self) -> dict[str, Any]:
        """The handover as the initialisation event records it (canonical JSON types only)."""
        return {
            "box_id": self.box_id, "epoch": self.epoch, "store_id": self.store_id,
            "register_id": self.register_id, "last_seq": self.last_seq, "key_id": self.key_id,
            "chains": {name: {"chain_seq": tip.chain_seq, "seq": tip.seq, "sig": tip.sig}
                       for name, tip in sorted(self.chains.items())},
            "perpetual": {"total": self.perpetual_total, "abs": self.perpetual_abs},
            "closures": {kind: {"period_from": c.period_from, "period_to": c.period_to}
                         for kind, c in sorted(self.closures.items())},
        }

    def previous(self, kind: str) -> Mapping[str, Any]:
        """What the first closure of ``kind`` here continues, as a closure record's fields."""
        fields: dict[str, Any] = {"perpetual_total": self.perpetual_total,
                                  "perpetual_abs": self.perpetual_abs}
        if (closed := self.closures.get(kind)) is not None:
            fields.update(period_from=closed.period_from, period_to=closed.period_to)
        return MappingProxyType(fields)

    def heads(self) -> dict[str, ChainHead]:
        """The tips as chain heads to append after (not this journal's heads: no head_sig)."""
        return {name: ChainHead(chain=name, chain_seq=tip.chain_seq, seq=tip.seq, sig=tip.sig,
                                head_sig="")
                for name, tip in self.chains.items()}

    def check_placement(self, store_id: str, register_id: str) -> None:
        """Refuse a handover of another store's or another register's journal."""
        if (self.store_id, self.register_id) != (store_id, register_id):
            raise InvalidInput(
                f"the handover is for register {self.register_id} of store {self.store_id}, "
                f"this box is register {register_id} of store {store_id}",
                code="handover_placement", field="handover.register_id")


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, code="bad_handover", field=field)


def _mapping(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = doc.get(name, {} if name == "closures" else None)
    if not isinstance(value, Mapping):
        raise _bad(f"handover.{name}", f"{name} must be an object")
    return value


def _text(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not _ID.match(value):
        raise _bad(f"handover.{name}", f"{name} must be an identifier (letters, digits, . _ : -)")
    return value


def _count(doc: Mapping[str, Any], name: str, where: str) -> int:
    value = doc.get(name)
    if type(value) is not int or not 1 <= value < 2**53:
        raise _bad(f"{where}.{name}", f"{name} must be a positive integer")
    return value


def _chain(name: Any) -> str:
    if name not in CHAINS:
        raise _bad("handover.chains", f"unknown chain {name!r}")
    return str(name)


def _tip(name: str, tip: Any) -> Tip:
    where = f"handover.chains.{name}"
    if not isinstance(tip, Mapping):
        raise _bad(where, "a chain tip must be an object")
    sig = tip.get("sig")
    if not isinstance(sig, str) or not _SIG.match(sig):
        raise _bad(f"{where}.sig", "sig must be a base64url signature")
    return Tip(chain_seq=_count(tip, "chain_seq", where), seq=_count(tip, "seq", where), sig=sig)


def _kind(kind: Any) -> str:
    if kind not in CLOSURE_KINDS:
        raise _bad("handover.closures", f"unknown closure kind {kind!r}")
    return str(kind)


def _closure(kind: str, closure: Any) -> ClosedPeriod:
    where = f"handover.closures.{kind}"
    if not isinstance(closure, Mapping):
        raise _bad(where, "a closure must be an object")
    start, end = _date(closure, "period_from", where), _date(closure, "period_to", where)
    if end < start:
        raise _bad(f"{where}.period_to", "period_to is before period_from")
    return ClosedPeriod(start, end)


def _perpetual(perpetual: Mapping[str, Any]) -> tuple[int, int]:
    total, absolute = perpetual.get("total"), perpetual.get("abs")
    if type(total) is not int or abs(total) > MAX_PERPETUAL:
        raise _bad("handover.perpetual.total", "total must be an integer (cents)")
    if type(absolute) is not int or not abs(total) <= absolute <= MAX_PERPETUAL:
        raise _bad("handover.perpetual.abs", "abs must be an integer (cents), at least |total|")
    return total, absolute


def _date(closure: Mapping[str, Any], name: str, where: str) -> str:
    value = closure.get(name)
    try:
        if isinstance(value, str) and len(value) == 10:
            return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise _bad(f"{where}.{name}", f"{name} must be a date YYYY-MM-DD")
