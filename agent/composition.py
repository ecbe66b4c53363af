"""The composition root: everything the box runs, built from validated settings.

``compose(settings)`` is an async context manager. It opens the journal (creating the box key and
the initialisation event on first start; a box replacing another first fetches that box's
chain tips and closures from the cloud, so that its journal continues them), checks the chain
heads, sets up the devices, the health board and the HTTP application, and closes the journal
on exit. It alone chooses real or simulated devices (only simulated ones exist yet); it builds
them without connecting them: ``async with box.devices`` starts them (the daemon does, for as
long as it runs). Tests get a complete box from it, with the settings and clock they choose,
and inject nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from fastapi import FastAPI

from agent.boxdb import BoxDb
from agent.devices import DEVICE_KINDS, Devices
from agent.events import EventBus
from agent.http.app import create_app
from agent.http.context import AppServices, VerificationOutcome, Verifier
from agent.http.idempotency import SCHEMA as IDEMPOTENCY_SCHEMA
from agent.observability import (
    INTEGRITY_FAILURE,
    DeviceStatus,
    Health,
    SystemdNotifier,
    check_heads,
    write_event,
)
from agent.services.access import Access
from agent.services.cash import CashDesk
from agent.services.catalog import Catalog
from agent.services.receipts import Receipts
from agent.services.sales import Sales
from agent.settings import DevicesSettings, Settings, software_version
from fiscal.journal import DB_FILE, Clock, Journal, utc_now

if TYPE_CHECKING:
    from agent.mqtt_api import LocalMqttApi
    from agent.replication.replicator import Replicator
    from fiscal.handover import Handover

__all__ = ["DEVICE_KINDS", "Box", "compose"]

START_EXTENSION_SECONDS = 60
"""How far each ``EXTEND_TIMEOUT_USEC`` pushes systemd's start timeout while the box waits."""


class Box:
    """The running box's parts, as built by ``compose``."""

    def __init__(self, settings: Settings, journal: Journal, health: Health,
                 services: AppServices, app: FastAPI, devices: Devices) -> None:
        self.settings = settings
        self.devices = devices
        self.journal = journal
        self.health = health
        self.services = services
        self.app = app


def device_states(devices: DevicesSettings) -> list[DeviceStatus]:
    """The initial state of each configured peripheral (drivers are not connected yet)."""
    states = []
    for kind in DEVICE_KINDS:
        driver = getattr(devices, kind)
        reason = "not_connected" if driver != "none" else "not_configured"
        states.append(DeviceStatus(kind=kind, driver=driver, state="unavailable", reason=reason))
    return states


async def verify_journal(data_dir: Path) -> VerificationOutcome:
    """Verify the whole journal with ``fiscal.verify``.

    Imported on first use: selling does not need it, and it brings multiprocessing along.
    """
    from fiscal.verify import verify_data_dir

    report = await asyncio.to_thread(verify_data_dir, data_dir)
    findings = [finding.to_json() for finding in report.findings]
    return not findings, findings


async def check_journal_heads(journal: Journal, health: Health) -> None:
    """Check the chain heads; on findings raise alarms and journal the integrity event (90)."""
    log = structlog.get_logger(__name__)
    findings = await check_heads(journal)
    health.heads_checked_at = health.now_text()
    for finding in findings:
        health.raise_alarm(finding.code, finding.message, finding.chain, blocking=True)
        log.error("chain_head_check_failed", code=finding.code, chain=finding.chain,
                  detail=finding.message)
    if findings:
        await write_event(journal, health, INTEGRITY_FAILURE,
                          {"scope": "heads", "findings": [f._asdict() for f in findings]})


@asynccontextmanager
async def compose(settings: Settings, *, clock: Clock = utc_now,
                  verifier: Verifier | None = None) -> AsyncIterator[Box]:
    """Build the box from ``settings``; close what it opened on exit."""
    version = software_version()
    async with AsyncExitStack() as stack:
        journal = await Journal.open(settings.data_dir, settings.journal.to_fiscal(version),
                                     clock, handover=await replacement_handover(settings))
        stack.push_async_callback(journal.close)
        db = await BoxDb.open(settings.data_dir, (IDEMPOTENCY_SCHEMA,))
        stack.push_async_callback(db.close)
        health = Health(device_states(settings.devices), clock)
        bus = EventBus(health.now_text)
        devices = Devices(settings.devices, bus)
        await check_journal_heads(journal, health)
        services = await _services(settings, journal, health, db, bus, devices, clock)
        stack.push_async_callback(services.receipts.close)
        services = replace(services, verifier=verifier or verify_journal,
                           local_mqtt=local_mqtt_api(settings, services))
        if settings.cloud.enabled:
            replicator = await cloud_replicator(services)
            stack.push_async_callback(replicator.close)
            services = replace(services, replicator=replicator)
        yield Box(settings, journal, health, services, create_app(services), devices)


async def replacement_handover(settings: Settings) -> Handover | None:
    """The replaced box's handover, fetched from the cloud before the journal's first start.

    Only for a box configured to replace another (``[cloud] replaces``) whose journal does not
    exist yet; waits until the cloud hands it over (see ``agent.replication.handover``).
    """
    cloud = settings.cloud
    if not (cloud.enabled and cloud.replaces) or (settings.data_dir / DB_FILE).exists():
        return None
    from agent.replication.handover import fetch_handover  # only loads MQTT when needed
    from fiscal.handover import Handover

    async with _start_extended(f"waiting for the cloud's handover of box {cloud.replaces}"):
        document = await fetch_handover(settings)
    structlog.get_logger(__name__).info(
        "handover_received", replaces=document["box_id"], epoch=document["epoch"],
        last_seq=document["last_seq"], chains=document["chains"],
        perpetual=document.get("perpetual"), closures=document.get("closures", {}))
    return Handover.from_json(document)


@asynccontextmanager
async def _start_extended(status: str) -> AsyncIterator[None]:
    """Under systemd, keep the start from timing out while ``status`` lasts.

    The service's start timeout (90 s by default) would kill a box that waits for the cloud;
    ``EXTEND_TIMEOUT_USEC`` extends it, again every half period, for as long as the wait goes on.
    """
    notifier = SystemdNotifier.from_environment()

    async def extend() -> None:
        while True:
            notifier.notify(f"STATUS={status}",
                            f"EXTEND_TIMEOUT_USEC={START_EXTENSION_SECONDS * 1_000_000}")
            await asyncio.sleep(START_EXTENSION_SECONDS / 2)

    task = asyncio.create_task(extend(), name="extend-start")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        notifier.close()


def local_mqtt_api(settings: Settings, services: AppServices) -> LocalMqttApi | None:
    """The local MQTT API if ``[local_mqtt]`` is enabled (the daemon runs it), else None."""
    if not settings.local_mqtt.enabled:
        return None
    from agent.mqtt_api import LocalMqttApi, box_id_for  # only loads MQTT when enabled

    return LocalMqttApi(settings.local_mqtt, box_id_for(settings), bus=services.bus,
                        health=services.health, version=services.version,
                        devices=services.devices)


async def cloud_replicator(services: AppServices) -> Replicator:
    """The replicator of ``[cloud]`` (the daemon runs it); checks the journal's tail now."""
    from agent.replication.replicator import Replicator  # only loads MQTT when enabled

    return await Replicator.open(services)


async def _services(settings: Settings, journal: Journal, health: Health, db: BoxDb,
                    bus: EventBus, devices: Devices, clock: Clock) -> AppServices:
    access = await Access.open(db, clock, settings.access.initial_admin_pin)
    catalog = await Catalog.open(db, settings.journal.vat_rates)
    cash = await CashDesk.open(db, journal, health, bus)
    sales = await Sales.open(db, journal, catalog, health, bus, devices, cash)
    receipts = await Receipts.open(db, journal, settings, devices, bus)
    return AppServices(settings=settings, journal=journal, health=health,
                       version=software_version(), started_at=health.now_text(), db=db,
                       bus=bus, access=access, catalog=catalog, sales=sales, cash=cash,
                       receipts=receipts, devices=devices)
