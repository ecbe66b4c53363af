"""A frontend that speaks only MQTT: pairs, signs in, stocks a product, sells it, reads it back."""

from __future__ import annotations

import base64
from pathlib import Path

from boxkit import ADMIN_PIN
from mqttapikit import MqttFrontend, api_of, mosquitto, mqtt_box

BAGUETTE = "3017620422003"


async def test_a_ticket_is_sold_end_to_end_over_mqtt_only(tmp_path: Path) -> None:
    """Pairing, sign-in, catalog, float, lookup, ticket, payment, finalize: all over MQTT."""
    async with (mosquitto(tmp_path / "broker") as port, mqtt_box(tmp_path / "data", port) as box,
                MqttFrontend(port, api_of(box).topics.prefix) as front):
        paired = await front.ok("post_v1_pairing", {"body": {
            "code": box.services.access.pairing_code, "name": "tablette MQTT"}})
        front.token = paired["token"]
        await front.ok("post_v1_session", {"body": {"user_id": "admin", "pin": ADMIN_PIN}})
        await front.ok("post_v1_catalog_products", {"body": {
            "sku": "BAG", "label": "Baguette", "vat_rate": 550, "price": 120,
            "barcodes": [BAGUETTE]}}, status=201)
        await front.ok("post_v1_cash_sessions", {"body": {"float": 5000}}, status=201)
        product = await front.ok("get_v1_catalog_barcodes_code", {"path": {"code": BAGUETTE}})
        ticket = await front.ok("post_v1_tickets", {"body": {}}, status=201)
        path = {"ticket_id": ticket["id"]}
        await front.ok("post_v1_tickets_ticket_id_lines",
                       {"path": path, "body": {"barcode": BAGUETTE, "quantity_milli": 2000}},
                       status=201)
        draft = await front.ok("post_v1_tickets_ticket_id_payments", {
            "path": path, "body": {"tender": "cash", "amount": 500}}, status=201)
        sold = await front.ok("post_v1_tickets_ticket_id_finalize",
                              {"path": path, "body": {},
                               "headers": {"Idempotency-Key": "sale-1"}})
        sale = await front.ok("get_v1_sales_seq", {"path": {"seq": sold["seq"]}})
        text = await front.request("get_v1_receipts_seq_txt", {"path": {"seq": sold["seq"]}})
        image = await front.request("get_v1_receipts_seq_png", {"path": {"seq": sold["seq"]}})
        entry = await box.services.journal.get(sold["seq"])
    assert product["sku"] == "BAG"
    assert (draft["total"], draft["change"]) == (240, 260)
    assert (sold["total"], sold["change"], sold["chain"]) == (240, 260, "ticket")
    assert entry is not None
    assert (entry.record["total"], entry.record["payments"]) == \
        (240, [{"tender": "cash", "amount": 500}])
    assert entry.record["lines"][0]["label"] == "Baguette"
    assert sale["seq"] == sold["seq"]
    assert text["content_type"].startswith("text/plain")
    assert "2,40" in text["result"]
    assert sold["receipt"]["number"] in text["result"]
    assert (image["content_type"], image["encoding"]) == ("image/png", "base64")
    assert base64.b64decode(image["result"]).startswith(b"\x89PNG")
