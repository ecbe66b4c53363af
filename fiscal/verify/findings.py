"""What the verifier reports: findings (one per problem, with a stable code) and the report.

The codes are listed, with their meaning, in the package docstring (``fiscal.verify``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# -- entries -----------------------------------------------------------------------------------
UNPARSABLE = "unparsable"
BAD_ENVELOPE = "bad_envelope"
INDEX_MISMATCH = "index_mismatch"
UNKNOWN_ALG = "unknown_alg"
UNKNOWN_FORMAT = "unknown_format"
NOT_CANONICAL = "not_canonical"
HASH_MISMATCH = "hash_mismatch"
DATA_MISMATCH = "data_mismatch"
BAD_SIGNATURE = "bad_signature"
FIRST_FLAG = "first_flag"
WRONG_CHAIN = "wrong_chain"
BAD_TIME = "bad_time"
BAD_RECORD = "bad_record"
IDENTITY_MISMATCH = "identity_mismatch"
BREAKDOWN_MISMATCH = "breakdown_mismatch"
TOTAL_MISMATCH = "total_mismatch"
PAYMENT_MISMATCH = "payment_mismatch"
# -- sequences and time ------------------------------------------------------------------------
SEQ_GAP = "seq_gap"
SEQ_ORDER = "seq_order"
CHAIN_GAP = "chain_gap"
PREV_SIG_MISMATCH = "prev_sig_mismatch"
CLOCK_BACKWARDS = "clock_backwards"
# -- keys --------------------------------------------------------------------------------------
UNKNOWN_KEY = "unknown_key"
RETIRED_KEY = "retired_key"
NO_GENESIS = "no_genesis"
GENESIS_MISMATCH = "genesis_mismatch"
UNTRUSTED_KEY = "untrusted_key"
MISPLACED_GENESIS = "misplaced_genesis"
BAD_ROTATION = "bad_rotation"
CERT_MISMATCH = "cert_mismatch"
BAD_CONTINUATION = "bad_continuation"
# -- heads and truncation ----------------------------------------------------------------------
HEAD_MISSING = "head_missing"
HEAD_MISMATCH = "head_mismatch"
BAD_HEAD_SIGNATURE = "bad_head_signature"
TRUNCATED = "truncated"
BELOW_WATERMARK = "below_watermark"
# -- totals and references ---------------------------------------------------------------------
CLOSURE_MISMATCH = "closure_mismatch"
PERPETUAL_BREAK = "perpetual_break"
AFTER_CLOSURE = "after_closure"
COPY_NUMBER = "copy_number"
OVER_RETURN = "over_return"
BAD_REFERENCE = "bad_reference"
INVOICE_MISMATCH = "invoice_mismatch"
# -- the store ---------------------------------------------------------------------------------
UNREADABLE_STORE = "unreadable_store"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a journal, located by global and chain sequence when known."""

    code: str
    message: str
    seq: int | None
    chain: str | None
    chain_seq: int | None

    def to_json(self) -> dict[str, Any]:
        """Return the finding as a JSON object."""
        return {"code": self.code, "message": self.message, "seq": self.seq,
                "chain": self.chain, "chain_seq": self.chain_seq}


Where = tuple[int | None, str | None, int | None]
"""Where an entry sits: ``(seq, chain, chain_seq)``."""

NOWHERE: Where = (None, None, None)


def found(code: str, message: str, where: Where = NOWHERE) -> Finding:
    """Make a finding at ``where``."""
    return Finding(code, message, where[0], where[1], where[2])


def _order(finding: Finding) -> tuple[bool, int]:
    return finding.seq is None, finding.seq or 0


@dataclass(frozen=True)
class Report:
    """The outcome of a verification: every finding, and what was verified."""

    findings: tuple[Finding, ...]
    entry_count: int
    chain_counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    @classmethod
    def build(cls, findings: Iterable[Finding], entry_count: int,
              chain_counts: Mapping[str, int]) -> Report:
        """Make a report with findings in journal order (unlocated ones last)."""
        return cls(tuple(sorted(findings, key=_order)), entry_count,
                   MappingProxyType(dict(sorted(chain_counts.items()))))

    def with_findings(self, extra: Iterable[Finding]) -> Report:
        """Return this report with ``extra`` findings added."""
        return Report.build((*self.findings, *extra), self.entry_count, self.chain_counts)

    def to_json(self) -> dict[str, Any]:
        """Return the report as the CLI's ``--json`` object."""
        return {"ok": self.ok, "entries": self.entry_count, "chains": dict(self.chain_counts),
                "findings": [f.to_json() for f in self.findings]}
