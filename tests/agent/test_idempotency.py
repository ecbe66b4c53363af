"""Idempotency-Key: a retried mutation gets the first answer and is not done twice."""

from __future__ import annotations

from pathlib import Path

from boxkit import frontend, running_box

USER = {"id": "marie", "name": "Marie", "role": "cashier", "pin": "1111"}


async def test_retry_replays_the_first_answer_without_redoing_it(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        headers = {"Idempotency-Key": "create-marie-1"}
        first = await client.post("/v1/users", json=USER, headers=headers)
        retry = await client.post("/v1/users", json=USER, headers=headers)
        fresh = await client.post("/v1/users", json=USER,
                                  headers={"Idempotency-Key": "create-marie-2"})
        users = [user["id"] for user in (await client.get("/v1/users")).json()]
    assert first.status_code == 201
    assert (retry.status_code, retry.content) == (201, first.content)
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert fresh.status_code == 409, "a new key runs the operation again"
    assert users.count("marie") == 1


async def test_same_key_with_another_body_is_refused(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        headers = {"Idempotency-Key": "k1"}
        await client.post("/v1/users", json=USER, headers=headers)
        other = await client.post("/v1/users", json={**USER, "id": "paul"}, headers=headers)
        users = [user["id"] for user in (await client.get("/v1/users")).json()]
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    assert other.json()["field"] == "Idempotency-Key"
    assert "paul" not in users


async def test_answers_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    headers = {"Idempotency-Key": "create-marie"}
    async with running_box(data) as box, frontend(box) as client:
        first = await client.post("/v1/users", json=USER, headers=headers)
        token = client.headers["Authorization"]
    async with running_box(data) as box, frontend(box, user=None) as other:
        other.headers["Authorization"] = token
        retry = await other.post("/v1/users", json=USER, headers=headers)
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.content == first.content


async def test_keys_are_scoped_per_frontend(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box:
        async with frontend(box, name="caisse 1") as one:
            first = await one.post("/v1/users", json=USER, headers={"Idempotency-Key": "same"})
        async with frontend(box, name="caisse 2") as two:
            second = await two.post("/v1/users", json=USER, headers={"Idempotency-Key": "same"})
    assert first.status_code == 201
    assert second.status_code == 409, "another frontend's key is not a replay"


async def test_bad_keys_and_failed_answers(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box) as client:
        too_long = await client.post("/v1/users", json=USER,
                                     headers={"Idempotency-Key": "x" * 201})
        refused = await client.post("/v1/users", json={**USER, "pin": "12"},
                                    headers={"Idempotency-Key": "bad-pin"})
        replayed = await client.post("/v1/users", json={**USER, "pin": "12"},
                                     headers={"Idempotency-Key": "bad-pin"})
    assert too_long.status_code == 400
    assert too_long.json()["code"] == "invalid_idempotency_key"
    assert refused.status_code == 422
    assert replayed.headers.get("idempotent-replayed") == "true", "a 4xx answer is kept too"
