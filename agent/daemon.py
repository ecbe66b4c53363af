"""The box daemon behind ``tillbox run``: one TaskGroup of named tasks around the composed box.

``main(settings)`` sets up logging, builds the box (``agent.composition.compose``) and runs:

* ``http`` — the uvicorn server (its own signal handling disabled: the daemon owns signals);
* ``ready`` — once the listener is bound, journals the start event (JET 1000), collects the
  start-up's garbage and freezes what is left out of later collections (``settle_memory``),
  and tells systemd ``READY=1`` (the chain heads were checked while composing);
* ``watchdog`` — the health check: a round trip to the journal database every interval (half of
  ``WATCHDOG_USEC`` under systemd, else 10 s); once ready, ``WATCHDOG=1`` each time it answers
  in time;
* ``device <name>`` — the loops that keep each peripheral's state fresh (``agent.devices``;
  the simulated devices are started before serving and closed after the last task ended);
* ``local-mqtt`` — the local MQTT API (``agent.mqtt_api``) when ``[local_mqtt]`` is enabled;
* ``replication`` — the journal's replication to the cloud (``agent.replication``) when
  ``[cloud]`` is enabled;
* ``stop`` — on SIGTERM or SIGINT tells systemd ``STOPPING=1`` and asks the server to finish
  its in-flight requests (for at most 5 s; a second signal stops waiting).

When every task has ended the stop event (JET 1001) is journaled, the journal closed, and the
process exits 0. A box that cannot start (journal unreadable, address in use) exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
import sqlite3
import time
from collections.abc import Iterator

import structlog
import uvicorn

from agent.cancellation import cancel_all
from agent.composition import Box, compose
from agent.observability import (
    BOX_START,
    BOX_STOP,
    SystemdNotifier,
    configure_logging,
    write_event,
)
from agent.settings import Settings
from fiscal.errors import FiscalError

EXIT_OK = 0
EXIT_FAILURE = 1
DEFAULT_HEALTH_INTERVAL = 10.0
HEALTH_TIMEOUT = 5.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter: the size from which ``malloc`` maps memory of its own."""
MMAP_THRESHOLD = 128 * 1024

log = structlog.get_logger("tillbox.daemon")


class StartupError(Exception):
    """The box cannot start (the message says why)."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers (they would re-raise the signal on exit)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Daemon:
    """The long-running tasks of one composed box."""

    def __init__(self, box: Box, notifier: SystemdNotifier, started: float) -> None:
        self.box = box
        self.notifier = notifier
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        box.health.serving = False
        self.stop_signal: str | None = None
        self.start_journaled = False
        self._started = started
        self._interval = notifier.watchdog_interval or DEFAULT_HEALTH_INTERVAL
        self._device_tasks: list[asyncio.Task[None]] = []
        http = box.settings.http
        self._server = _Server(uvicorn.Config(
            box.app, host=http.host, port=http.port, log_config=None, access_log=False,
            lifespan="off", server_header=False, timeout_graceful_shutdown=5))

    def request_stop(self, signal_name: str) -> None:
        """Begin a graceful stop (signal handler); a second signal stops waiting for clients."""
        if self.stopping.is_set():
            self._server.force_exit = True
        if self.stop_signal is None:
            self.stop_signal = signal_name
        self.stopping.set()

    async def run(self) -> None:
        """Run until stopped; journal the stop event if the start event was journaled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._serve(), name="http")
            tasks.create_task(self._ready(), name="ready")
            tasks.create_task(self._watchdog(), name="watchdog")
            tasks.create_task(self._stop_when_asked(), name="stop")
            self._device_tasks = [tasks.create_task(loop(), name=f"device {name}")
                                  for name, loop in self.box.devices.tasks().items()]
            self._device_tasks += [tasks.create_task(loop(), name=name) for name, loop
                                   in self.box.services.receipts.tasks().items()]
            if self.box.services.local_mqtt is not None:
                self._device_tasks.append(tasks.create_task(
                    self.box.services.local_mqtt.run(self.box.app), name="local-mqtt"))
            if self.box.services.replicator is not None:
                self._device_tasks += [tasks.create_task(loop(), name=name) for name, loop
                                       in self.box.services.replicator.tasks().items()]
        if self.start_journaled:
            await write_event(self.box.journal, self.box.health, BOX_STOP,
                              {"signal": self.stop_signal or "none"})
        log.info("box_stopped", signal=self.stop_signal, seq=self.box.journal.state.seq)

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as error:  # uvicorn exits when it cannot bind
            http = self.box.settings.http
            raise StartupError(f"cannot listen on {http.host}:{http.port}") from error
        finally:
            self.stopping.set()

    async def _ready(self) -> None:
        while not self._server.started:
            if self.stopping.is_set():
                return
            await asyncio.sleep(0.01)
        entry = await write_event(self.box.journal, self.box.health, BOX_START,
                                  {"software": f"tillbox {self.box.services.version}",
                                   "pid": os.getpid()})
        self.start_journaled = entry is not None
        http = self.box.settings.http
        settle_memory()
        self.box.health.serving = True
        self.notifier.notify("READY=1", f"STATUS=serving on http://{http.host}:{http.port}/")
        self.ready.set()
        log.info("box_ready", url=f"http://{http.host}:{http.port}/",
                 seconds=round(time.monotonic() - self._started, 3),
                 seq=self.box.journal.state.seq, status=self.box.health.status)

    async def _watchdog(self) -> None:
        while not self.stopping.is_set():
            if await self._healthy() and self.ready.is_set() and not self._server.should_exit:
                self.notifier.notify("WATCHDOG=1")
            # asyncio.timeout, not wait_for: on 3.11 wait_for may swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self.stopping.wait()

    async def _healthy(self) -> bool:
        health = self.box.health
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await self.box.journal.store.get_meta("schema_version")
        except (TimeoutError, sqlite3.Error, ValueError) as error:
            health.raise_alarm("journal_unresponsive", f"journal database: {error!r}")
            log.warning("health_check_failed", error=repr(error))
            return False
        health.clear_alarm("journal_unresponsive")
        health.watchdog_at = health.now_text()
        return True

    async def _stop_when_asked(self) -> None:
        await self.stopping.wait()
        self.notifier.notify("STOPPING=1")
        self._server.should_exit = True
        await cancel_all(self._device_tasks)


async def serve(settings: Settings, notifier: SystemdNotifier, started: float) -> int:
    """Compose the box and run it until a stop signal; return the exit status."""
    try:
        await _compose_and_run(settings, notifier, started)
    except (StartupError, FiscalError, sqlite3.Error, OSError) as error:
        log.error("box_start_failed", error=str(error), data_dir=str(settings.data_dir))
        return EXIT_FAILURE
    return EXIT_OK


async def _compose_and_run(settings: Settings, notifier: SystemdNotifier,
                           started: float) -> None:
    loop = asyncio.get_running_loop()
    async with compose(settings) as box, box.devices:
        daemon = Daemon(box, notifier, started)
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, daemon.request_stop, sig.name)
        try:
            await daemon.run()
        except* StartupError as group:
            raise group.exceptions[0] from None
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)


def settle_memory() -> None:
    """Collect the start-up's garbage, then exempt what is left from later collections.

    What the start-up built (modules, the routes, their models: ~100,000 objects) lives as long
    as the process, yet every full collection went through all of it again: a pause of 50 to
    150 ms in the middle of the requests, now and then. Frozen, it is skipped; the collections
    only see what the requests create.
    """
    gc.collect()
    gc.freeze()


def release_large_blocks() -> None:
    """Have glibc map every block of 128 KiB or more on its own, so that freeing returns it.

    By default glibc raises that threshold each time such a block is freed, and the next ones
    come from the heap, where they stay resident once freed: the scrypt of each PIN check
    (4 MiB) left the daemon ~1 MiB bigger per cashier signed in (~9 MB for the eight tills of
    the benchmark). A fixed threshold turns that adaptation off. Elsewhere than glibc: nothing.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def main(settings: Settings) -> int:
    """Run the daemon in the foreground; return the process exit status."""
    started = time.monotonic()
    release_large_blocks()
    configure_logging(settings.log)
    notifier = SystemdNotifier.from_environment()
    log.info("box_starting", data_dir=str(settings.data_dir), pid=os.getpid())
    try:
        return asyncio.run(serve(settings, notifier, started))
    finally:
        notifier.close()
