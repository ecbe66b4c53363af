"""A whole trading day over HTTP against a real ``tillbox run``, then an offline verification.

Two tills (the admin, a manager, on one; a cashier on the other) open the cash session with a
float, ring up fifty sales of every kind (scanned lines, quantities, weighed goods, open prices,
line and ticket discounts, cash with change, card, mixed tenders, meal vouchers), park tickets
and resume them later, void lines and tickets, take goods back, reprint copies, move cash in
and out, read an X, then count the drawer and close the day. The X and the Z must equal the
sums of the answers the tills received, per VAT rate and per tender; ``tillbox verify`` must
find the journal clean after the daemon stopped.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from daemonkit import ADMIN_PIN, running_daemon

APPROVAL = {"X-Manager-Approval": f"admin:{ADMIN_PIN}"}
PRODUCTS = [
    ("BAG", "Baguette", 550, 120, "3760000000017"),
    ("CAFE", "Café moulu", 550, 389, "3760000000024"),
    ("VIN", "Vin rouge", 2000, 795, "3760000000031"),
    ("SAVON", "Savon", 2000, 350, "3760000000048"),
    ("SANDW", "Sandwich", 1000, 490, "3760000000055"),
]
WEIGHED = ("POMME", "Pommes au kg", 550, 299)
SALES = 50


class Ledger:
    """What the tills were told: the expected Z, summed independently of the box."""

    def __init__(self) -> None:
        self.rates: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.tenders: dict[str, int] = defaultdict(int)
        self.sales_total = self.returns_total = 0
        self.sales: list[dict[str, Any]] = []
        self.cash_moves = 0

    def add(self, answer: dict[str, Any], payments: list[dict[str, Any]], change: int) -> None:
        for item in answer["breakdown"]:
            acc = self.rates[item["rate"]]
            acc[0] += item["excl"]
            acc[1] += item["vat"]
            acc[2] += item["incl"]
        for payment in payments:
            self.tenders[payment["tender"]] += payment["amount"]
        self.tenders["cash"] -= change

    def sale(self, answer: dict[str, Any]) -> None:
        self.add(answer, answer["payments"], answer["change"])
        self.sales_total += answer["total"]
        self.sales.append(answer)

    def refund(self, answer: dict[str, Any]) -> None:
        refunds = [{"tender": r["tender"], "amount": -abs(r["amount"])} for r in answer["refunds"]]
        self.add(answer, refunds, 0)
        self.returns_total += answer["total"]

    def breakdown(self) -> dict[int, list[int]]:
        return {rate: acc for rate, acc in self.rates.items() if acc != [0, 0, 0]}


def ok(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, f"{answer.request.url}: {answer.text}"
    body: dict[str, Any] = answer.json()
    return body


def set_up(admin: httpx.Client) -> None:
    ok(admin.post("/v1/users", json={"id": "camille", "name": "Camille", "role": "cashier",
                                     "pin": "1111"}), 201)
    for sku, label, rate, price, barcode in PRODUCTS:
        ok(admin.post("/v1/catalog/products", json={
            "sku": sku, "label": label, "vat_rate": rate, "price": price,
            "barcodes": [barcode]}), 201)
    sku, label, rate, price = WEIGHED
    ok(admin.post("/v1/catalog/products", json={"sku": sku, "label": label, "vat_rate": rate,
                                                "price": price, "sold_by_weight": True}), 201)
    ok(admin.post("/v1/cash-sessions", json={"float": 20000}), 201)


def ring_up(till: httpx.Client, rng: random.Random, n: int) -> dict[str, Any]:
    lines: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 4)):
        barcode = rng.choice(PRODUCTS)[4]
        lines.append({"barcode": barcode, "quantity_milli": 1000 * rng.randint(1, 3)})
    if n % 4 == 0:
        lines.append({"sku": WEIGHED[0], "quantity_milli": rng.randint(300, 2500)})
    if n % 9 == 0:
        lines.append({"label": "Bouquet du jour", "unit_price": 1250, "vat_rate": 1000})
    draft = ok(till.post("/v1/tickets", json={"lines": lines}), 201)
    if n % 5 == 1:
        line = draft["lines"][0]["id"]
        draft = ok(till.patch(f"/v1/tickets/{draft['id']}/lines/{line}",
                              json={"discount": {"kind": "percent", "value": 1000}}))
    if n % 7 == 3 and len(draft["lines"]) > 1:
        line = draft["lines"][-1]["id"]
        draft = ok(till.delete(f"/v1/tickets/{draft['id']}/lines/{line}", headers=APPROVAL))
    if n % 6 == 2:
        draft = ok(till.put(f"/v1/tickets/{draft['id']}/discount",
                            json={"kind": "amount", "value": 50}))
    return draft


def pay_and_finalize(till: httpx.Client, draft: dict[str, Any], n: int) -> dict[str, Any]:
    total, ticket = draft["total"], draft["id"]
    if n % 3 == 0:
        payments = [{"tender": "cash", "amount": -(-total // 500) * 500}]
    elif n % 3 == 1:
        payments = [{"tender": "card", "amount": total}]
    else:
        half = total // 2
        payments = [{"tender": "meal_voucher" if n % 2 else "card", "amount": half},
                    {"tender": "cash", "amount": total - half}]
    for payment in payments:
        if payment["amount"]:
            ok(till.post(f"/v1/tickets/{ticket}/payments", json=payment), 201)
    return ok(till.post(f"/v1/tickets/{ticket}/finalize", json={},
                        headers={"Idempotency-Key": f"finalize-{ticket}"}))


def trade(tills: list[httpx.Client], ledger: Ledger) -> dict[str, int]:
    rng = random.Random(20261122)
    parked: list[str] = []
    counts = {"parked": 0, "voided": 0, "attempt": 0}
    while len(ledger.sales) < SALES:
        n = counts["attempt"] = counts["attempt"] + 1
        till = tills[n % 2]
        draft = ring_up(till, rng, n)
        if n % 10 == 4:
            ok(till.post(f"/v1/tickets/{draft['id']}/park"))
            parked.append(draft["id"])
            counts["parked"] += 1
            continue
        if n % 13 == 6:
            ok(till.post(f"/v1/tickets/{draft['id']}/void", json={"reason": "client parti"},
                         headers=APPROVAL))
            counts["voided"] += 1
            continue
        if parked and n % 10 == 7:
            resumed = ok(tills[0].post(f"/v1/tickets/{parked.pop()}/resume"))
            ledger.sale(pay_and_finalize(tills[0], resumed, n + 1))
        ledger.sale(pay_and_finalize(till, draft, n))
    for ticket in parked:
        ledger.sale(pay_and_finalize(tills[0], ok(tills[0].post(f"/v1/tickets/{ticket}/resume")),
                                     0))
    return counts


def take_back(till: httpx.Client, ledger: Ledger) -> None:
    for sale in ledger.sales[3:40:9]:
        stored = ok(till.get(f"/v1/sales/{sale['seq']}"))
        line = stored["lines"][0]
        body = {"original_seq": sale["seq"], "reason": "défaut",
                "lines": [{"line_no": line["line_no"], "quantity_milli": line["quantity_milli"]}],
                "refunds": [{"tender": "cash", "amount": line["net"]}]}
        ledger.refund(ok(till.post("/v1/returns", json=body, headers=APPROVAL), 201))


def move_cash(admin: httpx.Client) -> int:
    moves = [("cash_in", 5000), ("cash_out", 2000), ("safe_drop", 10000)]
    for kind, amount in moves:
        ok(admin.post("/v1/cash-sessions/current/movements",
                      json={"kind": kind, "amount": amount, "reason": "journée"}), 201)
    return 5000 - 2000 - 10000


def sell_after_the_close(till: httpx.Client) -> httpx.Response:
    draft = ok(till.post("/v1/tickets", json={"lines": [{"sku": "BAG"}]}), 201)
    ok(till.post(f"/v1/tickets/{draft['id']}/payments",
                 json={"tender": "card", "amount": draft["total"]}), 201)
    return till.post(f"/v1/tickets/{draft['id']}/finalize", json={})


def assert_totals(report: dict[str, Any], ledger: Ledger) -> None:
    assert {item["rate"]: [item["excl"], item["vat"], item["incl"]]
            for item in report["breakdown"]} == ledger.breakdown()
    assert {t["tender"]: t["amount"] for t in report["tenders"] if t["amount"]} == \
        {tender: amount for tender, amount in ledger.tenders.items() if amount}
    assert report["sales_total"] == ledger.sales_total
    assert report["returns_total"] == ledger.returns_total
    assert report["sales_count"] == len(ledger.sales) >= SALES


def test_a_trading_day_closes_on_the_sum_of_its_tickets(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ledger = Ledger()
    with running_daemon(data_dir) as daemon:
        admin = daemon.signed_in(name="caisse 1")
        set_up(admin)
        cashier = daemon.signed_in("camille", "1111", name="caisse 2")
        try:
            counts = trade([admin, cashier], ledger)
            take_back(cashier, ledger)
            copies = [ok(cashier.post(f"/v1/receipts/{sale['seq']}/copy",
                                      json={"reason": "client"}))
                      for sale in ledger.sales[:2]]
            cash_moves = move_cash(admin)
            x = ok(admin.get("/v1/reports/x"))
            counted = {tender: amount for tender, amount in ledger.tenders.items()
                       if tender != "cash"}
            counted["cash"] = 20000 + ledger.tenders["cash"] + cash_moves
            closed = ok(admin.post("/v1/cash-sessions/current/close",
                                   json={"counted": counted}))
            refused = sell_after_the_close(admin)
        finally:
            admin.close()
            cashier.close()
    verify = subprocess.run([sys.executable, "-m", "fiscal", "verify", "--data-dir",
                             str(data_dir)], capture_output=True, text=True, timeout=120)

    assert counts["parked"] >= 3
    assert counts["voided"] >= 2
    assert [copy["copy_number"] for copy in copies] == [1, 1]
    assert "DUPLICATA" in copies[0]["receipt"]["text"]
    assert all(sale["receipt"]["signature_extract"] == sale["signature_extract"]
               for sale in ledger.sales)
    assert all(sale["drawer_opened"] == any(p["tender"] == "cash" for p in sale["payments"])
               for sale in ledger.sales)
    assert_totals(x, ledger)
    assert x["expected_cash"] == counted["cash"]
    assert_totals(closed["z"], ledger)
    assert all(count["counted"] == count["expected"] for count in closed["counts"]), \
        closed["counts"]
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] in ("period_closed", "no_cash_session")
    assert verify.returncode == 0, verify.stdout + verify.stderr
