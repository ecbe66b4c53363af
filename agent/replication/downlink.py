"""What the cloud sends down: the desired configuration and remote commands.

Messages arrive on the link's reader and are queued (``offer`` never blocks the reader, so acks
keep flowing while a command prints or closes a day); one worker handles them in order.

``config/desired`` (retained) is ``{version, settings?, catalog?: {version, products: [...]},
…}``. A version not newer than the last one handled is not applied again (its report is
published again). A newer one is applied as one unit: the catalog's products are upserted by sku
in one transaction (through the catalog's all-or-nothing import), settings and other keys are
recorded only. Either way the outcome is journaled (JET 1060, with the version and a hash of the
document), remembered in ``box.sqlite``, and reported on ``config/reported`` (retained):
``{version, applied, error, at}``.

``cmd/{name}`` requests are answered on ``cmd-res/{name}`` with the request's MQTT 5
correlation data (``agent.replication.commands``).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import sqlite3
from typing import Any

import orjson
import structlog
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.boxdb import BoxDb
from agent.errors import ProblemError
from agent.http.context import AppServices
from agent.replication.commands import CommandRunner
from agent.replication.link import Publisher
from agent.services.catalog_csv import ImportRejected, format_rate
from fiscal.errors import FiscalError
from fiscal.requests import EventRequest

CONFIGURATION_CHANGE = 1060
OPERATOR = "cloud"
QUEUE_SIZE = 64
SCHEMA = """
CREATE TABLE IF NOT EXISTS replication_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    applied INTEGER NOT NULL,
    error TEXT,
    at TEXT NOT NULL
);
"""
CSV_COLUMNS = ("sku", "label", "vat_rate", "price", "sold_by_weight", "category", "barcodes",
               "active")
log = structlog.get_logger("tillbox.replication")


class DesiredProduct(BaseModel):
    """A product of a desired catalog (cents, basis points)."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=120)
    vat_rate: int = Field(ge=0, le=10_000)
    price: int = Field(ge=0, le=10**11)
    barcodes: list[str] = Field(default=[], max_length=32)
    sold_by_weight: bool = False
    category: str | None = Field(default=None, max_length=200)
    active: bool = True


class DesiredCatalog(BaseModel):
    """A versioned catalog."""

    version: int = Field(ge=1)
    products: list[DesiredProduct] = Field(max_length=100_000)


class DesiredConfig(BaseModel):
    """The desired state the cloud publishes (keys other than these are recorded only)."""

    model_config = ConfigDict(extra="allow")

    version: int = Field(ge=1, le=2**62)
    settings: dict[str, Any] = {}
    catalog: DesiredCatalog | None = None


def catalog_csv(catalog: DesiredCatalog) -> bytes:
    """The catalog as the CSV the catalog service imports (all or nothing)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for product in catalog.products:
        writer.writerow((product.sku, product.label, format_rate(product.vat_rate),
                         f"{product.price // 100},{product.price % 100:02d}",
                         "oui" if product.sold_by_weight else "non", product.category or "",
                         "|".join(product.barcodes), "oui" if product.active else "non"))
    return out.getvalue().encode("utf-8")


class ConfigStore:
    """The last desired version handled, and how."""

    def __init__(self, db: BoxDb) -> None:
        self.db = db

    @classmethod
    async def open(cls, db: BoxDb) -> ConfigStore:
        """Create the table if needed."""
        await db.create(SCHEMA)
        return cls(db)

    async def reported(self) -> dict[str, Any] | None:
        """The report of the last version handled, or None."""
        row = await self.db.fetch_one(
            "SELECT version, applied, error, at FROM replication_config WHERE id = 1")
        if row is None:
            return None
        return {"version": int(row[0]), "applied": bool(row[1]), "error": row[2], "at": row[3]}

    async def remember(self, report: dict[str, Any]) -> None:
        """Store the report of a version just handled."""
        await self.db.execute(
            "INSERT INTO replication_config (id, version, applied, error, at) "
            "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
            " applied = excluded.applied, error = excluded.error, at = excluded.at",
            (report["version"], int(report["applied"]), report["error"], report["at"]))


class Downlink:
    """The queue and worker of downlink messages."""

    def __init__(self, services: AppServices, configs: ConfigStore,
                 commands: CommandRunner) -> None:
        self.services = services
        self.configs = configs
        self.commands = commands
        self.queue: asyncio.Queue[tuple[str, bytes, Properties | None]] = asyncio.Queue(
            QUEUE_SIZE)

    def offer(self, suffix: str, payload: bytes, props: Properties | None) -> None:
        """Queue a message from the reader (dropped, and logged, when the queue is full)."""
        try:
            self.queue.put_nowait((suffix, payload, props))
        except asyncio.QueueFull:
            log.warning("downlink_queue_full", topic=suffix)

    async def worker(self, publish: Publisher) -> None:
        """Handle queued messages one at a time, forever."""
        while True:
            suffix, payload, props = await self.queue.get()
            try:
                await self.handle(suffix, payload, props, publish)
            except Exception:  # one bad message must not stop the downlink
                log.exception("downlink_failed", topic=suffix)

    async def handle(self, suffix: str, payload: bytes, props: Properties | None,
                     publish: Publisher) -> None:
        """Apply a desired configuration or run a command; publish the outcome."""
        if suffix == "config/desired":
            report = await self.apply_config(payload)
            if report is not None:
                await publish("config/reported", orjson.dumps(report), retain=True)
        elif suffix.startswith("cmd/"):
            await self.commands.answer(suffix.removeprefix("cmd/"), payload, props, publish)

    async def apply_config(self, payload: bytes) -> dict[str, Any] | None:
        """Apply a newer desired version; return the report to publish (None: unreadable)."""
        try:
            document = orjson.loads(payload)
            version = int(document["version"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            if payload:  # an empty retained message clears the desired state: nothing to do
                log.warning("config_desired_unreadable", size=len(payload))
            return None
        current = await self.configs.reported()
        if current is not None and version <= current["version"]:
            return current
        error = await self._apply(document)
        report = {"version": version, "applied": error is None, "error": error,
                  "at": self.services.health.now_text()}
        await self._journal(document, report, hashlib.sha256(payload).hexdigest())
        await self.configs.remember(report)
        log.info("config_handled", version=version, applied=error is None, error=error)
        return report

    async def _apply(self, document: dict[str, Any]) -> str | None:
        """Apply what can be applied; the error text when it could not (nothing changed)."""
        try:
            desired = DesiredConfig.model_validate(document)
            if desired.catalog is not None:
                await self.services.catalog.import_csv(catalog_csv(desired.catalog),
                                                       operator=OPERATOR)
        except ValidationError as error:
            detail = error.errors()[0]
            where = ".".join(str(part) for part in detail["loc"])
            return f"invalid desired state: {where}: {detail['msg']}"[:500]
        except ImportRejected as rejected:
            row = rejected.errors[0]
            return f"catalog refused: line {row.line} {row.column or ''}: {row.message}"[:500]
        except ProblemError as problem:
            return f"{problem.code}: {problem.detail}"[:500]
        return None

    async def _journal(self, document: dict[str, Any], report: dict[str, Any],
                       digest: str) -> None:
        """Journal the configuration event (one per version, even after a crash and retry)."""
        catalog = document.get("catalog")
        details: dict[str, Any] = {
            "source": OPERATOR, "version": report["version"], "applied": report["applied"],
            "sha256": digest, "keys": sorted(str(key) for key in document if key != "version")[:50]}
        if report["error"] is not None:
            details["error"] = report["error"]
        if isinstance(catalog, dict) and isinstance(catalog.get("version"), int):
            details["catalog_version"] = catalog["version"]
        request = EventRequest(code=CONFIGURATION_CHANGE, operator=OPERATOR, details=details)
        try:
            await self.services.journal.record_event(
                request, idempotency_key=f"cloud-config:{report['version']}")
        except (FiscalError, sqlite3.Error) as error:
            log.error("config_event_not_journaled", version=report["version"], error=str(error))
