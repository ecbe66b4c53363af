"""Scale drivers against the wire-level simulators, through real ptys (8N1), both protocols."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from drivers.errors import DeviceFault, DeviceTimeout, DeviceUnavailable, ProtocolError
from drivers.scale.dialog06 import Dialog06Scale
from drivers.scale.protocol import Scale, ScaleStatus, Weight
from drivers.scale.serial_transport import PTY_LINE, SerialTransport
from drivers.scale.simulator import (
    Dialog06Model,
    ScaleProtocolName,
    ScaleSimulator,
    pty_driver,
    scale_simulator,
)
from drivers.scale.toledo8217 import Toledo8217Scale
from drivers.states import READY, Status

#: The checksum polynomial as configuration would give it (CRC-CCITT, for the tests only).
POLYNOMIAL = 0x1021
PROTOCOLS: list[ScaleProtocolName] = ["toledo8217", "dialog06"]


@pytest.fixture(params=PROTOCOLS)
def sim(request: pytest.FixtureRequest) -> Iterator[ScaleSimulator]:
    with scale_simulator(request.param, polynomial=POLYNOMIAL) as simulator:
        yield simulator


@pytest.fixture
async def scale(sim: ScaleSimulator) -> AsyncIterator[Scale]:
    driver: Scale = pty_driver(sim)  # both drivers satisfy the Protocol (checked by mypy)
    yield driver
    await driver.close()


@pytest.fixture
def toledo_sim() -> Iterator[ScaleSimulator]:
    with scale_simulator("toledo8217") as simulator:
        yield simulator


@pytest.fixture
async def toledo(toledo_sim: ScaleSimulator) -> AsyncIterator[Toledo8217Scale]:
    driver = Toledo8217Scale(SerialTransport(toledo_sim.path, PTY_LINE))
    yield driver
    await driver.close()


@pytest.fixture
def dialog_sim() -> Iterator[ScaleSimulator]:
    with scale_simulator("dialog06", polynomial=POLYNOMIAL, handshake_every=2) as simulator:
        yield simulator


@pytest.fixture
async def dialog(dialog_sim: ScaleSimulator) -> AsyncIterator[Dialog06Scale]:
    driver = Dialog06Scale(SerialTransport(dialog_sim.path, PTY_LINE), polynomial=POLYNOMIAL)
    yield driver
    await driver.close()


# --- both protocols --------------------------------------------------------------------------


async def test_stable_weight_is_read_in_grams(sim: ScaleSimulator, scale: Scale) -> None:
    """A settled 1.255 kg load reads as a stable 1255 g and the scale becomes ready."""
    sim.set_weight(1255)
    reading = await scale.read_weight()
    assert (reading.grams, reading.net, reading.stable) == (1255, False, True)
    assert scale.state == READY


async def test_motion_is_not_a_stable_weight(sim: ScaleSimulator, scale: Scale) -> None:
    """A moving platform gives no grams, the in-motion flag, and the scale stays ready."""
    sim.set_weight(800)
    sim.set_motion(True)
    reading = await scale.read_weight()
    assert reading.grams is None
    assert ScaleStatus.IN_MOTION in reading.status
    assert not reading.stable
    assert scale.state == READY


async def test_over_capacity(sim: ScaleSimulator, scale: Scale) -> None:
    """A load over the capacity reads as over capacity, without grams."""
    sim.set_weight(20_000)
    reading = await scale.read_weight()
    assert (reading.grams, ScaleStatus.OVER_CAPACITY in reading.status) == (None, True)


async def test_under_zero(sim: ScaleSimulator, scale: Scale) -> None:
    """A load below zero reads as under zero, without grams."""
    sim.set_weight(-120)
    reading = await scale.read_weight()
    assert (reading.grams, ScaleStatus.UNDER_ZERO in reading.status) == (None, True)


async def test_silence_makes_the_scale_unavailable_until_it_answers(
        sim: ScaleSimulator, scale: Scale) -> None:
    """Silence → DeviceTimeout and unavailable(no_answer); answers again → ready and weighing."""
    sim.set_weight(1000)
    await scale.read_weight()
    sim.silent = True
    with pytest.raises(DeviceTimeout):
        await scale.read_weight()
    assert (scale.state.status, scale.state.reason) == (Status.UNAVAILABLE, "no_answer")
    sim.silent = False
    sim.set_weight(1500)
    assert (await scale.read_weight()).grams == 1500
    assert scale.state == READY


async def test_garbage_is_a_protocol_error_until_it_stops(
        sim: ScaleSimulator, scale: Scale) -> None:
    """Garbage answers → ProtocolError and error(garbage); clean answers → ready again."""
    sim.set_weight(700)
    sim.garbage = b"\x7f#noise#\xff"
    with pytest.raises(ProtocolError):
        await scale.read_weight()
    assert (scale.state.status, scale.state.reason) == (Status.ERROR, "garbage")
    sim.garbage = None
    assert (await scale.read_weight()).grams == 700
    assert scale.state == READY


async def test_unplugged_scale_is_a_state_not_a_crash(
        sim: ScaleSimulator, scale: Scale) -> None:
    """A vanished pty → unavailable(io_error); later calls fail fast during the backoff."""
    sim.set_weight(100)
    await scale.read_weight()
    sim.stop()
    with pytest.raises(DeviceUnavailable):
        await scale.read_weight()
    assert (scale.state.status, scale.state.reason) == (Status.UNAVAILABLE, "io_error")
    with pytest.raises(DeviceUnavailable):
        await scale.read_weight()
    assert scale.state.status == Status.UNAVAILABLE


async def test_missing_port_is_unavailable() -> None:
    """Opening a path that does not exist gives unavailable(not_found), never a crash."""
    driver = Toledo8217Scale(SerialTransport("/dev/does-not-exist-tillbox", PTY_LINE))
    with pytest.raises(DeviceUnavailable):
        await driver.read_weight()
    assert (driver.state.status, driver.state.reason) == (Status.UNAVAILABLE, "not_found")
    await driver.close()


# --- Toledo 8217 -----------------------------------------------------------------------------


async def test_toledo_weight_request_on_the_wire(toledo_sim: ScaleSimulator,
                                                 toledo: Toledo8217Scale) -> None:
    """Reading a weight sends exactly one ``W``."""
    await toledo.read_weight()
    assert toledo_sim.received() == b"W"


async def test_toledo_tare_and_zero_round_trip(toledo_sim: ScaleSimulator,
                                               toledo: Toledo8217Scale) -> None:
    """Tare, a net reading, digital tare, clear tare and zero behave as on the scale."""
    toledo_sim.set_weight(300)
    await toledo.tare()
    toledo_sim.set_weight(1300)
    assert await toledo.read_weight() == Weight(1000, True, ScaleStatus.NET_MODE)
    await toledo.set_tare(250)
    assert await toledo.read_weight() == Weight(1050, True, ScaleStatus.NET_MODE)
    await toledo.clear_tare()
    assert (await toledo.read_weight()).grams == 1300
    await toledo.zero()
    assert (await toledo.read_weight()).grams == 0
    assert toledo_sim.received() == b"TWT00250\rWCWZW"


async def test_toledo_zero_in_motion_is_refused(toledo_sim: ScaleSimulator,
                                                toledo: Toledo8217Scale) -> None:
    """Zeroing a moving platform raises DeviceFault(in_motion); the scale stays ready."""
    toledo_sim.set_weight(40)
    toledo_sim.set_motion(True)
    with pytest.raises(DeviceFault) as caught:
        await toledo.zero()
    assert caught.value.reason == "in_motion"
    assert toledo.state == READY
    assert toledo_sim.platform.zero_offset == 0


async def test_toledo_echo_probe(toledo_sim: ScaleSimulator, toledo: Toledo8217Scale) -> None:
    """``Ehello`` is echoed after ``STX E CR`` and ``F`` ends echo mode."""
    assert await toledo.probe()
    assert toledo_sim.wait_received(7) == b"EhelloF"
    toledo_sim.set_weight(5)
    assert (await toledo.read_weight()).grams == 5


async def test_toledo_polls_at_most_five_times_a_second(toledo: Toledo8217Scale) -> None:
    """Four readings in a row take at least three poll intervals (0.2 s each)."""
    started = time.monotonic()
    for _ in range(4):
        await toledo.read_weight()
    assert time.monotonic() - started >= 3 * 0.2 - 0.01


# --- Dialog 06 -------------------------------------------------------------------------------


async def test_dialog_weighing_with_handshake_on_the_wire(dialog_sim: ScaleSimulator,
                                                          dialog: Dialog06Scale) -> None:
    """Price, ENQ, checksum handshake, price again, ENQ; every scale record answered by EOT."""
    dialog_sim.set_weight(1255)
    weighing = await dialog.weigh(1234)
    assert (weighing.weight.grams, weighing.unit_price_cents, weighing.price_cents) == (
        1255, 1234, 1549)
    model = dialog_sim.model
    assert isinstance(model, Dialog06Model)
    assert model.handshakes == 1
    first_z = b"%04d" % random.Random(0).randrange(10_000)  # the simulator's seed is 0
    checksum = model.checksum.answer(first_z)
    price = b"\x04\x0201\x1b001234\x1b\x03"
    answer = b"\x04\x0210\x1b" + (checksum.cs + checksum.kw).encode() + b"\x03"
    expected = price + b"\x04\x05\x04" + answer + price + b"\x04\x05\x04"
    assert dialog_sim.wait_received(len(expected)) == expected


async def test_dialog_tare_is_sent_with_the_price(dialog_sim: ScaleSimulator,
                                                  dialog: Dialog06Scale) -> None:
    """A set tare goes out in record 03 and the weight comes back net."""
    dialog_sim.set_weight(1150)
    await dialog.set_tare(150)
    weighing = await dialog.weigh(2000)
    assert (weighing.weight.grams, weighing.weight.net, weighing.price_cents) == (1000, True, 2000)
    assert b"\x0203\x1b002000\x1b0150\x03" in dialog_sim.received()
    await dialog.clear_tare()
    dialog_sim.set_weight(1151)
    assert (await dialog.read_weight()).net is False


async def test_dialog_same_load_is_not_weighed_twice(dialog_sim: ScaleSimulator,
                                                     dialog: Dialog06Scale) -> None:
    """Without motion since the last weighing the scale answers code 21 → DeviceFault."""
    dialog_sim.set_weight(500)
    await dialog.read_weight()
    with pytest.raises(DeviceFault) as caught:
        await dialog.read_weight()
    assert caught.value.reason == "no_motion_since_last"
    assert dialog.state == READY


async def test_dialog_under_minimum(dialog_sim: ScaleSimulator, dialog: Dialog06Scale) -> None:
    """A load under the legal minimum reads as under minimum, without grams."""
    dialog_sim.set_weight(10)
    reading = await dialog.read_weight()
    assert (reading.grams, reading.status) == (None, ScaleStatus.UNDER_MINIMUM)


async def test_dialog_handshake_every_n_weighings(dialog_sim: ScaleSimulator,
                                                  dialog: Dialog06Scale) -> None:
    """After the configured number of weighings the scale asks again and the driver answers."""
    for grams in (100, 200, 300):
        dialog_sim.set_weight(grams)
        assert (await dialog.read_weight()).grams == grams
    model = dialog_sim.model
    assert isinstance(model, Dialog06Model)
    assert model.handshakes == 2


async def test_dialog_wrong_polynomial_is_an_error_state(dialog_sim: ScaleSimulator) -> None:
    """A checksum from another polynomial is refused: DeviceFault and error(checksum_rejected)."""
    driver = Dialog06Scale(SerialTransport(dialog_sim.path, PTY_LINE), polynomial=0x8005)
    dialog_sim.set_weight(500)
    with pytest.raises(DeviceFault):
        await driver.read_weight()
    assert (driver.state.status, driver.state.reason) == (Status.ERROR, "checksum_rejected")
    await driver.close()


async def test_dialog_status_probe(dialog_sim: ScaleSimulator, dialog: Dialog06Scale) -> None:
    """Record 08 is answered by record 09 with the current status code."""
    dialog_sim.set_weight(1000)
    assert await dialog.status() == 0
    dialog_sim.set_motion(True)
    assert await dialog.status() == 20


async def test_dialog_cannot_zero_or_tare(dialog: Dialog06Scale) -> None:
    """Zero and platform tare are the scale's own keys: DeviceFault(unsupported)."""
    for command in (dialog.zero, dialog.tare):
        with pytest.raises(DeviceFault) as caught:
            await command()
        assert caught.value.reason == "unsupported"
