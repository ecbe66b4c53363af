"""Pairing, cashier sign-in, roles, the till lock, manager approval, the alarm acknowledgement."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from boxkit import ADMIN_PIN, add_user, client_for, frontend, pair, running_box

from fiscal.testing import FakeClock


async def event_codes(box: object) -> list[int]:
    journal = box.services.journal  # type: ignore[attr-defined]
    return [entry.record["code"] async for entry in journal.entries()
            if entry.record.get("type") == "event"]


async def test_pairing_needs_the_code_on_the_status_page(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, client_for(box) as client:
        code = box.services.access.pairing_code
        page = (await client.get("/")).text
        wrong = await client.post("/v1/pairing", json={"code": "000000" if code != "000000"
                                                       else "111111", "name": "tablette"})
        right = await client.post("/v1/pairing", json={"code": code, "name": "tablette"})
        again = await client.post("/v1/pairing", json={"code": code, "name": "tablette 2"})
    assert f'id="pairing-code">{code}<' in page
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "pairing_code_wrong"
    assert right.status_code == 200
    assert len(right.json()["token"]) >= 40
    assert again.status_code == 403, "a code pairs one frontend only"
    assert box.services.access.pairing_code != code


async def test_api_refuses_requests_without_a_paired_token(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box:
        async with client_for(box) as anonymous:
            refused = await anonymous.get("/v1/session")
        async with client_for(box, "not-a-token") as forged:
            forged_answer = await forged.get("/v1/devices")
        async with client_for(box) as anonymous:
            health = await anonymous.get("/health")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "unauthorized"
    assert forged_answer.status_code == 401
    assert health.status_code == 200


async def test_sign_in_is_journaled_and_a_wrong_pin_is_refused(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box, user=None) as client:
        before = await client.get("/v1/session")
        wrong = await client.post("/v1/session", json={"user_id": "admin", "pin": "999999"})
        right = await client.post("/v1/session", json={"user_id": "admin", "pin": ADMIN_PIN})
        out = await client.delete("/v1/session")
        codes = await event_codes(box)
    assert before.json()["user"] is None
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "pin_wrong"
    assert right.json()["user"] == {"id": "admin", "name": "Administrateur", "role": "admin",
                                    "active": True}
    assert out.json()["user"] is None
    assert codes[-3:] == [1011, 1010, 40]


async def test_repeated_wrong_pins_lock_the_user_for_a_while(tmp_path: Path) -> None:
    clock = FakeClock(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC))
    async with running_box(tmp_path / "data", clock) as box, \
            frontend(box, user=None) as client:
        for _ in range(5):
            await client.post("/v1/session", json={"user_id": "admin", "pin": "000000"})
        locked = await client.post("/v1/session", json={"user_id": "admin", "pin": ADMIN_PIN})
        clock.advance(seconds=61)
        later = await client.post("/v1/session", json={"user_id": "admin", "pin": ADMIN_PIN})
    assert locked.status_code == 423
    assert locked.json()["code"] == "pin_locked"
    assert later.status_code == 200


async def test_wrong_pins_tried_at_once_on_several_tills_all_count(tmp_path: Path) -> None:
    """PIN checks run in worker threads, side by side: none of five may be lost."""
    clock = FakeClock(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC))
    async with running_box(tmp_path / "data", clock) as box, \
            frontend(box, user=None) as client:
        wrong = {"user_id": "admin", "pin": "000000"}
        answers = await asyncio.gather(*(client.post("/v1/session", json=wrong)
                                          for _ in range(5)))
        locked = await client.post("/v1/session", json={"user_id": "admin", "pin": ADMIN_PIN})
    assert [a.json()["code"] for a in answers].count("pin_wrong") >= 4
    assert locked.status_code == 423


async def test_roles_limit_what_a_cashier_may_do(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box:
        async with frontend(box) as admin:
            await add_user(admin, "marie", "cashier", "1111")
            await add_user(admin, "paul", "manager", "2222")
        async with frontend(box, user="marie", pin="1111", name="caisse 2") as cashier:
            users = await cashier.get("/v1/users")
            create = await cashier.post("/v1/users", json={"id": "x", "name": "X",
                                                           "role": "admin", "pin": "1234"})
            own_pin = await cashier.put("/v1/users/marie/pin", json={"pin": "3333"})
            other_pin = await cashier.put("/v1/users/paul/pin", json={"pin": "3333"})
        changed = await box.services.access.check_pin("marie", "3333")
    assert users.status_code == 403
    assert users.json()["code"] == "role_required"
    assert create.status_code == 403
    assert own_pin.status_code == 200
    assert other_pin.status_code == 403
    assert changed.id == "marie"


async def test_locked_till_refuses_until_unlocked(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box:
        async with frontend(box) as admin:
            await add_user(admin, "marie", "cashier", "1111")
            await add_user(admin, "lea", "cashier", "4444")
        async with frontend(box, user="marie", pin="1111") as till:
            locked = await till.post("/v1/session/lock")
            refused = await till.post("/v1/session/lock")
            by_other = await till.post("/v1/session/unlock",
                                       json={"user_id": "lea", "pin": "4444"})
            by_manager = await till.post("/v1/session/unlock",
                                         json={"user_id": "admin", "pin": ADMIN_PIN})
            after = await till.post("/v1/session/lock")
    assert locked.json()["locked"] is True
    assert refused.status_code == 423
    assert refused.json()["code"] == "till_locked"
    assert by_other.status_code == 403
    assert by_manager.json() ["locked"] is False
    assert by_manager.json()["user"]["id"] == "marie"
    assert after.status_code == 200


async def test_manager_approval_by_header_or_role(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box:
        async with frontend(box) as admin:
            await add_user(admin, "marie", "cashier", "1111")
        access = box.services.access
        principal = await access.principal((await access.frontends())[0])
        by_role = await access.approve(principal, "ticket_void", None)
        marie = await access.sign_in((await access.frontends())[0], "marie", "1111")
        by_header = await access.approve(marie, "ticket_void", f"admin:{ADMIN_PIN}")
    assert by_role.approver.id == "admin"
    assert by_header.details() == {"approved_by": "admin", "requested_by": "marie",
                                   "action": "ticket_void"}


async def test_alarm_blocks_until_an_admin_acknowledges(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box) as admin:
        box.health.raise_alarm("head_mismatch", "the head of chain sale differs", "sale",
                               blocking=True)
        blocked = box.health.fiscal_writes_allowed
        ack = await admin.post("/v1/alarms/ack")
        codes = await event_codes(box)
    assert blocked is False
    assert ack.json() == {"acknowledged": ["head_mismatch"]}
    assert box.health.fiscal_writes_allowed
    assert codes[-1] == 1121


async def test_revoked_frontend_loses_access(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box:
        token = await pair(box, "vieille tablette")
        async with frontend(box) as admin:
            listed = (await admin.get("/v1/frontends")).json()
            old = next(f["id"] for f in listed if f["name"] == "vieille tablette")
            revoked = await admin.delete(f"/v1/frontends/{old}")
        async with client_for(box, token) as client:
            after = await client.get("/v1/session")
    assert revoked.status_code == 200
    assert after.status_code == 401


async def test_status_page_shows_the_initial_admin_pin_until_changed(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box) as admin:
        before = (await admin.get("/")).text
        await admin.put("/v1/users/admin/pin", json={"pin": "98765432"})
        after = (await admin.get("/")).text
    assert f'<code id="initial-pin">{ADMIN_PIN}</code>' in before
    assert "Terminaux appairés" in before
    assert "initial-pin" not in after
    assert ADMIN_PIN not in after


async def test_an_operational_alarm_does_not_stop_sales(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box:
        box.health.raise_alarm("replication_refused", "the cloud broker refused the box")
        allowed = box.health.fiscal_writes_allowed
        status = box.health.status
    assert allowed, "only integrity alarms stop fiscal writes"
    assert status == "alarm"
