"""Is a batch acceptable? The journal verifier on the batch, then continuity with what is stored.

``verify_run`` runs ``fiscal.verify.verify_entries`` on the bodies from the first new seq on,
trusting the box's current certificates (a run from seq 1 is verified as a whole journal: it
must start with the initialisation event). ``follow`` checks what the verifier cannot see in a
partial read: the run starts at the expected seq, and the first entry of each chain continues
the stored chain tip (``chain_seq + 1`` and ``prev_sig`` = the tip's signature) or starts the
chain — or, in a journal that continues a replaced box (its initialisation event declares
``details.continues``), follows the declared tip; the journal identity and epoch stay the
box's. Each answer is a ``Verdict``: clean, or the nack reason with the findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloud.ingest import wire
from cloud.ingest.rows import EntryRow
from fiscal.verify import Finding, verify_entries

_REASONS: dict[str, str] = {
    **dict.fromkeys(("hash_mismatch", "data_mismatch", "bad_signature", "unknown_key",
                     "retired_key", "untrusted_key", "genesis_mismatch", "bad_rotation",
                     "unknown_alg"), wire.BAD_SIGNATURE),
    **dict.fromkeys(("seq_gap", "seq_order", "chain_gap", "prev_sig_mismatch", "first_flag",
                     "no_genesis", "misplaced_genesis"), wire.CHAIN_BREAK),
    **dict.fromkeys(("unparsable", "bad_envelope", "not_canonical", "unknown_format"),
                    wire.SCHEMA),
    "identity_mismatch": wire.IDENTITY,
}


@dataclass(frozen=True)
class Verdict:
    """Clean (``reason`` is ``None``), or why the batch is refused and where."""

    reason: str | None = None
    detail: str = ""
    seq: int | None = None
    findings: tuple[dict[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the batch passed."""
        return self.reason is None


CLEAN = Verdict()


@dataclass(frozen=True)
class Tip:
    """The last stored entry of a chain."""

    chain_seq: int
    seq: int
    sig: str


def refuse(reason: str, detail: str, seq: int | None = None) -> Verdict:
    """A refusal that is not a verifier finding."""
    return Verdict(reason, detail, seq, ({"code": reason, "message": detail, "seq": seq},))


def _verdict(findings: Sequence[Finding]) -> Verdict:
    first = findings[0]
    reason = _REASONS.get(first.code, wire.INVALID)
    detail = f"{first.code} at seq {first.seq}: {first.message}"
    if len(findings) > 1:
        detail += f" (and {len(findings) - 1} more findings)"
    return Verdict(reason, detail, first.seq, tuple(f.to_json() for f in findings[:50]))


def verify_run(bodies: Sequence[str], start_seq: int, certificates: Sequence[str]) -> Verdict:
    """Verify consecutive bodies starting at ``start_seq`` with the trusted certificates."""
    report = verify_entries(bodies, trusted_certificates=certificates,
                            partial=start_seq != 1, workers=1)
    return CLEAN if report.ok else _verdict(report.findings)


@dataclass(frozen=True)
class Continued:
    """A run that continues the stored journal: its verdict and the chain tips after it."""

    verdict: Verdict
    tips: dict[str, Tip] = field(default_factory=dict)


def _chains(rows: Sequence[EntryRow], tips: Mapping[str, Tip]) -> Continued:
    after = dict(tips)
    for row in rows:
        tip = after.get(row.chain)
        if tip is None and row.chain_seq != 1:
            return Continued(refuse(wire.CHAIN_BREAK, f"chain {row.chain} starts at "
                                    f"{row.chain_seq} (seq {row.seq})", row.seq))
        if tip is not None and (row.chain_seq != tip.chain_seq + 1 or row.prev_sig != tip.sig):
            return Continued(refuse(wire.CHAIN_BREAK, f"{row.chain} {row.chain_seq} (seq "
                                    f"{row.seq}) does not follow the stored {row.chain} "
                                    f"{tip.chain_seq}", row.seq))
        after[row.chain] = Tip(row.chain_seq, row.seq, row.sig)
    return Continued(CLEAN, after)


def follow(rows: Sequence[EntryRow], start_seq: int, tips: Mapping[str, Tip],
           identity: tuple[str | None, str | None], epoch: str) -> Continued:
    """Check that ``rows`` continue the stored journal; return the new tips when they do."""
    for index, row in enumerate(rows):
        if row.seq != start_seq + index:
            return Continued(refuse(wire.SCHEMA, f"entry {index} of the run has seq {row.seq},"
                                    f" not {start_seq + index}", start_seq + index))
    store, register = identity
    first = rows[0]
    if (store, register) != (None, None) and (first.store_id, first.register_id) != identity:
        return Continued(refuse(wire.IDENTITY, f"entries of store {first.store_id!r} register "
                                f"{first.register_id!r}; the box's journal is store {store!r} "
                                f"register {register!r}", first.seq))
    if first.seq == 1 and (first.key_event or {}).get("epoch") != epoch:
        return Continued(refuse(wire.EPOCH, "the initialisation event names another epoch "
                                "than the batch", 1))
    return _chains(rows, {**continued_tips(first), **tips} if first.seq == 1 else tips)


def continued_tips(genesis: EntryRow) -> dict[str, Tip]:
    """The chain tips a journal's initialisation event declares it continues (else none).

    The verifier has checked the declaration of a run from seq 1; what is not a tip here is
    skipped, and the chain then has to start at 1.
    """
    continues = (genesis.key_event or {}).get("continues")
    chains = continues.get("chains") if isinstance(continues, Mapping) else None
    if not isinstance(chains, Mapping):
        return {}
    return {str(chain): Tip(tip["chain_seq"], tip["seq"], tip["sig"])
            for chain, tip in chains.items()
            if isinstance(tip, Mapping) and type(tip.get("chain_seq")) is int
            and type(tip.get("seq")) is int and isinstance(tip.get("sig"), str)}


def trusted_after(rows: Sequence[EntryRow], certificates: Sequence[str]) -> tuple[str, ...]:
    """The certificates trusted after a verified run: the last key event's, else unchanged."""
    for row in reversed(rows):
        if row.key_event is not None and isinstance(row.key_event.get("certificate_pem"), str):
            return (row.key_event["certificate_pem"],)
    return tuple(certificates)
