"""Topic names, the box id, operation ids and where the box agrees to answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from boxkit import running_box

from agent.mqtt_api import Topics, box_id_for
from agent.mqtt_api.operations import operations_of
from agent.settings import CloudSettings, JournalSection, LocalMqttSettings, Settings

TOPICS = Topics.of("tillbox/{box_id}/", "shop-R1")


def test_topics_live_under_the_box_prefix() -> None:
    """Requests, events, device states and status, as DESIGN.md §7 names them."""
    assert TOPICS.commands == "tillbox/shop-R1/cmd/+"
    assert TOPICS.operation_of("tillbox/shop-R1/cmd/post_v1_tickets") == "post_v1_tickets"
    assert TOPICS.operation_of("tillbox/shop-R1/cmd/") is None
    assert TOPICS.operation_of("tillbox/other/cmd/post_v1_tickets") is None
    assert TOPICS.event("ticket.finalized") == "tillbox/shop-R1/event/ticket.finalized"
    assert TOPICS.device("scale") == "tillbox/shop-R1/device/scale/state"
    assert TOPICS.status == "tillbox/shop-R1/status"


@pytest.mark.parametrize(("topic", "allowed"), [
    ("tillbox/shop-R1/res/front-1", True),
    ("frontends/front-1/replies", True),
    ("tillbox/other-box/status", True),
    ("tillbox/shop-R1/status", False),
    ("tillbox/shop-R1/event/scan", False),
    ("tillbox/shop-R1/device/printer/state", False),
    ("tillbox/shop-R1/cmd/post_v1_tickets", False),
    ("$SYS/broker", False),
    ("", False),
])
def test_the_box_answers_only_outside_its_own_topics_or_under_res(topic: str,
                                                                   allowed: bool) -> None:
    """A frontend cannot make the box publish a status, an event or a device state."""
    assert TOPICS.may_reply_to(topic) is allowed


def test_the_box_id_is_configured_or_the_clouds_or_derived() -> None:
    """``local_mqtt.box_id`` first, then ``cloud.box_id``, else store and register."""
    odd = JournalSection(store_id="Mag 1/x", register_id="R#2")
    assert box_id_for(Settings()) == "demo-store-R1"
    assert box_id_for(Settings(journal=odd)) == "Mag-1-x-R-2"
    assert box_id_for(Settings(cloud=CloudSettings(box_id="cloud-id"))) == "cloud-id"
    assert box_id_for(Settings(cloud=CloudSettings(box_id="cloud-id"),
                               local_mqtt=LocalMqttSettings(box_id="local"))) == "local"


@pytest.mark.parametrize("prefix", ["a/#/", "no-slash", "$SYS/x/", "a/+/"])
def test_a_prefix_with_wildcards_or_without_slash_is_refused(prefix: str) -> None:
    """The prefix must be a plain topic path ending with ``/``."""
    with pytest.raises(ValueError, match="topic_prefix"):
        LocalMqttSettings(topic_prefix=prefix)


async def test_operation_ids_are_method_and_path(tmp_path: Path) -> None:
    """Every HTTP operation has a snake-case id; the SSE stream is left to ``event/#``."""
    async with running_box(tmp_path / "data") as box:
        operations = operations_of(box.app)
    finalize = operations["post_v1_tickets_ticket_id_finalize"]
    assert (finalize.method, finalize.path) == ("POST", "/v1/tickets/{ticket_id}/finalize")
    assert finalize.url({"ticket_id": "T 1/2"}) == "/v1/tickets/T%201%2F2/finalize"
    assert operations["get_status_page"].path == "/"
    assert operations["get_v1_receipts_seq_txt"].path == "/v1/receipts/{seq}.txt"
    assert "get_v1_events" not in operations
