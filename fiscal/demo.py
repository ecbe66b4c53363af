"""Demo data: a realistic signed history of a French bakery-grocery, written through the journal.

``generate`` drives the public ``Journal`` API with a fake clock that walks through business
hours (Europe/Paris), so the result is exactly what a real register would have written: sales
at 5.5 %, 10 %, 20 % and 2.1 % VAT, weighed goods, discounts, change, meal vouchers and cheques,
partial returns, copies, invoices and credit notes, voids and other technical events, training
tickets, a float every morning and a safe drop or cash out every evening, a day closure every
evening, a month closure at each month end and a year closure at the fiscal year end.

Everything random comes from ``random.Random(seed)`` and amounts are drawn as integers. Each day
has exactly ``sales_per_day`` sales; the other operations follow fixed rates per thousand sales
(with the remainder carried over to the next day, and at least one of each on the first day),
so the number of entries is predictable. The key and the journal epoch are random, as on a box.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from fiscal.journal import DB_FILE, Journal
from fiscal.money import line_gross, round_div
from fiscal.pricing import price_ticket
from fiscal.records import Party
from fiscal.requests import (
    CashMovementRequest,
    Discount,
    EventRequest,
    InvoiceRequest,
    LineRequest,
    PaymentRequest,
    ReturnLineRequest,
    ReturnRequest,
    SaleRequest,
)
from fiscal.settings import JournalSettings

SETTINGS = JournalSettings(store_id="demo-store", register_id="R1", timezone="Europe/Paris")
OPERATORS: tuple[str, ...] = ("alice", "bob", "chloé")
OPENING, CLOSING = dt.time(8, 30), dt.time(19, 30)
_TICK = dt.timedelta(milliseconds=1)


class Product(NamedTuple):
    """An article of the shop: price in cents (per kilo when weighed), VAT in basis points."""

    label: str
    sku: str
    unit_price: int
    vat_rate: int
    weight: int
    weighed: bool = False


CATALOG: tuple[Product, ...] = (
    Product("Baguette tradition", "BAG-TRAD", 130, 550, 40),
    Product("Pain de campagne", "PAIN-CAMP", 420, 550, 8),
    Product("Croissant", "CROIS", 120, 550, 18),
    Product("Pain au chocolat", "PAC", 140, 550, 15),
    Product("Tarte aux pommes", "TARTE-POM", 1850, 550, 2),
    Product("Lait demi-écrémé 1 L", "LAIT-1L", 115, 550, 6),
    Product("Œufs plein air x6", "OEUFS-6", 290, 550, 5),
    Product("Confiture d'abricot", "CONF-ABR", 450, 550, 2),
    Product("Chocolat noir 70 %", "CHOC-70", 310, 550, 3),
    Product("Eau minérale 1,5 L", "EAU-15", 65, 550, 5),
    Product("Comté AOP 18 mois", "COMTE-18", 2490, 550, 4, weighed=True),
    Product("Tomme de Savoie", "TOMME", 1890, 550, 2, weighed=True),
    Product("Pommes Golden", "POM-GOLD", 349, 550, 5, weighed=True),
    Product("Tomates grappe", "TOM-GRAP", 429, 550, 4, weighed=True),
    Product("Bananes", "BANANE", 229, 550, 4, weighed=True),
    Product("Olives de Nyons", "OLIVES", 1590, 550, 1, weighed=True),
    Product("Sandwich jambon-beurre", "SAND-JB", 550, 1000, 8),
    Product("Quiche lorraine (part)", "QUICHE", 450, 1000, 4),
    Product("Formule déjeuner", "FORMULE", 990, 1000, 5),
    Product("Café à emporter", "CAFE-EMP", 150, 1000, 7),
    Product("Salade composée", "SALADE", 690, 1000, 3),
    Product("Bordeaux rouge 75 cl", "BORDEAUX", 1290, 2000, 2),
    Product("Côtes-du-Rhône 75 cl", "CDR", 890, 2000, 2),
    Product("Champagne brut 75 cl", "CHAMP", 3290, 2000, 1),
    Product("Bière blonde 33 cl", "BIERE-33", 250, 2000, 3),
    Product("Sac cabas", "SAC", 150, 2000, 2),
    Product("Le Monde", "PRESSE-LM", 350, 210, 3),
    Product("Le Parisien", "PRESSE-LP", 150, 210, 3),
    Product("L'Équipe", "PRESSE-EQ", 170, 210, 2),
)
_CATALOG_WEIGHTS = tuple(p.weight for p in CATALOG)
_LINE_COUNTS, _LINE_COUNT_WEIGHTS = (1, 2, 3, 4, 5, 6, 7, 8), (30, 25, 17, 10, 7, 5, 3, 3)

CUSTOMERS: tuple[Party, ...] = (
    Party(name="Dupont, Jean", address="12 rue des Lilas, 69003 Lyon"),
    Party(name="Mairie de Saint-Rémy", company="Commune de Saint-Rémy",
          address="1 place de la Mairie, 13210 Saint-Rémy", siret="21130100200017"),
    Party(name="Les Jardins de Marie", company="SARL Les Jardins de Marie",
          vat_number="FR40123456789", siret="12345678900021"),
    Party(name="Traiteur Martin & Fils | Réceptions", company="SAS Martin",
          vat_number="FR08987654321"),
)

EXTRAS_PER_MILLE: tuple[tuple[str, int], ...] = (
    ("return", 50), ("copy", 30), ("invoice", 10), ("line_void", 40), ("ticket_void", 10),
    ("training", 5), ("drawer", 5), ("failed_sign_in", 3),
)
"""Operations other than sales, per thousand sales of a day."""

RETURN_REASONS = ("Produit abîmé", "Erreur de caisse", "Client mécontent", "Date dépassée")
RETURN_WINDOW_DAYS = 3


class DemoClock:
    """A fake clock that never goes back: the generator moves it, each reading adds 1 ms."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += _TICK
        return self.now

    def move_to(self, moment: dt.datetime) -> None:
        """Jump forward to ``moment`` (never backwards)."""
        self.now = max(self.now, moment)


@dataclass(slots=True)
class SaleMemo:
    """What the shop remembers of a recent sale, to return, copy or invoice it."""

    seq: int
    day: dt.date
    lines: tuple[tuple[int, int, int], ...]
    """(line number, quantity in thousandths, net amount) of each line."""
    by_card: bool
    invoiced: bool = False
    returned: bool = False


def local_moment(day: dt.date, time: dt.time, seconds: int = 0) -> dt.datetime:
    """Return an aware instant: ``time`` on ``day`` in the store's zone, plus ``seconds``."""
    start = dt.datetime.combine(day, time, ZoneInfo(SETTINGS.timezone))
    return start + dt.timedelta(seconds=seconds)


def cash_of(record: Mapping[str, Any]) -> int:
    """Return the net cash a ticket record put into (or took out of) the drawer."""
    paid = sum(int(p["amount"]) for p in record["payments"] if p["tender"] == "cash")
    return paid - int(record.get("change", 0))


class Shop:
    """The simulated shop: draws each day's operations and sends them to the journal."""

    def __init__(self, journal: Journal, clock: DemoClock, rng: Random, sales_per_day: int) -> None:
        self.journal, self.clock, self.rng = journal, clock, rng
        self.sales_per_day = sales_per_day
        self.stats: Counter[str] = Counter()
        self.carry = {kind: 999 for kind, _ in EXTRAS_PER_MILLE}
        self.recent: list[SaleMemo] = []
        self.documents: list[int] = []
        self.drawer = 0
        self.today = dt.date.min
        self.actions: dict[str, Callable[[str], Awaitable[None]]] = {
            "sale": self.sale, "return": self.refund, "copy": self.copy,
            "invoice": self.invoice, "line_void": self.line_void,
            "ticket_void": self.ticket_void, "training": self.training,
            "drawer": self.drawer_opened, "failed_sign_in": self.failed_sign_in,
        }

    # -- a day ------------------------------------------------------------------------------

    async def run_day(self, day: dt.date) -> None:
        """Open the shop, run the day's operations through business hours, close the day."""
        self.today = day
        self.recent = [m for m in self.recent if (day - m.day).days <= RETURN_WINDOW_DAYS]
        self.documents = self.documents[-20:]
        morning, afternoon = self.rng.sample(OPERATORS, 2)
        await self.open_shop(day, morning)
        operator = morning
        ops = self.plan()
        for op, moment in zip(ops, self.moments(day, len(ops)), strict=True):
            self.clock.move_to(moment)
            if op == "shift":
                operator = afternoon
                await self.event(1010, operator, {"operator": operator})
            else:
                await self.actions[op](operator)
        await self.close_shop(day, operator)

    def plan(self) -> list[str]:
        """Return the day's operations in order: the sales, with the extras spread among them."""
        ops = ["sale"] * self.sales_per_day
        if not ops:
            return ops
        for kind, per_mille in EXTRAS_PER_MILLE:
            due = self.carry[kind] + self.sales_per_day * per_mille
            count, self.carry[kind] = divmod(due, 1000)
            for _ in range(count):
                ops.insert(self.rng.randint(1, len(ops)), kind)
        ops.insert(len(ops) // 2 + 1, "shift")
        return ops

    def moments(self, day: dt.date, count: int) -> list[dt.datetime]:
        """Return ``count`` sorted instants within the day's business hours."""
        start = local_moment(day, OPENING)
        span_ms = int((local_moment(day, CLOSING) - start).total_seconds()) * 1000
        offsets = sorted(self.rng.randrange(span_ms) for _ in range(count))
        return [start + dt.timedelta(milliseconds=offset) for offset in offsets]

    async def open_shop(self, day: dt.date, operator: str) -> None:
        """Box start, the operator's sign-in and the morning float."""
        self.clock.move_to(local_moment(day, dt.time(7, 55), self.rng.randrange(120)))
        await self.event(1000, "system", {"reason": "power on"})
        self.clock.move_to(local_moment(day, dt.time(8, 5), self.rng.randrange(300)))
        await self.event(1010, operator, {"operator": operator})
        amount = self.rng.choice((15000, 15000, 20000))
        await self.cash("float", operator, amount, "Fond de caisse")

    async def close_shop(self, day: dt.date, operator: str) -> None:
        """Evening safe drop or bank deposit, the closures, and the box stop."""
        self.clock.move_to(local_moment(day, dt.time(19, 35), self.rng.randrange(300)))
        if self.drawer > 0:
            kind = "cash_out" if self.rng.randrange(5) == 0 else "safe_drop"
            reason = "Remise en banque" if kind == "cash_out" else "Dépôt au coffre"
            await self.cash(kind, operator, self.drawer, reason)
        self.clock.move_to(local_moment(day, dt.time(19, 45), self.rng.randrange(300)))
        await self.close_periods(day, operator)
        self.clock.move_to(local_moment(day, dt.time(19, 55), self.rng.randrange(240)))
        await self.event(1001, "system", {"reason": "shutdown"})

    async def close_periods(self, day: dt.date, operator: str) -> None:
        """Close the day; at a month end the month; at the fiscal year end the year."""
        periods = self.journal.periods
        following = day + dt.timedelta(days=1)
        if following.month == day.month:
            entries = await periods.close_day(operator, day)
        elif following.month == SETTINGS.closure.fiscal_year_start_month:
            entries = await periods.close_year(operator, day)
        else:
            entries = await periods.close_month(operator, day)
        self.stats.update(e.record["type"] for e in entries if e.chain != "event")

    # -- operations -------------------------------------------------------------------------

    async def sale(self, operator: str) -> None:
        """Finalize a sale of one to eight lines."""
        entry = await self.journal.sell(self.sale_request(operator))
        record = entry.record
        lines = tuple((int(x["line_no"]), int(x["quantity_milli"]), int(x["net"]))
                      for x in record["lines"])
        by_card = any(p["tender"] == "card" for p in record["payments"])
        self.recent.append(SaleMemo(entry.seq, self.today, lines, by_card))
        self.documents.append(entry.seq)
        self.drawer += cash_of(record)
        self.stats["sale"] += 1

    def sale_request(self, operator: str, training: bool = False) -> SaleRequest:
        """Draw a basket, its discounts and how it is paid."""
        count = self.rng.choices(_LINE_COUNTS, _LINE_COUNT_WEIGHTS)[0]
        products = self.rng.choices(CATALOG, _CATALOG_WEIGHTS, k=count)
        lines = tuple(self.line(product) for product in products)
        discount = self.ticket_discount(lines)
        total = price_ticket(lines, discount, SETTINGS).total
        return SaleRequest(operator=operator, lines=lines, discount=discount,
                           payments=self.payments(total), training=training)

    def line(self, product: Product) -> LineRequest:
        """Draw a quantity (grams when weighed) and, rarely, a line discount."""
        if product.weighed:
            quantity = self.rng.randint(120, 1500)
        else:
            quantity = 1000 * self.rng.choice((1, 1, 1, 1, 1, 2, 2, 3, 4, 6))
        discount = None
        if self.rng.randrange(100) < 3:
            discount = Discount(kind="percent", value=self.rng.choice((1000, 2000, 3000)),
                                reason="Date courte")
        return LineRequest(label=product.label, sku=product.sku, quantity_milli=quantity,
                           unit_price=product.unit_price, vat_rate=product.vat_rate,
                           discount=discount)

    def ticket_discount(self, lines: Sequence[LineRequest]) -> Discount | None:
        """Rarely, a loyalty percentage or a fixed euro off a large basket."""
        roll = self.rng.randrange(100)
        if roll < 2:
            return Discount(kind="percent", value=500, reason="Carte fidélité")
        gross = sum(line_gross(x.unit_price, x.quantity_milli) for x in lines)
        if roll < 3 and gross >= 1000:  # line discounts take at most 30 %: 700 ≥ 100 is left
            return Discount(kind="amount", value=100, reason="Geste commercial")
        return None

    def payments(self, total: int) -> tuple[PaymentRequest, ...]:
        """Draw how ``total`` is paid: cash with change, card, meal vouchers, cheque, or mixed."""
        roll = self.rng.randrange(100)
        if roll < 45:
            return (self.cash_tendered(total),)
        if roll < 80:
            return (PaymentRequest(tender="card", amount=total),)
        if roll < 88:
            return self.meal_vouchers(total)
        if roll < 92:
            return (PaymentRequest(tender="cheque", amount=total),)
        part = self.rng.choice((500, 1000, 2000))
        if part >= total:
            return (PaymentRequest(tender="card", amount=total),)
        return (PaymentRequest(tender="cash", amount=part),
                PaymentRequest(tender="card", amount=total - part))

    def cash_tendered(self, total: int) -> PaymentRequest:
        """Cash handed over: the exact amount or the next round sum (the rest is change)."""
        step = self.rng.choice((1, 1, 10, 100, 500, 1000, 2000, 5000))
        return PaymentRequest(tender="cash", amount=-(-total // step) * step)

    def meal_vouchers(self, total: int) -> tuple[PaymentRequest, ...]:
        """Up to two meal vouchers (they give no change), the rest by card or cash."""
        face = self.rng.choice((800, 900, 1000, 1100))
        count = min(2, total // face)
        if count == 0:
            return (PaymentRequest(tender="card", amount=total),)
        vouchers = PaymentRequest(tender="meal_voucher", amount=count * face)
        rest = total - count * face
        if rest == 0:
            return (vouchers,)
        if self.rng.randrange(2):
            return vouchers, PaymentRequest(tender="card", amount=rest)
        return vouchers, self.cash_tendered(rest)

    async def refund(self, operator: str) -> None:
        """Take back part of a recent sale; a credit note follows when the sale was invoiced."""
        memo = self.returnable()
        if memo is None:
            return
        memo.returned = True
        lines = self.rng.sample(memo.lines, 2 if len(memo.lines) >= 3 and
                                self.rng.randrange(4) == 0 else 1)
        asked = [(no, self.returned_quantity(quantity), quantity, net)
                 for no, quantity, net in lines]
        amount = sum(round_div(net * q, quantity) for _, q, quantity, net in asked)
        tender = "card" if memo.by_card else "cash"
        request = ReturnRequest(
            operator=operator, original_seq=memo.seq,
            lines=tuple(ReturnLineRequest(original_line_no=no, quantity_milli=q)
                        for no, q, _, _ in asked),
            refunds=(PaymentRequest(tender=tender, amount=amount),) if amount else (),
            reason=self.rng.choice(RETURN_REASONS))
        entry = await self.journal.refund(request)
        self.drawer += cash_of(entry.record)
        self.documents.append(entry.seq)
        self.stats["return"] += 1
        if memo.invoiced:
            await self.issue_invoice(operator, entry.seq)

    def returnable(self) -> SaleMemo | None:
        """Pick a recent sale not returned yet (a few tries)."""
        for _ in range(5):
            memo = self.rng.choice(self.recent) if self.recent else None
            if memo is not None and not memo.returned:
                return memo
        return None

    def returned_quantity(self, sold: int) -> int:
        """The whole line, one piece of several, or part of a weighed line."""
        if sold % 1000:
            return self.rng.choice((sold, max(1, sold // 2)))
        return 1000 * self.rng.randint(1, max(1, sold // 1000 - 1))

    async def copy(self, operator: str) -> None:
        """Reprint a recent ticket or invoice (DUPLICATA), now and then a second time."""
        if not self.documents:
            return
        seq = self.rng.choice(self.documents[-5:])
        for _ in range(2 if self.rng.randrange(5) == 0 else 1):
            await self.journal.copy(seq, operator, reason="Demande du client")
            self.stats["copy"] += 1

    async def invoice(self, operator: str) -> None:
        """Issue an invoice for one of today's sales."""
        todays = [m for m in self.recent[-10:] if m.day == self.today and not m.invoiced]
        if not todays:
            return
        memo = self.rng.choice(todays)
        memo.invoiced = True
        await self.issue_invoice(operator, memo.seq)

    async def issue_invoice(self, operator: str, source_seq: int) -> None:
        """Invoice a sale, or issue the credit note of a return."""
        request = InvoiceRequest(operator=operator, source_seq=source_seq,
                                 customer=self.rng.choice(CUSTOMERS))
        entry = await self.journal.invoice(request)
        self.documents.append(entry.seq)
        self.stats[entry.record["type"]] += 1

    async def training(self, operator: str) -> None:
        """A training session: mode on, a training ticket, mode off."""
        await self.event(1110, operator, {"operator": operator})
        await self.journal.sell(self.sale_request(operator, training=True))
        self.stats["training"] += 1
        await self.event(1111, operator, {"operator": operator})

    async def line_void(self, operator: str) -> None:
        """A line scanned by mistake and voided before the ticket is finalized."""
        product = self.rng.choices(CATALOG, _CATALOG_WEIGHTS)[0]
        await self.event(1030, operator, {"label": product.label, "sku": product.sku,
                                          "amount": product.unit_price})
        self.stats["void"] += 1

    async def ticket_void(self, operator: str) -> None:
        """A whole draft ticket abandoned before payment."""
        request = self.sale_request(operator)
        total = sum(p.amount for p in request.payments)
        await self.event(1031, operator, {"line_count": len(request.lines), "total": total})
        self.stats["void"] += 1

    async def drawer_opened(self, operator: str) -> None:
        """The drawer opened without a sale (change for a customer)."""
        await self.event(1040, operator, {"reason": "Monnaie"})

    async def failed_sign_in(self, operator: str) -> None:
        """A mistyped PIN."""
        await self.event(1011, operator, {"operator": operator})

    async def event(self, code: int, operator: str, details: dict[str, object]) -> None:
        """Journal a technical event."""
        await self.journal.record_event(EventRequest(code=code, operator=operator,
                                                     details=details))
        self.stats["event"] += 1

    async def cash(self, kind: str, operator: str, amount: int, reason: str) -> None:
        """Journal a float, safe drop or cash out, and follow the drawer."""
        request = CashMovementRequest.model_validate(
            {"kind": kind, "operator": operator, "amount": amount, "reason": reason})
        await self.journal.cash_movement(request)
        self.drawer += amount if kind in ("float", "cash_in") else -amount
        self.stats["cash_movement"] += 1


def first_day(journal: Journal, existed: bool, start: dt.date | None, days: int) -> dt.date:
    """Return the first day to write: after an existing journal's last day, else ``start``."""
    last = journal.state.last_at_utc
    if existed and last is not None:
        following = journal.business_date(dt.datetime.fromisoformat(last)) + dt.timedelta(days=1)
        return max(start or following, following)
    return start or default_start(days)


def last_written(journal: Journal) -> dt.datetime:
    """The instant of the journal's last entry."""
    last = journal.state.last_at_utc
    return dt.datetime.fromisoformat(last) if last else dt.datetime.min.replace(tzinfo=dt.UTC)


def default_start(days: int) -> dt.date:
    """``days`` days before today in the store's time zone."""
    return dt.datetime.now(ZoneInfo(SETTINGS.timezone)).date() - dt.timedelta(days=days)


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def summary(shop: Shop, data_dir: Path, first: dt.date, days: int, written: int) -> str:
    """One paragraph telling what was written."""
    s = shop.stats
    last = first + dt.timedelta(days=days - 1)
    closures = (f"{s['day_closure']} day, {s['month_closure']} month and {s['year_closure']} "
                f"year closures")
    kinds = ", ".join([
        _n(s["sale"], "sale"), _n(s["return"], "return"), _n(s["copy"], "copy", "copies"),
        _n(s["invoice"], "invoice"), _n(s["credit_note"], "credit note"),
        _n(s["training"], "training ticket"), _n(s["void"], "void"),
        _n(s["cash_movement"], "cash movement"), _n(s["event"], "technical event"),
    ])
    return (f"Wrote {written} signed entries to {data_dir} ({SETTINGS.store_id}, register "
            f"{SETTINGS.register_id}) over {_n(days, 'business day')} from {first} to {last}: "
            f"{kinds}, {closures}; the journal now holds {shop.journal.state.seq} entries.")


async def generate(data_dir: Path, *, days: int, sales_per_day: int, seed: int = 1,
                   start: dt.date | None = None) -> str:
    """Write ``days`` business days of history into the journal at ``data_dir``.

    Creates the journal if needed; otherwise continues after the day of its last entry.
    ``start`` defaults to ``days`` days before today. Returns a one-paragraph summary.
    """
    if days < 1 or sales_per_day < 0:
        raise ValueError("days must be at least 1 and sales_per_day not negative")
    existed = (data_dir / DB_FILE).exists()
    clock = DemoClock(local_moment(start or default_start(days), dt.time(7, 50)))
    async with await Journal.open(data_dir, SETTINGS, clock=clock) as journal:
        first = first_day(journal, existed, start, days)
        clock.now = max(local_moment(first, dt.time(7, 50)), last_written(journal))
        before = journal.state.seq
        shop = Shop(journal, clock, Random(seed), sales_per_day)
        for offset in range(days):
            await shop.run_day(first + dt.timedelta(days=offset))
        return summary(shop, data_dir, first, days, journal.state.seq - before)
