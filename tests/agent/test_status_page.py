"""The status page and the small JSON API, on the app built by the composition root."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.composition import DEVICE_KINDS, Box, compose
from agent.http import create_app
from agent.i18n import LANGUAGES, TEXTS, pick_language
from agent.observability import BOX_START, INTEGRITY_FAILURE, INTEGRITY_PASSED
from agent.settings import Settings
from fiscal.chain import CHAINS
from fiscal.journal import DB_FILE, Journal
from fiscal.requests import (
    CashMovementRequest,
    EventRequest,
    LineRequest,
    PaymentRequest,
    SaleRequest,
)
from fiscal.testing import FakeClock

START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def SteppingClock() -> FakeClock:  # noqa: N802
    """A clock that moves one second per reading from a fixed start."""
    return FakeClock(START + dt.timedelta(seconds=1))


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Box]:
    async with compose(settings_for(tmp_path / "data"), clock=SteppingClock()) as composed:
        yield composed


def client_for(box: Box) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=box.app)
    return httpx.AsyncClient(transport=transport, base_url="http://box")


async def get(box: Box, path: str, **headers: str) -> httpx.Response:
    async with client_for(box) as client:
        return await client.get(path, headers=headers)


def chain_cells(page: str) -> dict[str, int]:
    """The last chain sequence number shown for each chain."""
    return {chain: int(seq) for chain, seq
            in re.findall(r'data-chain="(\w+)">(\d+)</td>', page)}


async def test_page_is_french_by_default(box: Box) -> None:
    """Without Accept-Language the page is in French and shows identity, devices and pairing."""
    response = await get(box, "/")
    page = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == "fr"
    assert '<html lang="fr">' in page
    assert "État de la caisse" in page
    assert "Boutique de démonstration" in page
    assert page.count("simulé — pas encore connecté") == len(DEVICE_KINDS)
    assert "Imprimante" in page
    assert "Réplication vers le cloud désactivée" in page
    assert f'id="pairing-code">{box.services.access.pairing_code}<' in page
    assert re.fullmatch(r"\d{6}", box.services.access.pairing_code)
    assert f'id="box-key">{box.journal.key.key_id}<' in page
    assert '<meta http-equiv="refresh" content="10">' in page


@pytest.mark.parametrize(("header", "language", "texts"), [
    ("en-GB,en;q=0.9,fr;q=0.5", "en",
     ("Box status", "Printer", "simulated — not yet connected", "Cloud replication off")),
    ("ru-RU,ru;q=0.9,en;q=0.5", "ru",
     ("Состояние кассы", "Принтер", "симулятор — ещё не подключён",
      "Репликация в облако отключена")),
    ("de-DE,de;q=0.9", "fr", ("État de la caisse", "Imprimante")),
])
async def test_accept_language_picks_the_language(box: Box, header: str, language: str,
                                                  texts: tuple[str, ...]) -> None:
    """English and Russian follow Accept-Language; an unsupported language falls back to French."""
    response = await get(box, "/", **{"Accept-Language": header})
    assert response.headers["content-language"] == language
    assert f'<html lang="{language}">' in response.text
    for text in texts:
        assert text in response.text


async def test_lang_parameter_overrides_the_header(box: Box) -> None:
    """``?lang=en`` wins over a Russian Accept-Language."""
    response = await get(box, "/?lang=en", **{"Accept-Language": "ru"})
    assert response.headers["content-language"] == "en"
    assert "Printer" in response.text


async def test_page_shows_the_sequence_of_every_chain(box: Box) -> None:
    """Each chain's head (last chain sequence number) and the global sequence are on the page."""
    journal = box.journal
    await journal.sell(SaleRequest(
        operator="alice", lines=(LineRequest(label="Baguette", unit_price=120, vat_rate=550),),
        payments=(PaymentRequest(tender="cash", amount=120),)))
    await journal.cash_movement(CashMovementRequest(kind="float", operator="alice",
                                                    amount=10_000))
    for _ in range(2):
        await journal.record_event(EventRequest(code=1010, operator="alice"))
    page = (await get(box, "/")).text
    expected = {chain: head.chain_seq for chain, head in journal.heads().items()}
    assert expected == {"event": 3, "ticket": 1, "cash": 1}
    assert chain_cells(page) == expected
    assert f'id="global-seq">{journal.state.seq}<' in page
    assert journal.state.seq == 5


async def test_health_reports_seq_heads_and_version(box: Box) -> None:
    """``/health`` is ``ok`` with the journal's global sequence and each chain's head."""
    response = await get(box, "/health")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["version"] == box.services.version
    assert body["journal"] == {"seq": 1, "heads": {"event": {"chain_seq": 1, "seq": 1}}}
    assert body["alarms"] == []


async def test_system_gives_identity_and_version(box: Box) -> None:
    """``/v1/system`` names the store, register, box key and software version."""
    body = (await get(box, "/v1/system")).json()
    assert body["store"]["name"] == "Boutique de démonstration"
    assert (body["store_id"], body["register_id"]) == ("demo-store", "R1")
    assert body["box_key_id"] == box.journal.key.key_id
    assert body["version"] == box.services.version
    assert body["epoch"] == await box.journal.epoch()


@pytest.mark.parametrize(("method", "path", "status", "code", "field"), [
    ("GET", "/nowhere", 404, "not_found", None),
    ("POST", "/health", 405, "method_not_allowed", None),
    ("GET", "/?lang=" + "x" * 20, 422, "invalid_input", "lang"),
])
async def test_errors_are_problem_json(box: Box, method: str, path: str, status: int,
                                       code: str, field: str | None) -> None:
    """Failures answer ``application/problem+json`` with a stable code (and the field)."""
    async with client_for(box) as client:
        response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"], body.get("field")) == (status, code, field)


async def test_openapi_describes_the_routes(box: Box) -> None:
    """``/openapi.json`` lists the routes with their response schemas."""
    schema = (await get(box, "/openapi.json")).json()
    assert {"/", "/health", "/v1/system", "/v1/journal/verify"} <= set(schema["paths"])
    assert "HealthOut" in schema["components"]["schemas"]
    assert "Problem" in schema["components"]["schemas"]


def fake_verifier(findings: list[dict[str, Any]]) -> Any:
    """A verifier that reports ``findings`` (a fake of ``fiscal.verify``)."""

    async def verify(_: Path) -> tuple[bool, list[dict[str, Any]]]:
        return not findings, findings
    return verify


async def event_codes(journal: Journal) -> list[int]:
    return [entry.record["code"] async for entry in journal.entries() if entry.chain == "event"]


async def test_verify_on_demand_records_the_outcome(tmp_path: Path) -> None:
    """A clean verification journals event 1120; findings raise an alarm and journal event 90."""
    finding = {"code": "bad_signature", "chain": "ticket", "chain_seq": 4, "message": "x"}
    for findings, code, status in (([], INTEGRITY_PASSED, "ok"),
                                   ([finding], INTEGRITY_FAILURE, "alarm")):
        async with compose(settings_for(tmp_path / "data"), clock=SteppingClock(),
                           verifier=fake_verifier(findings)) as box:
            async with client_for(box) as client:
                answer = (await client.post("/v1/journal/verify")).json()
                health = (await client.get("/health")).json()
            assert (answer["clean"], answer["findings"]) == (not findings, findings)
            assert health["status"] == status
            assert (await event_codes(box.journal))[-1] == code
            assert box.health.last_verification is not None


async def test_the_real_verifier_finds_a_fresh_journal_clean(box: Box) -> None:
    """With ``fiscal.verify`` installed, ``POST /v1/journal/verify`` finds a new journal clean."""
    module = pytest.importorskip("fiscal.verify")
    if not hasattr(module, "verify_data_dir"):
        pytest.skip("fiscal.verify.verify_data_dir is not there yet")
    async with client_for(box) as client:
        response = await client.post("/v1/journal/verify")
    assert response.status_code == 200, response.text
    assert response.json()["clean"] is True


async def test_verify_without_a_verifier_is_501(box: Box) -> None:
    """A build without ``fiscal.verify`` answers 501 ``verifier_unavailable``."""
    app = create_app(replace(box.services, verifier=None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://box") as client:
        response = await client.post("/v1/journal/verify")
    assert response.status_code == 501
    assert response.json()["code"] == "verifier_unavailable"


async def tampered(data_dir: Path, update: str) -> None:
    """A journal of two events whose ``heads`` table was then edited by ``update``."""
    journal = await Journal.open(data_dir, clock=SteppingClock())
    await journal.record_event(EventRequest(code=BOX_START, operator="system"))
    await journal.close()
    with sqlite3.connect(data_dir / DB_FILE) as db:
        db.execute("DROP TRIGGER heads_forward")
        db.execute(update)
    db.close()


@pytest.mark.parametrize(("update", "code"), [
    ("UPDATE heads SET sig = 'tampered'", "head_mismatch"),
    ("UPDATE heads SET head_sig = (SELECT head_sig FROM entries WHERE seq = 1)",
     "bad_head_signature"),
])
async def test_a_tampered_head_raises_an_alarm(tmp_path: Path, update: str, code: str) -> None:
    """A head that does not match its last entry, or is not signed, alarms and journals 90."""
    await tampered(tmp_path / "data", update)
    async with compose(settings_for(tmp_path / "data"), clock=SteppingClock()) as box:
        health = (await get(box, "/health")).json()
        page = (await get(box, "/", **{"Accept-Language": "en"})).text
        assert health["status"] == "alarm"
        assert [(a["code"], a["chain"]) for a in health["alarms"]] == [(code, "event")]
        assert 'id="status">Alarm<' in page
        assert code in page
        assert (await event_codes(box.journal))[-1] == INTEGRITY_FAILURE


async def test_a_rolled_back_head_is_an_alarm_not_a_crash(tmp_path: Path) -> None:
    """A head moved back (a truncated chain) alarms; the refused event write alarms too."""
    await tampered(tmp_path / "data", "UPDATE heads SET chain_seq = 1, seq = 1")
    async with compose(settings_for(tmp_path / "data"), clock=SteppingClock()) as box:
        health = (await get(box, "/health")).json()
        assert [a["code"] for a in health["alarms"]] == ["head_mismatch", "journal_write_failed"]
        assert await event_codes(box.journal) == [260, BOX_START]
        assert not box.health.fiscal_writes_allowed


def test_every_text_exists_in_every_language() -> None:
    """Each text the page can show has a non-empty French, English and Russian version."""
    needed = ({f"chain_{chain}" for chain in CHAINS} | {f"device_{k}" for k in DEVICE_KINDS}
              | {f"state_{s}" for s in ("connecting", "ready", "busy", "error", "unavailable")}
              | {"driver_simulated", "driver_none", "reason_not_connected",
                 "reason_not_configured"})
    assert needed <= set(TEXTS)
    assert all(len(texts) == len(LANGUAGES) and all(texts) for texts in TEXTS.values())


@pytest.mark.parametrize(("header", "override", "expected"), [
    (None, None, "fr"),
    ("en-US,en;q=0.9", None, "en"),
    ("de,ru;q=0.5,en;q=0.4", None, "ru"),
    ("en;q=0,ru", None, "ru"),
    ("ru;q=oops,en", None, "en"),
    ("ru", "EN", "en"),
    ("ru", "xx", "ru"),
])
def test_language_choice(header: str | None, override: str | None, expected: str) -> None:
    """``?lang=`` wins when supported; otherwise the highest-weighted supported language."""
    assert pick_language(header, override) == expected


async def test_health_says_starting_until_the_daemon_is_ready(box: Box) -> None:
    """While the daemon starts, /health answers 503 ``starting``; once serving, 200 ``ok``."""
    box.health.serving = False
    starting = await get(box, "/health")
    box.health.serving = True
    serving = await get(box, "/health")
    assert (starting.status_code, starting.json()["status"]) == (503, "starting")
    assert (serving.status_code, serving.json()["status"]) == (200, "ok")
