"""Run ingest workers until told to stop: one in this process, or several side by side.

Verification is CPU work, so workers are processes (the journal verifier is pure Python): each
has its own MQTT client id on the shared subscription and its own database connections. The
parent stops them all on SIGTERM/SIGINT, and stops the others (exit status 1) when one dies so
that the service manager restarts the set.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import sys
from dataclasses import replace
from multiprocessing.process import BaseProcess
from pathlib import Path

import structlog

from cloud.ingest.broker import BrokerAddress
from cloud.ingest.worker import IngestWorker, WorkerConfig

log = structlog.get_logger("tillbox.cloud.ingest")

SWITCH_INTERVAL = 0.0005
"""Seconds a thread holds the GIL while another waits for it (Python's default: 0.005).

A worker verifies in a thread while its event loop serves the transactions in flight, which
hold a box's lock: the loop must get the GIL back promptly at each database answer.
"""


def for_worker(config: WorkerConfig, number: int) -> WorkerConfig:
    """Worker ``number``'s configuration: its client id, and its TLS identity if templated.

    ``{n}`` in the client certificate and key paths is replaced by the worker's number (a
    fleet broker forces client id = certificate CN: each worker needs its own identity).
    """
    broker = config.broker

    def numbered(path: Path | None) -> Path | None:
        return None if path is None else Path(str(path).replace("{n}", str(number)))

    broker = BrokerAddress(broker.host, broker.port, broker.tls, broker.username,
                           broker.password, broker.ca_file, numbered(broker.cert_file),
                           numbered(broker.key_file))
    return replace(config, broker=broker, client_id=f"{config.client_id}-{number}")


async def serve(config: WorkerConfig) -> None:
    """Run one worker until SIGTERM or SIGINT (it owns the process: see ``SWITCH_INTERVAL``)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(IngestWorker(config).run())
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _child(config: WorkerConfig) -> None:
    asyncio.run(serve(config))


def run_workers(config: WorkerConfig, count: int) -> int:
    """Run ``count`` workers (in this process when one); return the exit status."""
    if count == 1:
        asyncio.run(serve(for_worker(config, 1)))
        return 0
    context = multiprocessing.get_context("spawn")
    children: list[BaseProcess] = [
        context.Process(target=_child, args=(for_worker(config, n),), name=f"ingest-{n}")
        for n in range(1, count + 1)]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    for child in children:
        child.start()
    while not stopping and all(child.is_alive() for child in children):
        children[0].join(0.2)
    for child in children:
        if child.is_alive():
            child.terminate()
        child.join(10)
    log.info("ingest_stopped", workers=count, clean=stopping)
    return 0 if stopping else 1
