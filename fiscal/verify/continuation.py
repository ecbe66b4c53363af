"""A journal that continues a replaced box's chains: what its first entry declares.

A replacement box's initialisation event (260, seq 1) records in ``details.continues`` the
chain tips (``chain_seq``, ``sig``) of the box it replaces, the register's perpetual totals at the
handover (``perpetual``: ``total``, ``abs``) and the period of its last closure of each kind. The
verifier then expects each chain's first entry here to follow its tip (``chain_seq + 1``,
``prev_sig``) instead of starting at 1, the first closure of every kind to continue the
handed-over perpetual totals, and nothing to be dated in a period the predecessor had closed.

Read independently of ``fiscal.handover`` (the signing side): a malformed declaration is a
finding (``bad_continuation``), never an exception, and seeds nothing it cannot read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fiscal.verify import findings as f
from fiscal.verify.chains import Link
from fiscal.verify.findings import Finding

GENESIS = 260
CLOSURE_KINDS = ("day_closure", "month_closure", "year_closure")


@dataclass
class Seeds:
    """What a continuing journal starts from: chain tips and previous closures."""

    chains: dict[str, Link] = field(default_factory=dict)
    closures: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def seeds_of(first: Mapping[str, Any]) -> Seeds:
    """The seeds declared by a journal's first entry (none unless it continues a box)."""
    seeds = Seeds()
    record = first.get("record")
    if not isinstance(record, Mapping) or record.get("code") != GENESIS \
            or record.get("type") != "event":
        return seeds
    details = record.get("details")
    continues = details.get("continues") if isinstance(details, Mapping) else None
    if continues is None:
        return seeds
    where = (first.get("seq") if isinstance(first.get("seq"), int) else None,
             first.get("chain") if isinstance(first.get("chain"), str) else None,
             first.get("chain_seq") if isinstance(first.get("chain_seq"), int) else None)
    problems = _read(continues, seeds)
    seeds.findings = [f.found(f.BAD_CONTINUATION, problem, where) for problem in problems]
    return seeds


def _read(continues: Any, seeds: Seeds) -> list[str]:
    if not isinstance(continues, Mapping):
        return ["details.continues is not an object"]
    problems: list[str] = []
    chains, closures = continues.get("chains"), continues.get("closures", {})
    if not isinstance(chains, Mapping) or not chains:
        problems.append("details.continues.chains is missing or empty")
    else:
        for name, tip in chains.items():
            link = _tip(name, tip)
            if link is None:
                problems.append(f"details.continues.chains.{name} is malformed")
            else:
                seeds.chains[name] = link
    perpetual = _perpetual(continues.get("perpetual"))
    if perpetual is None:
        return [*problems, "details.continues.perpetual is not {total, abs} in integer cents"]
    if not isinstance(closures, Mapping):
        return [*problems, "details.continues.closures is not an object"]
    for kind in CLOSURE_KINDS:
        seeds.closures[kind] = {**perpetual, **_period(closures.get(kind))}
    problems += [f"details.continues.closures.{kind} is malformed"
                 for kind, closure in closures.items()
                 if kind not in CLOSURE_KINDS or not _period(closure)]
    return problems


def _perpetual(perpetual: Any) -> dict[str, int] | None:
    if not isinstance(perpetual, Mapping):
        return None
    total, absolute = perpetual.get("total"), perpetual.get("abs")
    if type(total) is not int or type(absolute) is not int:
        return None
    return {"perpetual_total": total, "perpetual_abs": absolute}


def _tip(name: Any, tip: Any) -> Link | None:
    if not isinstance(name, str) or not isinstance(tip, Mapping):
        return None
    chain_seq, seq, sig = tip.get("chain_seq"), tip.get("seq"), tip.get("sig")
    if type(chain_seq) is not int or chain_seq < 1 or type(seq) is not int \
            or not isinstance(sig, str) or not sig:
        return None
    return Link(seq=0, chain=name, chain_seq=chain_seq, sig=sig, prev_sig=None, at_utc="",
                code=None, key_id="", register_id="")


def _period(closure: Any) -> dict[str, str]:
    """A closure's period, or nothing when it is not two dates."""
    if not isinstance(closure, Mapping):
        return {}
    period = {name: closure.get(name) for name in ("period_from", "period_to")}
    return {k: str(v) for k, v in period.items()} if all(map(_is_date, period.values())) else {}


def _is_date(value: Any) -> bool:
    try:
        return isinstance(value, str) and dt.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False
