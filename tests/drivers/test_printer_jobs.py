"""The durable print queue in front of the network driver and the TCP printer simulator."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from escpos.printer import Dummy

from drivers.errors import DeviceTimeout
from drivers.printer.jobs import SCHEMA, JobState, PrintJob, PrintQueue
from drivers.printer.network import NetworkPrinter
from drivers.printer.simulator import Fault, PrinterSimulator, running_simulator
from drivers.states import Backoff, DeviceState, Status

WAIT = 10.0


def text_job(*lines: str) -> bytes:
    """Encode lines of text (CP858) and a cut."""
    dummy = Dummy()
    dummy.hw("INIT")
    dummy.charcode("CP858")
    for line in lines:
        dummy.textln(line)
    dummy.cut()
    return bytes(dummy.output)


def receipt(*lines: str) -> str:
    """The text the simulator keeps for a receipt of these lines."""
    return "".join(f"{line}\n" for line in lines)


def fast_backoff() -> Backoff:
    """A backoff short enough for tests."""
    return Backoff(base=0.02, cap=0.2)


def is_ready(state: DeviceState) -> bool:
    """Whether the printer is ready."""
    return state.status is Status.READY


@pytest.fixture
async def sim() -> AsyncIterator[PrinterSimulator]:
    """A running simulator on a free port."""
    async with running_simulator() as simulator:
        yield simulator


@pytest.fixture
async def printer(sim: PrinterSimulator) -> AsyncIterator[NetworkPrinter]:
    """A connected driver polling fast, ready."""
    async with NetworkPrinter(sim.host, sim.port, timeout=5.0, job_timeout=WAIT,
                              poll_interval=0.05, backoff=fast_backoff()) as driver:
        await driver.wait_for_state(is_ready, WAIT)
        yield driver


@pytest.fixture
async def queue(tmp_path: Path, printer: NetworkPrinter) -> AsyncIterator[PrintQueue]:
    """A running queue on a fresh file."""
    async with PrintQueue(tmp_path / "jobs.sqlite3", printer, backoff=fast_backoff()) as jobs:
        yield jobs


async def test_jobs_print_in_order_once(sim: PrinterSimulator, queue: PrintQueue) -> None:
    """Five jobs submitted at once print in order, exactly once each, and end done."""
    for n in range(1, 6):
        await queue.submit(f"job-{n}", text_job(f"receipt {n}", "total 1,00 €"))
    await queue.wait_done("job-5", WAIT)
    assert sim.receipts == [receipt(f"receipt {n}", "total 1,00 €") for n in range(1, 6)]
    jobs = await queue.jobs()
    assert [(job.job_id, job.state, job.attempts) for job in jobs] == [
        (f"job-{n}", JobState.DONE, 1) for n in range(1, 6)]
    assert all(job.finished is not None and job.last_error is None for job in jobs)


async def test_same_job_id_prints_once(sim: PrinterSimulator, queue: PrintQueue) -> None:
    """A job_id submitted twice (even with other data, even after done) is one job."""
    await queue.submit("sale-42", text_job("sale 42"))
    await queue.submit("sale-42", text_job("sale 42 again?"))
    await queue.submit("sale-43", text_job("sale 43"))
    await queue.wait_done("sale-43", WAIT)
    await queue.submit("sale-42", text_job("sale 42"))
    await queue.submit("sale-44", text_job("sale 44"))
    await queue.wait_done("sale-44", WAIT)
    assert sim.receipts == [receipt("sale 42"), receipt("sale 43"), receipt("sale 44")]
    assert [job.job_id for job in await queue.jobs()] == ["sale-42", "sale-43", "sale-44"]


async def test_paper_out_mid_job_reprints_it_then_the_rest(
        sim: PrinterSimulator, printer: NetworkPrinter, queue: PrintQueue) -> None:
    """Paper out in job 2 keeps it pending with job 3 behind; new paper prints 2 in full, then 3."""
    job2 = [f"job 2 line {n}" for n in range(1, 6)]
    await queue.submit("job-1", text_job("job 1"))
    await queue.wait_done("job-1", WAIT)
    sim.paper_lines_left = 2
    await queue.submit("job-2", text_job(*job2))
    await queue.submit("job-3", text_job("job 3"))

    def cut_by_paper_out(job: PrintJob) -> bool:
        return job.state is JobState.PENDING and (job.last_error or "").startswith("paper_out")

    await queue.wait_job("job-2", cut_by_paper_out, WAIT)
    assert printer.state.reason == "paper_out"
    assert (await queue.job("job-3")).state is JobState.PENDING
    assert (await queue.job("job-3")).attempts == 0
    assert (sim.receipts, sim.interrupted) == ([receipt("job 1")], [receipt(*job2[:2])])
    sim.set_fault(Fault.PAPER_OUT, active=False)
    await queue.wait_done("job-3", WAIT)
    assert sim.receipts == [receipt("job 1"), receipt(*job2), receipt("job 3")]
    assert sim.interrupted == [receipt(*job2[:2])]
    assert (await queue.job("job-2")).attempts == 2


async def test_job_cut_by_power_cut_is_reprinted(tmp_path: Path, sim: PrinterSimulator,
                                                 printer: NetworkPrinter) -> None:
    """A job left printing in the file is printed again (with the marker), then the pending one."""
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO jobs (job_id, data, state, attempts, created) "
                       "VALUES (?, ?, ?, ?, ?)", [
                           ("a", text_job("job a"), "done", 1, time.time()),
                           ("b", text_job("job b"), "printing", 1, time.time()),
                           ("c", text_job("job c"), "pending", 0, time.time()),
                       ])
    db.close()
    marker = b"** REPRINT **\n"
    async with PrintQueue(path, printer, backoff=fast_backoff(), reprint_prefix=marker) as queue:
        await queue.wait_done("c", WAIT)
        jobs = {job.job_id: job for job in await queue.jobs()}
    assert sim.receipts == [receipt("** REPRINT **", "job b"), receipt("job c")]
    assert (jobs["b"].state, jobs["b"].attempts) == (JobState.DONE, 2)
    assert (jobs["b"].last_error or "").startswith("power_cut")
    assert (jobs["c"].attempts, jobs["c"].last_error) == (1, None)


async def test_jobs_wait_for_the_printer_back(sim: PrinterSimulator, printer: NetworkPrinter,
                                              queue: PrintQueue) -> None:
    """Jobs submitted while the printer is unplugged wait, then print once it is back."""
    port = sim.port
    await sim.stop()
    await printer.wait_for_state(lambda state: state.status is Status.UNAVAILABLE, WAIT)
    await queue.submit("job-1", text_job("job 1"))
    await queue.submit("job-2", text_job("job 2"))
    with pytest.raises(DeviceTimeout):
        await queue.wait_done("job-1", 0.3)
    assert [(job.state, job.attempts) for job in await queue.jobs()] == [
        (JobState.PENDING, 0), (JobState.PENDING, 0)]
    await sim.start(port=port)
    await queue.wait_done("job-2", WAIT)
    assert sim.receipts == [receipt("job 1"), receipt("job 2")]


async def test_queue_survives_reopen(tmp_path: Path, sim: PrinterSimulator,
                                     printer: NetworkPrinter) -> None:
    """Done jobs stay done across a reopen: resubmitting their ids prints nothing again."""
    path = tmp_path / "jobs.sqlite3"
    async with PrintQueue(path, printer, backoff=fast_backoff()) as queue:
        await queue.submit("job-1", text_job("job 1"))
        await queue.wait_done("job-1", WAIT)
    async with PrintQueue(path, printer, backoff=fast_backoff()) as queue:
        await queue.submit("job-1", text_job("job 1"))
        await queue.submit("job-2", text_job("job 2"))
        await queue.wait_done("job-2", WAIT)
    assert sim.receipts == [receipt("job 1"), receipt("job 2")]


async def test_unconfirmed_job_is_printed_again(tmp_path: Path, sim: PrinterSimulator) -> None:
    """A printer falling silent before confirming a job gets it again: doubled, never lost."""
    def fall_silent(text: str) -> None:
        if text == receipt("part 1"):
            sim.set_fault(Fault.SILENT)

    sim.on_receipt = fall_silent
    job = text_job("part 1") + text_job("part 2")
    async with (
        NetworkPrinter(sim.host, sim.port, timeout=0.5, job_timeout=0.5, poll_interval=0.05,
                       backoff=fast_backoff()) as printer,
        PrintQueue(tmp_path / "jobs.sqlite3", printer, backoff=fast_backoff()) as queue,
    ):
        await queue.submit("job-1", job)
        await queue.wait_job("job-1", lambda job: (job.last_error or "").startswith("offline"),
                             WAIT)
        sim.on_receipt = None
        sim.set_fault(Fault.SILENT, active=False)
        done = await queue.wait_done("job-1", WAIT)
    assert sim.receipts == [receipt("part 1"), receipt("part 2")] * 2
    assert done.attempts == 2


class StateOnlyPrinter:
    """A ``ReceiptPrinter`` with no ``wait_for_state``: the queue must poll its state."""

    def __init__(self, inner: NetworkPrinter) -> None:
        self._inner = inner
        self.status = inner.status
        self.print_job = inner.print_job
        self.kick_drawer = inner.kick_drawer

    @property
    def state(self) -> DeviceState:
        """The wrapped driver's state."""
        return self._inner.state


async def test_polls_a_printer_without_wait_for_state(
        tmp_path: Path, sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """With a driver that cannot wait for states, paper out and refill still reprint the job."""
    sim.paper_lines_left = 1
    async with PrintQueue(tmp_path / "jobs.sqlite3", StateOnlyPrinter(printer),
                          backoff=fast_backoff()) as queue:
        await queue.submit("job-1", text_job("line 1", "line 2"))
        await queue.wait_job("job-1", lambda job: job.attempts == 1 and job.last_error is not None,
                             WAIT)
        sim.set_fault(Fault.PAPER_OUT, active=False)
        await queue.wait_done("job-1", WAIT)
    assert (sim.interrupted, sim.receipts) == ([receipt("line 1")], [receipt("line 1", "line 2")])
