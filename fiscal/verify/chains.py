"""Sequential checks: the global sequence, each chain's links, the clock, and the signed heads.

Each check compares an entry with the one before it (globally, or in its chain), so it splits
cleanly: a worker checks the links inside its chunk of entries; the main process checks the links
across chunks with the same functions, knowing only each chunk's first and last entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fiscal.verify import findings as f
from fiscal.verify.findings import Finding
from fiscal.verify.key_registry import KeyTimeline, verify_signature
from fiscal.verify.signed_strings import head_data

CLOCK_EVENT = 1050
HeadRow = tuple[int, int, str, str]
"""A chain head as stored: ``(chain_seq, seq, sig, head_sig)``."""


class Link(NamedTuple):
    """What the sequential checks need of an entry."""

    seq: int
    chain: str
    chain_seq: int
    sig: str
    prev_sig: str | None
    at_utc: str
    code: int | None
    """The event code, for events (1050 allows the clock to go back)."""
    key_id: str
    register_id: str


def link_of(envelope: Mapping[str, Any], seq: int) -> Link:
    """Make the link of a readable envelope located at ``seq``."""
    record = envelope["record"]
    code = record.get("code") if record.get("type") == "event" else None
    return Link(seq, envelope["chain"], envelope["chain_seq"], envelope["sig"],
                envelope["prev_sig"], envelope["at_utc"], code if isinstance(code, int) else None,
                envelope["key_id"], envelope["register_id"])


def _at(link: Link) -> tuple[int, str, int]:
    return link.seq, link.chain, link.chain_seq


def follow(previous: Link, link: Link) -> list[Finding]:
    """Check ``link`` against the entry before it in global order: seq + 1, clock forward."""
    out = []
    if link.seq > previous.seq + 1:
        out.append(f.found(f.SEQ_GAP, f"entries {previous.seq + 1}..{link.seq - 1} are missing "
                                      f"(before seq {link.seq}, {link.chain} {link.chain_seq})",
                           (previous.seq + 1, None, None)))
    elif link.seq <= previous.seq:
        out.append(f.found(f.SEQ_ORDER, f"seq {link.seq} comes after {previous.seq} "
                                        "(duplicated or out of order)", _at(link)))
    if link.at_utc < previous.at_utc and CLOCK_EVENT not in (link.code, previous.code):
        out.append(f.found(f.CLOCK_BACKWARDS, f"at {link.at_utc}, before the previous entry's "
                                              f"{previous.at_utc}, with no clock event (1050)",
                           _at(link)))
    return out


def extend(previous: Link, link: Link) -> list[Finding]:
    """Check ``link`` against the previous entry of its chain: chain_seq + 1, prev_sig."""
    if link.chain_seq != previous.chain_seq + 1:
        return [f.found(f.CHAIN_GAP, f"chain_seq {link.chain_seq} follows "
                                     f"{previous.chain_seq}", _at(link))]
    if link.prev_sig != previous.sig:
        return [f.found(f.PREV_SIG_MISMATCH, f"prev_sig is not the signature of "
                                             f"{link.chain} {previous.chain_seq}", _at(link))]
    return []


def begin_chain(link: Link, *, partial: bool) -> list[Finding]:
    """Check the first entry met of a chain: it starts the chain unless the read is partial."""
    if partial or link.chain_seq == 1:
        return []
    return [f.found(f.CHAIN_GAP, f"chain {link.chain} starts at {link.chain_seq}", _at(link))]


def begin_journal(link: Link, *, partial: bool) -> list[Finding]:
    """Check the first entry read: seq 1 unless the read is partial."""
    if partial or link.seq == 1:
        return []
    return [f.found(f.SEQ_GAP, f"entries 1..{link.seq - 1} are missing (before seq "
                               f"{link.seq})", (1, None, None))]


@dataclass
class Tracker:
    """The running state of the sequential checks over entries read in order."""

    first: Link | None = None
    last: Link | None = None
    chain_first: dict[str, Link] = field(default_factory=dict)
    chain_last: dict[str, Link] = field(default_factory=dict)
    seeds: dict[str, Link] = field(default_factory=dict)
    """A continuing journal's handed-over chain tips: what each chain's first entry follows."""

    def feed(self, link: Link) -> list[Finding]:
        """Check one entry inside a chunk (the chunk's first entries are checked by ``join``)."""
        out: list[Finding] = []
        last = self.last
        if last is None:
            self.first = link
        elif link.seq != last.seq + 1 or link.at_utc < last.at_utc:
            out += follow(last, link)
        previous = self.chain_last.get(link.chain)
        if previous is None:
            self.chain_first[link.chain] = link
        elif link.chain_seq != previous.chain_seq + 1 or link.prev_sig != previous.sig:
            out += extend(previous, link)
        self.chain_last[link.chain] = link
        self.last = link
        return out

    def join(self, chunk: Tracker, *, partial: bool) -> list[Finding]:
        """Check a following chunk's first entries against this state, then take its end."""
        out: list[Finding] = []
        if chunk.first is not None:
            out += (follow(self.last, chunk.first) if self.last is not None
                    else begin_journal(chunk.first, partial=partial))
        for chain, link in chunk.chain_first.items():
            previous = self.chain_last.get(chain, self.seeds.get(chain))
            out += (extend(previous, link) if previous is not None
                    else begin_chain(link, partial=partial))
        self.first = self.first or chunk.first
        self.last = chunk.last or self.last
        self.chain_last.update(chunk.chain_last)
        return out


def check_heads(heads: Mapping[str, HeadRow], last: Mapping[str, Link], register_id: str | None,
                timeline: KeyTimeline, pool: Mapping[str, bytes]) -> list[Finding]:
    """Compare each chain's signed head with the chain's last entry.

    The head's signature is verified with the key the journal trusted at the head's entry.
    """
    out = []
    for chain in sorted(set(heads) | set(last)):
        head, link = heads.get(chain), last.get(chain)
        if head is None and link is not None:
            out.append(f.found(f.HEAD_MISSING, f"chain {chain} has entries but no head",
                               _at(link)))
        elif head is not None:
            out += _check_head(chain, head, link, register_id, timeline, pool)
    return out


def _check_head(chain: str, head: HeadRow, link: Link | None, register_id: str | None,
                timeline: KeyTimeline, pool: Mapping[str, bytes]) -> list[Finding]:
    chain_seq, seq, sig, head_sig = head
    if not (type(chain_seq) is int and type(seq) is int and isinstance(sig, str)):
        return [f.found(f.HEAD_MISMATCH, f"the head of chain {chain} is malformed: {head!r}",
                        _at(link) if link else (None, chain, None))]
    where = (seq, chain, chain_seq)
    out = []
    if link is None or chain_seq > link.chain_seq:
        last = link.chain_seq if link else 0
        out.append(f.found(f.TRUNCATED, f"the head of chain {chain} is at {chain_seq}, its "
                                        f"last readable entry at {last}", where))
    elif (chain_seq, seq, sig) != (link.chain_seq, link.seq, link.sig):
        out.append(f.found(f.HEAD_MISMATCH, f"the head of chain {chain} ({chain_seq}, seq "
                                            f"{seq}) is not its last entry", where))
    register = link.register_id if link else register_id or ""
    data = head_data(register, chain, chain_seq, seq, sig)
    keys = [pool[k] for k in timeline.expected(seq) if k in pool]
    if not any(verify_signature(der, head_sig, data) for der in keys):
        out.append(f.found(f.BAD_HEAD_SIGNATURE, f"the head signature of chain {chain} does "
                                                 "not verify", where))
    return out
