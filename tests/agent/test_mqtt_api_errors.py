"""Refusals over MQTT carry the HTTP API's status, code and field; idempotent retries replay."""

from __future__ import annotations

from pathlib import Path

import pytest
from boxkit import ADMIN_PIN, client_for
from mqttapikit import MqttFrontend, api_of, mosquitto, mqtt_box

from agent.composition import Box


async def paired(front: MqttFrontend, box: Box, sign_in: bool = True) -> str:
    """Pair ``front`` over MQTT (and sign the admin in); return its token."""
    answer = await front.ok("post_v1_pairing", {"body": {
        "code": box.services.access.pairing_code, "name": front.name}})
    front.token = answer["token"]
    if sign_in:
        await front.ok("post_v1_session", {"body": {"user_id": "admin", "pin": ADMIN_PIN}})
    token: str = answer["token"]
    return token


async def test_errors_have_the_same_codes_as_over_http(tmp_path: Path) -> None:
    """No token → 401 unauthorized; a bad field → 422 with the field; both as HTTP says."""
    async with (mosquitto(tmp_path / "broker") as port, mqtt_box(tmp_path / "data", port) as box,
                MqttFrontend(port, api_of(box).topics.prefix) as front):
        anonymous = await front.request("get_v1_session")
        token = await paired(front, box)
        bad = await front.request("post_v1_catalog_products", {"body": {
            "sku": "X", "label": "X", "vat_rate": 550, "price": -5}})
        missing = await front.request("get_v1_tickets_ticket_id", {"path": {"ticket_id": "nope"}})
        async with client_for(box) as http:
            http_anonymous = (await http.get("/v1/session")).json()
        async with client_for(box, token) as http:
            http_bad = (await http.post("/v1/catalog/products", json={
                "sku": "X", "label": "X", "vat_rate": 550, "price": -5})).json()
            http_missing = await http.get("/v1/tickets/nope")
    assert anonymous == {"ok": False, "status": 401, "error": http_anonymous}
    assert anonymous["error"]["code"] == "unauthorized"
    assert bad == {"ok": False, "status": 422, "error": http_bad}
    assert (bad["error"]["code"], bad["error"]["field"]) == ("invalid_input", "price")
    assert missing == {"ok": False, "status": http_missing.status_code,
                       "error": http_missing.json()}


async def test_an_idempotent_request_is_replayed_over_mqtt(tmp_path: Path) -> None:
    """The same Idempotency-Key gives the first answer again, marked replayed; a different
    body with it is refused as over HTTP."""
    async with (mosquitto(tmp_path / "broker") as port, mqtt_box(tmp_path / "data", port) as box,
                MqttFrontend(port, api_of(box).topics.prefix) as front):
        await paired(front, box)
        body = {"sku": "BAG", "label": "Baguette", "vat_rate": 550, "price": 120}
        request = {"body": body, "headers": {"Idempotency-Key": "create-bag"}}
        first = await front.request("post_v1_catalog_products", request)
        again = await front.request("post_v1_catalog_products", request)
        changed = await front.request("post_v1_catalog_products", {
            **request, "body": {**body, "price": 130}})
        products = await front.ok("get_v1_catalog_products")
    assert (first["ok"], first["status"], "replayed" in first) == (True, 201, False)
    assert again == {**first, "replayed": True}
    assert (changed["status"], changed["error"]["code"]) == (422, "idempotency_key_reused")
    assert [product["sku"] for product in products["items"]] == ["BAG"]


@pytest.mark.parametrize(("operation", "payload", "status", "code", "field"), [
    ("no_such_operation", b"{}", 404, "unknown_operation", None),
    ("get_v1_events", b"{}", 404, "unknown_operation", None),
    ("get_v1_session", b"not json", 400, "invalid_request", None),
    ("get_v1_session", b'{"bodyy": 1}', 400, "invalid_request", "bodyy"),
    ("get_v1_session", b'{"headers": {"Host": "x"}}', 400, "invalid_request", "headers.host"),
    ("get_v1_tickets_ticket_id", b'{"path": {}}', 422, "invalid_input", "ticket_id"),
    ("get_v1_tickets_ticket_id", b'{"path": {"ticket_id": "a", "x": 1}}', 422,
     "invalid_input", "x"),
    ("post_v1_catalog_import", b'{"body": {"a": 1}, "headers": {"Content-Type": "text/csv"}}',
     400, "invalid_request", "body"),
])
async def test_malformed_requests_are_refused_by_the_mqtt_layer(
        tmp_path: Path, operation: str, payload: bytes, status: int, code: str,
        field: str | None) -> None:
    """What cannot become an HTTP request is answered with a problem too, never dropped."""
    async with (mosquitto(tmp_path / "broker") as port, mqtt_box(tmp_path / "data", port) as box,
                MqttFrontend(port, api_of(box).topics.prefix) as front):
        await paired(front, box, sign_in=False)
        reply = await front.request(operation, payload)
    assert (reply["ok"], reply["status"]) == (False, status), reply
    assert (reply["error"]["code"], reply["error"].get("field")) == (code, field), reply


async def test_the_box_never_answers_on_its_own_topics(tmp_path: Path) -> None:
    """A response topic among the box's own (but ``res/``) is not answered: a frontend cannot
    make the box publish a false status or event."""
    async with (mosquitto(tmp_path / "broker") as port, mqtt_box(tmp_path / "data", port) as box,
                MqttFrontend(port, api_of(box).topics.prefix) as front):
        await front.subscribe("event/#")
        with pytest.raises(TimeoutError):
            await front.request("get_health", response_topic=f"{front.prefix}event/scan",
                                timeout=0.5)
        answered = await front.ok("get_health")
    assert front.seen("event/scan") == []
    assert answered["status"] in ("starting", "ok")
