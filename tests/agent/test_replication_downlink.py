"""The downlink: desired configuration applied once and reported; remote commands answered."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
from boxkit import START, running_box
from paho.mqtt.packettypes import PacketTypes
from replkit import TestCloud, cloud_for, cloud_settings, mosquitto, replicating, wait_for
from saleskit import journal_events

from agent.replication.downlink import CONFIGURATION_CHANGE
from agent.replication.link import properties, property_of

BAGUETTE = {"sku": "BAG", "label": "Baguette", "vat_rate": 550, "price": 120,
            "barcodes": ["3017620422003"], "category": "Boulangerie"}


def desired(version: int, *products: dict[str, Any]) -> dict[str, Any]:
    return {"version": version, "settings": {"receipts": {"footer": ["Merci !"]}},
            "catalog": {"version": version * 10, "products": list(products)}}


def reports(cloud: TestCloud) -> list[dict[str, Any]]:
    return [orjson.loads(payload) for payload, _ in cloud.messages("config/reported")]


def answers(cloud: TestCloud, name: str) -> list[tuple[dict[str, Any], Any]]:
    return [(orjson.loads(payload), property_of(props, "CorrelationData"))
            for payload, props in cloud.messages(f"cmd-res/{name}")]


async def command(cloud: TestCloud, name: str, correlation: bytes,
                  arguments: dict[str, Any] | None = None) -> None:
    await cloud.send(f"cmd/{name}", arguments or {},
                     properties=properties(PacketTypes.PUBLISH, CorrelationData=correlation))


async def test_a_desired_configuration_is_applied_once_and_reported(tmp_path: Path) -> None:
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box, \
            cloud_for(broker.port) as cloud:
        replicator = box.services.replicator
        assert replicator is not None
        await cloud.send("config/desired", desired(2, BAGUETTE), retain=True)
        async with replicating(replicator):
            await wait_for(lambda: len(reports(cloud)) == 1, what="the report")
        async with replicating(replicator):  # the retained state comes again: not re-applied
            await wait_for(lambda: len(reports(cloud)) == 2, what="the second report")
            await cloud.send("config/desired", desired(1), retain=True)
            await wait_for(lambda: len(reports(cloud)) == 3, what="the older version's report")
        first, again, older = reports(cloud)
        assert first["version"] == 2
        assert first["applied"] is True
        assert first["error"] is None
        assert again == first
        assert older == first
        product = await box.services.catalog.by_sku("BAG", START)
        assert product is not None
        assert product.unit_price == 120
        [event] = await journal_events(box, CONFIGURATION_CHANGE)
        assert event["operator"] == "cloud"
        assert event["details"]["version"] == 2
        assert event["details"]["catalog_version"] == 20
        assert event["details"]["applied"] is True
        assert event["details"]["keys"] == ["catalog", "settings"]


async def test_a_configuration_that_cannot_apply_changes_nothing(tmp_path: Path) -> None:
    """A product at an unknown VAT rate refuses the whole catalog; reported and journaled."""
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box, \
            cloud_for(broker.port) as cloud:
        replicator = box.services.replicator
        assert replicator is not None
        bad = {**BAGUETTE, "sku": "BAD", "vat_rate": 1234, "barcodes": []}
        async with replicating(replicator):
            await cloud.send("config/desired", desired(3, BAGUETTE, bad), retain=True)
            await wait_for(lambda: len(reports(cloud)) == 1, what="the report")
        [report] = reports(cloud)
        assert report["version"] == 3
        assert report["applied"] is False
        assert "catalog refused" in report["error"]
        assert await box.services.catalog.by_sku("BAG", START) is None
        [event] = await journal_events(box, CONFIGURATION_CHANGE)
        assert event["details"]["applied"] is False
        assert event["details"]["version"] == 3


async def test_a_remote_x_report_is_answered_with_its_correlation_data(tmp_path: Path) -> None:
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box, \
            cloud_for(broker.port) as cloud:
        replicator = box.services.replicator
        assert replicator is not None
        async with replicating(replicator):
            await wait_for(lambda: replicator.link_state == "connected", what="the link")
            await command(cloud, "x_report", b"req-1")
            await command(cloud, "x_report", b"req-1")  # delivered twice: answered twice
            await command(cloud, "reboot", b"req-2")
            await wait_for(lambda: len(answers(cloud, "x_report")) == 2, what="the answers")
            await wait_for(lambda: answers(cloud, "reboot"), what="the refusal")
        (first, correlation), (second, _) = answers(cloud, "x_report")
        assert correlation == b"req-1"
        assert first == second
        assert first["ok"] is True
        assert first["result"]["business_date"] == "2026-11-20"
        assert first["result"]["ticket_count"] == 0
        [(refusal, correlation)] = answers(cloud, "reboot")
        assert correlation == b"req-2"
        assert refusal == {"ok": False, "error": {"code": "unknown_command",
                                                  "detail": "no remote command 'reboot'"}}


async def test_close_day_and_send_logs(tmp_path: Path) -> None:
    """The day closes once even when the command comes twice; the logs come back."""
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box, \
            cloud_for(broker.port) as cloud:
        replicator = box.services.replicator
        assert replicator is not None
        logging.getLogger("tillbox.test").warning("a line for the cloud")
        async with replicating(replicator):
            await wait_for(lambda: replicator.link_state == "connected", what="the link")
            await command(cloud, "close_day", b"close-1")
            await command(cloud, "close_day", b"close-1")
            await command(cloud, "close_day", b"close-2", {"date": "2099-01-01"})
            await command(cloud, "send_logs", b"logs-1", {"lines": 50})
            await wait_for(lambda: len(answers(cloud, "close_day")) == 3, what="the closures")
            await wait_for(lambda: answers(cloud, "send_logs"), what="the logs")
        (closed, _), (again, _), (future, _) = answers(cloud, "close_day")
        assert closed["ok"] is True
        assert again == closed
        [closure] = closed["result"]["closures"]
        assert closure["type"] == "day_closure"
        assert future["ok"] is False
        assert future["error"]["code"] == "future_date"
        entries = [entry async for entry in box.journal.entries()]
        assert [e.record["type"] for e in entries].count("day_closure") == 1
        [(logs, _)] = answers(cloud, "send_logs")
        assert any("a line for the cloud" in line for line in logs["result"]["lines"])


async def test_commands_sent_while_the_box_is_away_wait_in_its_session(tmp_path: Path) -> None:
    """clean_start off and a session expiry: the broker keeps what came for the box."""
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port)) as box, \
            cloud_for(broker.port) as cloud:
        replicator = box.services.replicator
        assert replicator is not None
        async with replicating(replicator):
            await wait_for(lambda: replicator.link_state == "connected", what="the link")
        await command(cloud, "x_report", b"while-away")
        async with replicating(replicator):
            await wait_for(lambda: answers(cloud, "x_report"), what="the queued command")
        [(answer, correlation)] = answers(cloud, "x_report")
        assert answer["ok"] is True
        assert correlation == b"while-away"


async def test_a_remote_test_print_uses_the_printer(tmp_path: Path) -> None:
    async with mosquitto(tmp_path / "broker") as broker, \
            running_box(tmp_path / "data", cloud=cloud_settings(broker.port),
                        devices=True) as box, \
            cloud_for(broker.port) as cloud:
        replicator = box.services.replicator
        assert replicator is not None
        async with replicating(replicator):
            await wait_for(lambda: replicator.link_state == "connected", what="the link")
            await command(cloud, "test_print", b"print-1")
            await wait_for(lambda: answers(cloud, "test_print"), what="the answer")
        [(answer, _)] = answers(cloud, "test_print")
        assert answer == {"ok": True, "result": {"device": "printer", "done": True}}
        simulator = box.devices.printer_simulator
        assert simulator is not None
        await wait_for(lambda: simulator.receipts, what="the receipt on the printer")
        assert "TEST D'IMPRESSION" in simulator.receipts[0]
