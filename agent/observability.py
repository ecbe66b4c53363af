"""How the box reports on itself: logs, health and alarms, the quick chain-head check, systemd.

* ``configure_logging`` — structlog (and the standard ``logging`` records of uvicorn) as JSON lines
  when stderr is not a terminal (journald), a readable console rendering when it is.
* ``Health`` — alarms, device states and the times of the last checks; what ``/health`` and the
  status page show.
* ``check_heads`` — the start-up check: each chain's signed head against the chain's last stored
  entry. The full verification is ``fiscal.verify``, run on demand.
* ``write_event`` — journal a technical event (start, stop, integrity); a failure raises an alarm
  instead of stopping the box.
* ``SystemdNotifier`` — ``sd_notify`` datagrams (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``) to
  ``$NOTIFY_SOCKET``, written with a plain socket.
* ``network_addresses`` — the box's IP addresses, for the technician reading the status page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import logging
import os
import socket
import sqlite3
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, TextIO

import structlog

from agent.settings import LogSettings
from fiscal import jet
from fiscal.chain import CHAINS, ChainHead, Entry, utc_text
from fiscal.errors import FiscalError
from fiscal.journal import SYSTEM, Journal, utc_now
from fiscal.keys import verify_raw
from fiscal.requests import EventRequest
from fiscal.signed_data import head_data

Clock = Callable[[], dt.datetime]
SIOCGIFADDR = 0x8915

# JET codes the box writes (the table is fiscal/jet_codes.toml)
BOX_START = 1000
BOX_STOP = 1001
INTEGRITY_FAILURE = jet.INTEGRITY_FAILURE
INTEGRITY_PASSED = 1120

# -- logs -------------------------------------------------------------------------------------


def configure_logging(settings: LogSettings, stream: TextIO = sys.stderr) -> None:
    """Route structlog and standard logging to ``stream`` as JSON lines or console text."""
    console = settings.format == "console" or (settings.format == "auto" and stream.isatty())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer())
    tail: list[structlog.typing.Processor] = (
        [] if console else [structlog.processors.dict_tracebacks])
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer])
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.level.upper())


# -- health -----------------------------------------------------------------------------------

DeviceState = Literal["connecting", "ready", "busy", "error", "unavailable"]


@dataclass(frozen=True)
class DeviceStatus:
    """The state of one peripheral as DESIGN.md §10 names them; ``reason`` is a stable code."""

    kind: str
    driver: str
    state: DeviceState
    reason: str | None = None


@dataclass(frozen=True)
class Alarm:
    """A condition a technician must see (on the status page and ``/health``)."""

    code: str
    message: str
    chain: str | None = None
    raised_at: str = ""
    blocking: bool = False
    """An integrity alarm: fiscal writes wait for an admin's acknowledgement while it stands."""


@dataclass(frozen=True)
class VerificationSummary:
    """The outcome of the last full verification of the journal."""

    at: str
    clean: bool
    findings: int


class Health:
    """The box's live health: alarms, devices, times of the last checks."""

    def __init__(self, devices: Sequence[DeviceStatus], clock: Clock = utc_now) -> None:
        self.devices = tuple(devices)
        self.alarms: list[Alarm] = []
        self.heads_checked_at: str | None = None
        self.watchdog_at: str | None = None
        self.last_verification: VerificationSummary | None = None
        self.serving = True
        """False while the daemon starts (until the start event is journaled and READY sent)."""
        self._clock = clock

    @property
    def status(self) -> Literal["starting", "ok", "alarm"]:
        """``starting`` until the daemon is ready, then ``alarm`` while any alarm is raised."""
        if not self.serving:
            return "starting"
        return "alarm" if self.alarms else "ok"

    @property
    def fiscal_writes_allowed(self) -> bool:
        """Fiscal writes are refused while an integrity alarm waits for an acknowledgement.

        Other alarms (the cloud refusing the box, a slow disk) are shown but never stop the
        shop from selling.
        """
        return not any(alarm.blocking for alarm in self.alarms)

    def now_text(self) -> str:
        """The current time as stored in the journal (UTC, ISO 8601)."""
        return utc_text(self._clock())

    def raise_alarm(self, code: str, message: str, chain: str | None = None, *,
                    blocking: bool = False) -> Alarm:
        """Raise an alarm (once per code and chain) and return it; ``blocking`` for integrity."""
        for alarm in self.alarms:
            if (alarm.code, alarm.chain) == (code, chain):
                return alarm
        alarm = Alarm(code, message, chain, self.now_text(), blocking)
        self.alarms.append(alarm)
        return alarm

    def clear_alarm(self, code: str) -> None:
        """Drop the alarms with ``code`` (a condition that heals by itself, e.g. a stall)."""
        self.alarms = [alarm for alarm in self.alarms if alarm.code != code]


async def write_event(journal: Journal, health: Health, code: int,
                      details: Mapping[str, Any]) -> Entry | None:
    """Journal system event ``code``; on failure log it, raise an alarm and return None."""
    try:
        return await journal.record_event(
            EventRequest(code=code, operator=SYSTEM, details=dict(details)))
    except (FiscalError, sqlite3.Error, OSError) as error:
        structlog.get_logger(__name__).error("journal_write_failed", code=code, error=str(error))
        health.raise_alarm("journal_write_failed", f"event {code}: {error}")
        return None


# -- the chain-head check ---------------------------------------------------------------------


@dataclass(frozen=True)
class LastEntry:
    """The last stored entry of a chain, as far as the head check needs it."""

    seq: int
    chain_seq: int
    sig: str
    key_id: str


def last_entries(db_path: Path, chains: Sequence[str]) -> dict[str, LastEntry]:
    """Read the last entry of each chain (one index seek per chain, read-only connection)."""
    found: dict[str, LastEntry] = {}
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        for chain in chains:
            row = db.execute(
                "SELECT seq, chain_seq, sig, json_extract(body, '$.key_id') FROM entries"
                " WHERE chain = ? ORDER BY chain_seq DESC LIMIT 1", (chain,)).fetchone()
            if row is not None:
                found[chain] = LastEntry(int(row[0]), int(row[1]), str(row[2]), str(row[3]))
    return found


class HeadFinding(NamedTuple):
    """A chain whose signed head does not match its stored tail."""

    code: str
    chain: str
    message: str


async def check_heads(journal: Journal) -> list[HeadFinding]:
    """Compare every signed chain head with its chain's last entry; return the findings.

    Finding codes (those of ``fiscal.verify``): ``head_missing`` (entries but no head),
    ``truncated`` (a head but no entries), ``head_mismatch`` (they differ: a truncated or
    altered tail), ``bad_head_signature`` (the head's own signature does not verify).
    """
    heads = dict(journal.heads())
    chains = sorted(set(CHAINS) | set(heads))
    lasts = await asyncio.to_thread(last_entries, journal.store.path, chains)
    findings = []
    for chain in chains:
        problem = _compare(journal, heads.get(chain), lasts.get(chain))
        if problem is not None:
            findings.append(HeadFinding(problem[0], chain, problem[1]))
    return findings


def _compare(journal: Journal, head: ChainHead | None,
             last: LastEntry | None) -> tuple[str, str] | None:
    if head is None and last is None:
        return None
    if head is None:
        return "head_missing", f"entries up to chain_seq {last.chain_seq if last else 0}, no head"
    if last is None:
        return "truncated", f"head at chain_seq {head.chain_seq} but no entries"
    if (head.seq, head.chain_seq) != (last.seq, last.chain_seq):
        return "head_mismatch", (f"head at chain_seq {head.chain_seq} (seq {head.seq}), last "
                                 f"entry at chain_seq {last.chain_seq} (seq {last.seq})")
    if head.sig != last.sig:
        return "head_mismatch", (f"head at chain_seq {head.chain_seq} holds another signature "
                                 "than the last entry")
    if last.key_id == journal.key.key_id and not _head_signed(journal, head):
        return "bad_head_signature", f"the head signature at chain_seq {head.chain_seq} is invalid"
    return None


def _head_signed(journal: Journal, head: ChainHead) -> bool:
    data = head_data(journal.settings.register_id, head.chain, head.chain_seq, head.seq, head.sig)
    public_key = journal.key.private_key.public_key()
    return verify_raw(public_key, head.head_sig, data.encode("utf-8"))


# -- systemd ----------------------------------------------------------------------------------


class SystemdNotifier:
    """Send ``sd_notify`` messages to ``$NOTIFY_SOCKET``; a no-op outside systemd."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> SystemdNotifier:
        """Read ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` (when meant for this process)."""
        usec = environ.get("WATCHDOG_USEC", "")
        for_us = environ.get("WATCHDOG_PID", str(os.getpid())) == str(os.getpid())
        return cls(environ.get("NOTIFY_SOCKET") or None,
                   int(usec) if usec.isdigit() and for_us else None)

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half the watchdog timeout), if one is set."""
        return None if not self.watchdog_usec else self.watchdog_usec / 2_000_000

    def notify(self, *lines: str) -> bool:
        """Send one datagram of ``KEY=value`` lines; ``False`` if not under systemd or it fails."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX,
                                             socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.setblocking(False)
            self._socket.sendto("\n".join(lines).encode("utf-8"), target)
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


# -- network ----------------------------------------------------------------------------------


def network_addresses() -> list[tuple[str, str]]:
    """The box's ``(interface, address)`` pairs, IPv4 then IPv6, loopback excluded."""
    found: list[tuple[str, str]] = []
    for _, name in socket.if_nameindex():
        if name != "lo" and (ipv4 := _ipv4_of(name)) is not None:
            found.append((name, ipv4))
    return found + _ipv6_addresses()


def _ipv4_of(interface: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            packed = fcntl.ioctl(probe.fileno(), SIOCGIFADDR,
                                 struct.pack("256s", interface[:15].encode()))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def _ipv6_addresses() -> list[tuple[str, str]]:
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) == 6 and fields[5] != "lo":
            packed = bytes.fromhex(fields[0])
            found.append((fields[5], socket.inet_ntop(socket.AF_INET6, packed)))
    return found
