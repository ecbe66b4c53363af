"""The serial (USB-CDC) scanner driver against the scanner simulator, through a real pty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from drivers.scanner.serial_scanner import ScanFramer, SerialScanner
from drivers.scanner.simulator import ScannerSimulator
from drivers.states import Backoff, Status

FAST = Backoff(base=0.05, cap=0.2)


@pytest.fixture
def sim() -> Iterator[ScannerSimulator]:
    with ScannerSimulator() as simulator:
        yield simulator


async def next_scan(scans: AsyncIterator[str]) -> str:
    """The next scan, or a failure after a generous timeout."""
    return await asyncio.wait_for(anext(scans), timeout=5)


def test_framer_splits_on_cr_lf_and_crlf_across_chunks() -> None:
    """CR, LF and CRLF end a scan; a scan split across reads is joined; blank lines are skipped."""
    framer = ScanFramer()
    assert framer.feed(b"30176204") == []
    assert framer.feed(b"22003\r\n96385074\n\r\n") == ["3017620422003", "96385074"]
    assert framer.feed(b"\x1d01\r") == ["\x1d01"]


def test_framer_drops_endless_garbage() -> None:
    """A run of bytes far too long to be a barcode is dropped, not delivered."""
    framer = ScanFramer()
    assert framer.feed(b"x" * 2000 + b"\r3017620422003\r") == ["3017620422003"]
    assert framer.dropped == 1


async def test_scans_arrive_in_order(sim: ScannerSimulator) -> None:
    """Codes the scanner sends with CR come out of scans() as strings, in order."""
    async with SerialScanner(sim.path) as scanner:
        assert scanner.state.status is Status.READY
        scans = scanner.scans()
        sim.scan("3017620422003")
        sim.scan("2112345001203")
        sim.send_raw(b"96385074\r\n")
        assert [await next_scan(scans) for _ in range(3)] == [
            "3017620422003", "2112345001203", "96385074"]
        await scans.aclose()


async def test_unplugged_scanner_is_unavailable_then_back(sim: ScannerSimulator) -> None:
    """A pulled cable makes the scanner unavailable; plugged back, scans flow again."""
    async with SerialScanner(sim.path, backoff=FAST) as scanner:
        scans = scanner.scans()
        reader = asyncio.create_task(next_scan(scans))
        sim.unplug()
        await scanner.wait_for_status(Status.UNAVAILABLE)
        assert scanner.state.reason == "unplugged"
        sim.replug()
        await scanner.wait_for_status(Status.READY)
        sim.scan("96385074")
        assert await reader == "96385074"
        await scans.aclose()


async def test_missing_scanner_is_a_state(tmp_path: object) -> None:
    """A scanner that is not there is unavailable, not a crash."""
    async with SerialScanner(f"{tmp_path}/ttyACM9") as scanner:
        assert scanner.state.status is Status.UNAVAILABLE
