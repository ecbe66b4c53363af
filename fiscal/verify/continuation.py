"""A journal that continues a replaced box's chains: what its first entry declares.

A replacement box's initialisation event (260, seq 1) records in ``details.continues`` the
chain tips (``chain_seq``, ``sig``) and the last closures (period, perpetual totals) of the box it
replaces. The verifier then expects each chain's first entry here to follow its tip
(``chain_seq + 1``, ``prev_sig``) instead of starting at 1, each first closure to continue the
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
    if not isinstance(closures, Mapping):
        return [*problems, "details.continues.closures is not an object"]
    for kind, closure in closures.items():
        if kind in CLOSURE_KINDS and _closure_ok(closure):
            seeds.closures[kind] = closure
        else:
            problems.append(f"details.continues.closures.{kind} is malformed")
    return problems


def _tip(name: Any, tip: Any) -> Link | None:
    if not isinstance(name, str) or not isinstance(tip, Mapping):
        return None
    chain_seq, seq, sig = tip.get("chain_seq"), tip.get("seq"), tip.get("sig")
    if type(chain_seq) is not int or chain_seq < 1 or type(seq) is not int \
            or not isinstance(sig, str) or not sig:
        return None
    return Link(seq=0, chain=name, chain_seq=chain_seq, sig=sig, prev_sig=None, at_utc="",
                code=None, key_id="", register_id="")


def _closure_ok(closure: Any) -> bool:
    if not isinstance(closure, Mapping):
        return False
    dates = (closure.get("period_from"), closure.get("period_to"))
    totals = (closure.get("perpetual_total"), closure.get("perpetual_abs"))
    return all(_is_date(d) for d in dates) and all(type(t) is int for t in totals)


def _is_date(value: Any) -> bool:
    try:
        return isinstance(value, str) and dt.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False
