"""What is plugged into the box: udev discovery (plus a periodic scan) followed by the daemon.

The daemon keeps the list of candidate peripherals up to date (``drivers.discovery``), publishes
``device`` events (``plugged`` / ``unplugged`` with the kind, stable id and path) on the bus
— hence on ``/v1/events`` and MQTT — and shows the technician, at ``/v1/devices/discovered``,
what it found and which device it would bind to each peripheral kind configured for a real
driver (``drivers.discovery.propose_bindings``). Drivers themselves are still chosen by the
configuration; a proposal says which path to put there. Where udev is not reachable (a
container) the periodic scan alone runs; a scan that fails is logged and retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from agent.events import EventBus
from agent.settings import DevicesSettings
from drivers.discovery import Binding, DeviceCandidate, Discovery, Kind, propose_bindings, scan

Lister = Callable[[], dict[str, DeviceCandidate]]
RETRY_SECONDS = 30.0
log = structlog.get_logger(__name__)


class DiscoveredDevices:
    """The discovery loop of the running box and its findings."""

    def __init__(self, settings: DevicesSettings, bus: EventBus | None,
                 lister: Lister = scan, interval: float = 5.0) -> None:
        self.settings = settings
        self.bus = bus
        self.discovery = Discovery(lister, interval=interval)

    @property
    def devices(self) -> list[DeviceCandidate]:
        """The candidates present now, by kind then path."""
        return sorted(self.discovery.devices.values(), key=lambda d: (d.kind, d.path))

    def bindings(self) -> list[Binding]:
        """Proposals for each peripheral whose configured driver is a real one."""
        wanted = [kind for kind in Kind if getattr(self.settings, kind.value, "none")
                  not in ("simulated", "none")]
        return list(propose_bindings(self.discovery.devices, wanted).values())

    async def run(self) -> None:
        """Follow plugs and unplugs until cancelled (udev events when reachable, else scans)."""
        while True:
            try:
                await self.discovery.run(self._changed)
            except (OSError, RuntimeError, ImportError) as error:
                log.warning("discovery_failed", error=str(error), retry_in=RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)

    async def _changed(self, added: dict[str, DeviceCandidate],
                       removed: dict[str, DeviceCandidate]) -> None:
        for event, devices in (("plugged", added), ("unplugged", removed)):
            for device in devices.values():
                log.info("device_" + event, kind=str(device.kind), stable_id=device.stable_id,
                         path=device.path, reason=device.reason)
                if self.bus is not None:
                    self.bus.publish("device", {"event": event, "kind": str(device.kind),
                                                "stable_id": device.stable_id,
                                                "path": device.path, "reason": device.reason})
