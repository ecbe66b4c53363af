"""The device API: the peripherals and their states, test print, drawer, display, scale.

``install_devices_api(app, devices, store)`` adds the routes under ``/v1/devices`` and the
handler that turns a driver error into ``application/problem+json`` with the device's name::

    DeviceUnavailable, DeviceTimeout   → 503 device_unavailable
    DeviceFault, ProtocolError         → 409 device_fault

A device problem is never a 5xx crash: the problem says which device and why (``reason``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agent.devices import DRAWER_PIN, DRAWER_PULSE_MS, Devices
from agent.http.auth import approval, require_frontend
from agent.http.idempotency import current_key
from agent.services.access import Approval
from agent.services.cash import CashDesk
from agent.settings import StoreIdentity
from drivers.errors import DeviceError, DeviceTimeout, DeviceUnavailable
from drivers.receipt.document import Blank, Block, Cut, Document, Paper, Rule, Text

PROBLEM_JSON = "application/problem+json"
TEST_PRINT_TITLE = "TEST D'IMPRESSION"
TEST_PRINT_NOTE = "L'imprimante fonctionne."


class DeviceProblem(Exception):
    """A driver error on a named device, answered as a problem document."""

    def __init__(self, device: str, error: DeviceError) -> None:
        super().__init__(str(error))
        self.device, self.error = device, error

    @property
    def status(self) -> int:
        """503 when the device is away, 409 when it answered with a fault."""
        return 503 if isinstance(self.error, DeviceUnavailable | DeviceTimeout) else 409

    @property
    def code(self) -> str:
        """The stable machine code."""
        return "device_unavailable" if self.status == 503 else "device_fault"


class DeviceProblemOut(BaseModel):
    """A device problem (RFC 9457) naming the device and the driver's reason."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    device: str
    reason: str


class DeviceOut(BaseModel):
    """One peripheral and its state."""

    name: str
    kind: str
    driver: str
    status: str
    reason: str | None
    connection: str | None


class DevicesOut(BaseModel):
    """Every peripheral of the box."""

    devices: list[DeviceOut]


class DisplayIn(BaseModel):
    """Two lines for the customer display (fitted to its width)."""

    line1: str = Field(default="", max_length=40)
    line2: str = Field(default="", max_length=40)


class DoneOut(BaseModel):
    """The device did it."""

    device: str
    done: bool = True


class WeightOut(BaseModel):
    """A scale reading: grams when stable, else ``null`` and the flags saying why."""

    grams: int | None
    stable: bool
    net: bool
    flags: list[str]


class DiscoveredOut(BaseModel):
    """A device found plugged into the box, and why it is taken for that kind."""

    kind: str
    stable_id: str
    path: str
    vid_pid: str | None
    reason: str


class DiscoveryOut(BaseModel):
    """What is plugged in, and the device proposed for each peripheral with a real driver."""

    devices: list[DiscoveredOut]
    bindings: list[str]


DEVICE_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": DeviceProblemOut, "description": HTTPStatus(code).phrase,
           "content": {PROBLEM_JSON: {}}} for code in (409, 503)}


def device_list(devices: Devices) -> DevicesOut:
    """The ``GET /v1/devices`` document."""
    return DevicesOut(devices=[DeviceOut(name=name, **state)
                               for name, state in devices.states().items()])


def build_test_receipt(store: StoreIdentity, now: dt.datetime) -> bytes:
    """The ESC/POS bytes of a short test receipt headed with the store's name."""
    address = [Text(line, "center") for line in store.address]
    blocks: tuple[Block, ...] = (
        Text(store.name, "center", bold=True), *address, Rule(),
        Text(TEST_PRINT_TITLE, "center", bold=True), Text(TEST_PRINT_NOTE),
        Text(now.strftime("%d/%m/%Y %H:%M:%S"), "center"), Blank(), Cut())
    # python-escpos and Pillow (~9 MB) load on the first print, not at start (idle RSS)
    from drivers.receipt.escpos_render import FRENCH, render_escpos

    return render_escpos(Document(Paper.MM80, blocks), FRENCH)


def weight_out(weight: Any) -> WeightOut:
    """A driver ``Weight`` as JSON."""
    flags = [flag.name for flag in type(weight.status) if flag & weight.status and flag.name]
    return WeightOut(grams=weight.grams, stable=weight.stable, net=weight.net, flags=flags)


def devices_router(devices: Devices, store: StoreIdentity) -> APIRouter:
    """The ``/v1/devices`` routes around ``devices``."""
    router = APIRouter(prefix="/v1/devices", tags=["devices"], responses=DEVICE_RESPONSES,
                       dependencies=[Depends(require_frontend)])

    @router.get("", summary="The peripherals and their states")
    async def list_devices() -> DevicesOut:
        return device_list(devices)

    @router.get("/discovered", summary="What is plugged in, and the proposed bindings")
    async def discovered() -> DiscoveryOut:
        found = devices.discovered
        return DiscoveryOut(
            devices=[DiscoveredOut(kind=str(d.kind), stable_id=d.stable_id, path=d.path,
                                   vid_pid=d.vid_pid, reason=d.reason) for d in found.devices],
            bindings=[str(binding) for binding in found.bindings()])

    @router.post("/printer/test-print", summary="Print a short test receipt")
    async def test_print() -> DoneOut:
        data = build_test_receipt(store, dt.datetime.now().astimezone())
        await _on("printer", devices, lambda p: p.print_job(f"test-{uuid.uuid4()}", data))
        return DoneOut(device="printer")

    @router.post("/drawer/open",
                 summary="Open the cash drawer without a sale (manager approval; JET 1040)")
    async def open_drawer(request: Request, consent: Annotated[
            Approval, Depends(approval("drawer_no_sale"))]) -> DoneOut:
        desk: CashDesk = request.app.state.cash  # journals after the kick, like /v1/drawer/open
        await desk.open_drawer(consent, None, lambda: _on(
            "drawer", devices, lambda p: p.kick_drawer(DRAWER_PIN, DRAWER_PULSE_MS,
                                                       DRAWER_PULSE_MS)), current_key())
        return DoneOut(device="drawer")

    @router.post("/display", summary="Show two lines on the customer display")
    async def show(body: DisplayIn) -> DoneOut:
        await _on("display", devices, lambda d: d.show((body.line1, body.line2)))
        _require_usable("display", devices)
        return DoneOut(device="display")

    @router.get("/scale/weight", summary="Read the scale now")
    async def weight() -> WeightOut:
        reading = await _on("scale", devices, lambda s: s.read_weight())
        return weight_out(reading)

    return router


async def _on(name: str, devices: Devices, action: Any) -> Any:
    """Run ``action(driver)``; a driver error becomes a ``DeviceProblem`` on ``name``."""
    try:
        return await action(devices.require(name))
    except DeviceError as error:
        raise DeviceProblem(name, error) from error


def _require_usable(name: str, devices: Devices) -> None:
    """Drivers that never raise (the display) report trouble through their state."""
    state = devices.state_of(name)
    if not state.usable:
        reason = state.reason or state.status.value
        raise DeviceProblem(name, DeviceUnavailable(state.detail or reason, reason=reason))


async def _on_device_problem(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DeviceProblem)
    body = DeviceProblemOut(title=HTTPStatus(error.status).phrase, status=error.status,
                            code=error.code, detail=str(error.error), device=error.device,
                            reason=error.error.reason)
    return JSONResponse(body.model_dump(), status_code=error.status, media_type=PROBLEM_JSON)


def install_devices_api(app: FastAPI, devices: Devices, store: StoreIdentity) -> None:
    """Add the device routes and their problem handler to ``app``."""
    app.include_router(devices_router(devices, store))
    app.add_exception_handler(DeviceProblem, _on_device_problem)
