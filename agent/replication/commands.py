"""Remote commands from the cloud: ``cmd/{name}`` in, ``cmd-res/{name}`` out.

The request is a JSON object of arguments (or empty); the MQTT 5 correlation data of the
request is copied onto the answer, whose body is ``{ok: true, result}`` or ``{ok: false,
error: {code, detail}}`` (the codes of the HTTP API). Commands reuse the box's services:

* ``test_print`` — a short test receipt on the printer;
* ``x_report`` — the X report of the current business day;
* ``close_day`` — the day closure (``{date?: "YYYY-MM-DD"}``, default today; refused while
  the day's cash session is open, or under an integrity alarm);
* ``send_logs`` — the last log lines (``{lines?: 1..1000}``, default 200).

A request delivered twice (QoS 1 after a reconnect) with the same correlation data is answered
again from memory without running twice; ``close_day`` also carries an idempotency key derived
from it to the journal.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.errors import ProblemError, invalid
from agent.http.context import AppServices
from agent.http.devices_api import DeviceProblem, build_test_receipt
from agent.http.reports_api import day_x
from agent.replication.link import Publisher, properties, property_of
from agent.replication.logs import RecentLogs
from drivers.errors import DeviceError
from fiscal.errors import FiscalError

OPERATOR = "cloud"
REMEMBERED = 64
MAX_LOG_BYTES = 200 * 1024
Result = dict[str, Any]
log = structlog.get_logger("tillbox.replication")


class CommandRunner:
    """Run named commands against the box's services and answer them."""

    def __init__(self, services: AppServices, logs: RecentLogs) -> None:
        self.services = services
        self.logs = logs
        self._answered: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()
        self._commands: dict[str, Callable[[dict[str, Any], str | None], Awaitable[Result]]] = {
            "test_print": self.print_test, "x_report": self.x_report,
            "close_day": self.close_day, "send_logs": self.send_logs}

    async def answer(self, name: str, payload: bytes, props: Properties | None,
                     publish: Publisher) -> None:
        """Run ``name`` (once per correlation data) and publish the answer."""
        found = property_of(props, "CorrelationData")
        correlation = bytes(found) if isinstance(found, bytes | bytearray) and found else None
        key = (name, correlation) if correlation else None
        body = self._answered.get(key) if key else None
        if body is None:
            body = orjson.dumps(await self.run(name, payload, _key_of(correlation)))
            if key is not None:
                self._remember(key, body)
        reply = properties(PacketTypes.PUBLISH, CorrelationData=correlation) \
            if correlation else None
        await publish(f"cmd-res/{name}", body, props=reply)

    def _remember(self, key: tuple[str, bytes], body: bytes) -> None:
        self._answered[key] = body
        while len(self._answered) > REMEMBERED:
            self._answered.popitem(last=False)

    async def run(self, name: str, payload: bytes, key: str | None) -> Result:
        """``{ok, result}`` or ``{ok: false, error: {code, detail}}``."""
        command = self._commands.get(name)
        if command is None:
            return failure("unknown_command", f"no remote command {name!r}")
        try:
            result = await command(arguments(payload), key)
        except ProblemError as problem:
            return failure(problem.code, problem.detail)
        except FiscalError as error:
            return failure(error.code, error.message)
        except DeviceError as error:
            return failure(DeviceProblem(name, error).code, str(error))
        log.info("remote_command_done", command=name)
        return {"ok": True, "result": result}

    async def print_test(self, _: dict[str, Any], __: str | None) -> Result:
        """Print the test receipt."""
        devices = self.services.devices
        if devices is None:
            raise ProblemError(503, "device_unavailable", "this box has no devices")
        data = build_test_receipt(self.services.settings.store, dt.datetime.now().astimezone())
        await devices.require("printer").print_job(f"test-{uuid.uuid4()}", data)
        return {"device": "printer", "done": True}

    async def x_report(self, _: dict[str, Any], __: str | None) -> Result:
        """The X report of the business day so far."""
        report = await day_x(self.services.journal)
        return report.model_dump(mode="json")

    async def close_day(self, args: dict[str, Any], key: str | None) -> Result:
        """Close a business day (default today)."""
        day = _date(args.get("date"))
        closures = await self.services.cash.close_period("day", OPERATOR, day, key)
        return {"closures": [{"seq": entry.seq, "type": entry.record["type"],
                              "period_from": entry.record.get("period_from"),
                              "period_to": entry.record.get("period_to")}
                             for entry in closures]}

    async def send_logs(self, args: dict[str, Any], _: str | None) -> Result:
        """The last log lines (at most 200 KiB of them)."""
        count = args.get("lines", 200)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
            raise invalid("invalid_input", "lines: an integer from 1 to 1000", "lines")
        lines, size = [], 0
        for line in reversed(self.logs.tail(count)):
            size += len(line.encode("utf-8")) + 4
            if size > MAX_LOG_BYTES:
                break
            lines.append(line)
        return {"lines": lines[::-1]}


def failure(code: str, detail: str | None) -> Result:
    """An error answer."""
    return {"ok": False, "error": {"code": code, "detail": detail}}


def arguments(payload: bytes) -> dict[str, Any]:
    """The request's arguments: a JSON object, or nothing (422 ``invalid_input`` otherwise)."""
    if not payload.strip():
        return {}
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise invalid("invalid_input", f"the request is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise invalid("invalid_input", "the request must be a JSON object")
    return value


def _date(value: object) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as error:
        raise invalid("invalid_input", "date: YYYY-MM-DD", "date") from error


def _key_of(correlation: bytes | None) -> str | None:
    """An idempotency key for the journal derived from the request's correlation data."""
    return "cloud-cmd:" + correlation.hex()[:96] if correlation else None
