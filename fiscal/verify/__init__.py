"""The auditor's verifier of a certified journal — a code path separate from signing.

It rebuilds every entry's content hash and data-to-sign with its own code (never the signer's),
verifies every signature with the key the journal trusted at that point, follows the global
sequence and every chain, re-folds the closures and checks references, chain heads and the
cloud's watermark. It reports **every** finding, never stopping at the first; only misuse raises.

Use ``verify_entries`` on raw entry bodies (replicated or archived entries) and
``verify_data_dir`` on a box's data dir; ``tillbox verify`` is the command line.

Finding codes (stable; ``Finding.code``):

========================  =========================================================================
entries
``unparsable``            the body is not a JSON object (or not UTF-8)
``bad_envelope``          envelope fields missing, unexpected or of the wrong type
``index_mismatch``        a data dir index column (seq, chain, chain_seq, type, business_date,
                          ref_seq, sig, at_utc) differs from the body
``unknown_alg``           the signature algorithm is not ``ES256-det``
``unknown_format``        the format_version is not one this verifier knows
``not_canonical``         a float, a non-ASCII key or an integer beyond ±2^53: cannot be hashed
``hash_mismatch``         the content hash is not the hash of the sealed content
``data_mismatch``         the stored data-to-sign is not the one rebuilt from the entry's fields
``bad_signature``         the signature does not verify with the key named by ``key_id``
``first_flag``            first flag / previous signature not set exactly on chain sequence 1
``wrong_chain``           the record type does not belong in this chain (training → ``training``)
``bad_time``              at_local and at_utc are malformed or not the same instant
``bad_record``            the record lacks fields its checks need, or has an unknown type
``identity_mismatch``     store or register differs from the journal's first entry
``breakdown_mismatch``    a ticket's per-rate VAT breakdown is not the fold of its lines
``total_mismatch``        totals, line count or discount spread disagree with the breakdown
``payment_mismatch``      payments less change do not settle the total
sequences and time
``seq_gap``               global sequence numbers are missing
``seq_order``             a global sequence number is repeated or goes back
``chain_gap``             chain_seq is not the previous one + 1 (or a chain does not start at 1,
                          or, in a journal continuing a replaced box, after its handed-over tip)
``prev_sig_mismatch``     prev_sig is not the previous entry's signature in the chain
``clock_backwards``       at_utc earlier than the previous entry's without a 1050 clock event
keys
``unknown_key``           signed by a key the journal never established
``retired_key``           signed by a key replaced by an earlier rotation
``no_genesis``            the journal does not start with an initialisation event (260), or is
                          empty
``genesis_mismatch``      the 260 certificate does not hold the key it names / that signed it
``untrusted_key``         the genesis key is not among the trusted certificates
``misplaced_genesis``     an initialisation event inside the journal
``bad_rotation``          a 1080 event with a wrong link signature, key ids or signer
``cert_mismatch``         the data dir's ``keys/box-cert.pem`` is not the journal's current key
``bad_continuation``      the 260 event's ``details.continues`` (a replaced box's chain tips and
                          closures, see ``fiscal.verify.continuation``) is malformed
heads and truncation
``head_missing``          a chain has entries but no head
``head_mismatch``         a head does not name its chain's last entry
``bad_head_signature``    a head signature does not verify
``truncated``             a head lies beyond its chain's last entry (entries removed at the tail)
``below_watermark``       the journal ends before the seq the cloud acknowledged
totals and references
``closure_mismatch``      a closure is not the fold of its period (or its period is malformed)
``perpetual_break``       perpetual totals do not continue the previous closure of the kind
``after_closure``         a record dated in, or a closure of, an already closed period
``copy_number``           copies of an original are not numbered 1, 2, …
``over_return``           returns take back more than the sale's line sold
``bad_reference``         a return, copy or invoice refers to a missing, later, mismatched or
                          wrong kind of entry, or a second invoice
``invoice_mismatch``      an invoice's total is not its source ticket's
store
``unreadable_store``      the journal file cannot be read as a journal
========================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from fiscal.verify.engine import Options, verify_bodies
from fiscal.verify.findings import Finding, Report
from fiscal.verify.source import verify_directory

__all__ = ["Finding", "Report", "verify_data_dir", "verify_entries"]


def verify_entries(
    bodies: Iterable[str | bytes], *, heads: Mapping[str, tuple[int, int, str, str]] | None = None,
    trusted_certificates: Sequence[str] = (), partial: bool = False,
    acked_through: int | None = None, workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Verify journal entries given as raw bodies in global order.

    ``heads`` maps chain → ``(chain_seq, seq, sig, head_sig)`` (checked when given).
    ``trusted_certificates`` (PEM) must include the genesis key; in a ``partial`` read (a seq
    range, e.g. an archive) they are the keys trusted at its start, chains may start past 1,
    closures whose period is not wholly inside are skipped and perpetual totals start at the
    first closure of each kind. ``acked_through`` is the cloud's watermark. ``workers`` processes
    (default: every CPU; 1 or a short read: in-process); ``progress`` receives the number of
    entries verified so far.
    """
    options = Options(heads=heads, trusted_certificates=tuple(trusted_certificates),
                      partial=partial, acked_through=acked_through, workers=workers,
                      progress=progress)
    return verify_bodies(bodies, options).report


def verify_data_dir(
    data_dir: Path, *, trusted_certificates: Sequence[str] = (),
    acked_through: int | None = None, workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Verify the journal of a box's data dir.

    Checks the entries and their index columns, the heads table and ``keys/box-cert.pem``.
    Raises ``FileNotFoundError`` when the dir holds no journal.
    """
    options = Options(trusted_certificates=tuple(trusted_certificates),
                      acked_through=acked_through, workers=workers, progress=progress)
    return verify_directory(data_dir, options)
