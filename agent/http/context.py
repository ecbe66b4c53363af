"""What the HTTP layer is given by the composition root: the box's services, by construction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.boxdb import BoxDb
from agent.devices import Devices
from agent.events import EventBus
from agent.observability import Health, network_addresses
from agent.services.access import Access
from agent.services.cash import CashDesk
from agent.services.catalog import Catalog
from agent.services.receipts import Receipts
from agent.services.sales import Sales
from agent.settings import Settings
from fiscal.journal import Journal

if TYPE_CHECKING:
    from agent.mqtt_api import LocalMqttApi
    from agent.replication.replicator import Replicator

VerificationOutcome = tuple[bool, list[dict[str, Any]]]
Verifier = Callable[[Path], Awaitable[VerificationOutcome]]
"""Verify a data directory fully: ``(clean, findings as JSON objects)``."""


@dataclass(frozen=True)
class AppServices:
    """What the HTTP layer needs from the box, built by the composition root."""

    settings: Settings
    journal: Journal
    health: Health
    version: str
    started_at: str
    db: BoxDb
    bus: EventBus
    access: Access
    catalog: Catalog
    sales: Sales
    cash: CashDesk
    receipts: Receipts
    verifier: Verifier | None = None
    devices: Devices | None = None
    local_mqtt: LocalMqttApi | None = None
    replicator: Replicator | None = None
    addresses: Callable[[], Sequence[tuple[str, str]]] = field(default=network_addresses)
