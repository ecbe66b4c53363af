"""The catalog as CSV for spreadsheets: export, and an all-or-nothing import (upsert by sku).

One row per product, each followed by its variants; the header names the columns::

    sku;parent_sku;label;attributes;vat_rate;price;sold_by_weight;category;barcodes;active
    TS-01;;T-shirt;;20;15,00;non;Textile > Hauts;;oui
    TS-01-M;TS-01;;taille=M|couleur=bleu;;;;;3760000000016;oui

* the export is UTF-8 with a BOM (Excel), ``;``-separated, prices and VAT rates with a decimal
  comma (``12,50``; ``5,5`` for 5.5 %), booleans ``oui``/``non``, barcodes ``|``-separated,
  the category as the path of names from the top (``Textile > Hauts``); a cell that a
  spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``…) is prefixed with ``'``.
* the import takes ``;`` or ``,`` separators, with or without BOM, UTF-8 (or Windows-1252, what
  Excel writes as "CSV (séparateur : point-virgule)"), prices ``12,50``, ``12.50``, ``12``,
  ``1 234,50 €`` (read as text to integer cents, never through a float). A row whose sku exists
  updates it, others create products (``parent_sku`` empty) or variants. A column left out of
  the file leaves that field as it is on update (and takes its default on creation); an empty
  cell means "none" (no category, no barcode; a variant's price: its product's). A variant row
  leaves ``label``, ``vat_rate``, ``sold_by_weight`` and ``category`` empty: they are its
  product's. Missing categories are created. Scheduled prices are not part of the CSV.
* any bad row refuses the whole file: ``ImportRejected`` lists ``(line, column, message)``.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agent.errors import ProblemError
from agent.services.catalog_codes import (
    check_attributes,
    check_barcodes,
    check_category_name,
    check_label,
    check_sku,
)
from agent.services.catalog_store import (
    ITEM_COLUMNS,
    KEEP,
    Item,
    Keep,
    ProductChanges,
    Store,
    VariantChanges,
    check_price,
    item_of,
)
from fiscal.money import format_amount

COLUMNS = ("sku", "parent_sku", "label", "attributes", "vat_rate", "price", "sold_by_weight",
           "category", "barcodes", "active")
PRODUCT_ONLY = ("label", "vat_rate", "sold_by_weight", "category")
NEEDED_TO_CREATE = ("label", "vat_rate", "price")
MAX_ERRORS = 100
BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TRUE = frozenset({"oui", "o", "vrai", "yes", "y", "true", "1", "x"})
FALSE = frozenset({"non", "n", "faux", "no", "false", "0"})
_PRICE = re.compile(r"(\d{1,12})(?:[.,](\d{1,2}))?")
_RATE = re.compile(r"(\d{1,3})(?:[.,](\d{1,2}))?")
_SPACES = str.maketrans("", "", " \u00a0\u202f")
_T = TypeVar("_T")


@dataclass(frozen=True)
class CsvError:
    """What is wrong in the file: line (1 = header), column, message."""

    line: int
    column: str | None
    message: str


class ImportRejected(Exception):
    """The file is refused; nothing was changed."""

    def __init__(self, errors: list[CsvError]) -> None:
        super().__init__(f"{len(errors)} error(s) in the CSV")
        self.errors = sorted(errors, key=lambda error: error.line)


class _CellError(ValueError):
    """A cell that cannot be read."""


@dataclass(frozen=True)
class ImportResult:
    """What an import did (or would do, in a dry run)."""

    created: int
    updated: int
    dry_run: bool = False


@dataclass(frozen=True)
class ImportRow:
    """A read row: ``KEEP`` where the file has no such column."""

    line: int
    sku: str
    parent_sku: str | None
    label: str | Keep = KEEP
    attributes: dict[str, str] | Keep = KEEP
    vat_rate: int | Keep = KEEP
    price: int | Keep | None = KEEP
    sold_by_weight: bool | Keep = KEEP
    category: tuple[str, ...] | Keep | None = KEEP
    barcodes: tuple[str, ...] | Keep = KEEP
    active: bool | Keep = KEEP


@dataclass(frozen=True)
class Snapshot:
    """The catalog an import is checked against: every item and who owns each barcode."""

    items: dict[str, Item]
    barcodes: dict[str, str]


@dataclass(frozen=True)
class Plan:
    """A checked import: rows to apply (products first) and its counts."""

    rows: tuple[ImportRow, ...]
    result: ImportResult


@dataclass
class _Reading:
    errors: list[CsvError] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    """Skus of rows left out for bad cells (their variants are not told "no product")."""

    def add(self, line: int, column: str | None, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(CsvError(line, column, message))


# -- values ---------------------------------------------------------------------------------


def format_rate(rate: int) -> str:
    """Basis points as a French percentage without sign: ``550`` → ``5,5``."""
    units, minor = divmod(rate, 100)
    return str(units) if minor == 0 else f"{units},{minor:02d}".rstrip("0")


def parse_rate(text: str) -> int:
    """``20``, ``5,5``, ``5.50 %`` → basis points."""
    match = _RATE.fullmatch(text.translate(_SPACES).removesuffix("%"))
    if match is None:
        raise _CellError(f"not a VAT rate: {text!r} (write 20 or 5,5)")
    return int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))


def parse_price(text: str) -> int:
    """``12,50``, ``12.5``, ``1 234,50 €`` → cents (text arithmetic, no float)."""
    match = _PRICE.fullmatch(text.translate(_SPACES).removesuffix("€"))
    if match is None:
        raise _CellError(f"not a price: {text!r} (write 12,50)")
    cents = int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
    check_price(cents)
    return cents


def parse_bool(text: str) -> bool:
    """``oui``/``non`` (and yes/no, true/false, 1/0)."""
    word = text.casefold()
    if word in TRUE or word in FALSE:
        return word in TRUE
    raise _CellError(f"not oui/non: {text!r}")


def parse_attributes(text: str) -> dict[str, str]:
    """``taille=M|couleur=bleu`` → ``{"taille": "M", "couleur": "bleu"}``."""
    attributes: dict[str, str] = {}
    for pair in text.split("|"):
        key, equals, value = pair.partition("=")
        if not equals or key.strip() in attributes:
            raise _CellError(f"attributes are name=value pairs separated by '|': {text!r}")
        attributes[key.strip()] = value.strip()
    return check_attributes(attributes)


def parse_category(text: str) -> tuple[str, ...]:
    """``Textile > Hauts`` → the names from the top category down."""
    names = tuple(name.strip() for name in text.split(">"))
    for name in names:
        check_category_name(name, "category")
    return names


def parse_barcodes(text: str) -> tuple[str, ...]:
    """``3017620422003|ABC-12`` → the barcodes, checked."""
    return check_barcodes(tuple(code.strip() for code in text.split("|") if code.strip()))


def _unescape(cell: str) -> str:
    cell = cell.strip()
    return cell[1:] if cell[:1] == "'" and cell[1:2] in FORMULA_START and cell[1:2] else cell


def _escape(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_START) else cell


# -- reading the file -------------------------------------------------------------------------


def decode(body: bytes) -> str:
    """The text of the file: UTF-8 (BOM or not), else Windows-1252."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = body.decode("cp1252")
        except UnicodeDecodeError as error:
            raise ImportRejected([CsvError(1, None, "the file is neither UTF-8 nor "
                                                    "Windows-1252 text")]) from error
    if "\x00" in text:
        raise ImportRejected([CsvError(1, None, "not a text file (UTF-16 is not read: save the "
                                                "file as CSV UTF-8)")])
    return text.removeprefix(BOM)


def records(text: str) -> list[tuple[int, list[str]]]:
    """The file's records with the line each starts on; blank records dropped.

    The separator is the header's (``,`` or ``;``), or the one an Excel ``sep=`` line names.
    """
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = "," if first_line.count(",") > first_line.count(";") else ";"
    if first_line.strip().casefold() in ("sep=,", "sep=;"):
        delimiter = first_line.strip()[-1]
        text = text.replace(first_line, "", 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    found: list[tuple[int, list[str]]] = []
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return found
        except csv.Error as error:
            raise ImportRejected([CsvError(start, None, f"unreadable CSV: {error}")]) from error
        if any(cell.strip() for cell in record):
            found.append((start, record))


def header(line: int, record: list[str]) -> list[str]:
    """The column names of the header record (unknown, repeated or no ``sku``: refused)."""
    names = [cell.strip().casefold().removeprefix(BOM) for cell in record]
    errors = [CsvError(line, name, f"unknown column {name!r} (known: {', '.join(COLUMNS)})")
              for name in names if name not in COLUMNS]
    errors += [CsvError(line, name, "column given twice")
               for index, name in enumerate(names) if name in names[:index]]
    if "sku" not in names:
        errors.append(CsvError(line, "sku", "the header has no sku column"))
    if errors:
        raise ImportRejected(errors)
    return names


def read_rows(body: bytes, catalog: Snapshot, reading: _Reading) -> list[ImportRow]:
    """The rows of the file read cell by cell; the bad ones are left out, told to ``reading``.

    Without a ``parent_sku`` column, a known sku keeps its kind (product or variant of …).
    """
    found = records(decode(body))
    if not found:
        raise ImportRejected([CsvError(1, None, "the file is empty")])
    (header_line, header_record), *data = found
    names = header(header_line, header_record)
    rows = []
    for line, record in data:
        if len(record) > len(names) and any(cell.strip() for cell in record[len(names):]):
            reading.add(line, None, f"{len(record)} cells, the header has {len(names)}")
            continue
        cells = {name: _unescape(cell) for name, cell in zip(names, record, strict=False)}
        cells = {name: cells.get(name, "") for name in names}
        if "parent_sku" not in cells:
            known = catalog.items.get(cells["sku"])
            cells["parent_sku"] = known.parent_sku or "" if known else ""
        row = _read_row(line, cells, reading)
        if row is not None:
            rows.append(row)
    return rows


_Parser = Callable[[str], Any]
_REQUIRED = object()
_PRODUCT_CELLS: Mapping[str, tuple[_Parser, Any]] = {
    "label": (check_label, _REQUIRED), "vat_rate": (parse_rate, _REQUIRED),
    "price": (parse_price, _REQUIRED), "sold_by_weight": (parse_bool, False),
    "category": (parse_category, None), "barcodes": (parse_barcodes, ()),
    "active": (parse_bool, True), "attributes": (lambda _: None, None),
}
_VARIANT_CELLS: Mapping[str, tuple[_Parser, Any]] = {
    "attributes": (parse_attributes, _REQUIRED), "price": (parse_price, None),
    "barcodes": (parse_barcodes, ()), "active": (parse_bool, True),
}


def _read_row(line: int, cells: dict[str, str], reading: _Reading) -> ImportRow | None:
    count = len(reading.errors)
    sku = _cell(line, "sku", cells["sku"], check_sku, None, reading)
    parent = _cell(line, "parent_sku", cells.get("parent_sku", ""), check_sku, None, reading)
    table = _PRODUCT_CELLS if parent is None else _VARIANT_CELLS
    values: dict[str, Any] = {}
    for name, text in cells.items():
        if name in ("sku", "parent_sku"):
            continue
        if name not in table:
            if text:
                reading.add(line, name, "a variant takes this from its product: leave it empty")
            continue
        if name == "attributes" and parent is None and text:
            reading.add(line, name, "only a variant (with a parent_sku) has attributes")
        parser, empty = table[name]
        values[name] = _cell(line, name, text, parser, empty, reading)
    if sku is None:
        reading.add(line, "sku", "a row needs a sku")
        return None
    if len(reading.errors) > count:
        reading.failed.add(sku)
        return None
    return ImportRow(line, sku, parent, **values)


def _cell(line: int, column: str, text: str, parser: _Parser, empty: Any,
          reading: _Reading) -> Any:
    if not text and empty is _REQUIRED:
        reading.add(line, column, f"this cannot be empty: write the {column}")
    if not text:
        return None if empty is _REQUIRED else empty
    try:
        return parser(text)
    except _CellError as error:
        reading.add(line, column, str(error))
    except ProblemError as error:
        reading.add(line, column, error.detail or error.code)
    return None


# -- checking against the catalog -----------------------------------------------------------


async def snapshot(store: Store) -> Snapshot:
    """Every item and barcode owner of the catalog now."""
    items = {row[0]: item_of(row)
             for row in await store.all(f"SELECT {ITEM_COLUMNS} FROM catalog_items")}
    owners = {row[0]: row[1] for row in await store.all(
        "SELECT barcode, sku FROM catalog_barcodes")}
    return Snapshot(items, owners)


def plan_import(body: bytes, catalog: Snapshot, vat_rates: tuple[int, ...]) -> Plan:
    """Read and check a whole file against ``catalog`` (``ImportRejected`` lists all errors)."""
    reading = _Reading()
    rows = read_rows(body, catalog, reading)
    in_file: dict[str, ImportRow] = {}
    for row in rows:
        if row.sku in in_file:
            reading.add(row.line, "sku", f"sku {row.sku!r} is also on line "
                                         f"{in_file[row.sku].line}")
            continue
        in_file[row.sku] = row
        _check_row(row, catalog, vat_rates, reading)
    _check_parents(rows, catalog, in_file, reading)
    _check_barcodes(rows, catalog, in_file, reading)
    _check_twins(rows, catalog, reading)
    if reading.errors:
        raise ImportRejected(reading.errors)
    ordered = sorted(in_file.values(), key=lambda row: (row.parent_sku is not None, row.line))
    created = sum(row.sku not in catalog.items for row in ordered)
    return Plan(tuple(ordered), ImportResult(created, len(ordered) - created))


def _check_row(row: ImportRow, catalog: Snapshot, vat_rates: tuple[int, ...],
               reading: _Reading) -> None:
    existing = catalog.items.get(row.sku)
    if isinstance(row.vat_rate, int) and row.vat_rate not in vat_rates:
        reading.add(row.line, "vat_rate", f"{format_rate(row.vat_rate)} % is not a VAT rate of "
                                          "this store")
    if existing is None:
        needed = NEEDED_TO_CREATE if row.parent_sku is None else ("attributes",)
        for column in needed:
            if getattr(row, column) in (KEEP, None):
                reading.add(row.line, column, f"a new {_kind(row)} needs a {column}")
    elif existing.parent_sku != row.parent_sku:
        was = ("a product" if existing.parent_sku is None
               else f"a variant of {existing.parent_sku!r}")
        reading.add(row.line, "parent_sku", f"sku {row.sku!r} is {was}; it cannot change")


def _kind(row: ImportRow) -> str:
    return "product" if row.parent_sku is None else "variant"


def _check_parents(rows: list[ImportRow], catalog: Snapshot, in_file: dict[str, ImportRow],
                   reading: _Reading) -> None:
    for row in rows:
        if row.parent_sku is None or row.parent_sku in reading.failed:
            continue
        parent = in_file.get(row.parent_sku)
        known = catalog.items.get(row.parent_sku)
        is_product = (parent.parent_sku is None if parent is not None
                      else known is not None and known.parent_sku is None)
        if not is_product:
            reading.add(row.line, "parent_sku", f"no product {row.parent_sku!r}")


def _check_barcodes(rows: list[ImportRow], catalog: Snapshot, in_file: dict[str, ImportRow],
                    reading: _Reading) -> None:
    claimed: dict[str, ImportRow] = {}
    for row in rows:
        for code in row.barcodes if isinstance(row.barcodes, tuple) else ():
            if code in claimed and claimed[code].sku != row.sku:
                reading.add(row.line, "barcodes", f"barcode {code} is also on line "
                                                  f"{claimed[code].line}")
                continue
            claimed[code] = row
            owner = catalog.barcodes.get(code)
            releasing = owner in in_file and isinstance(in_file[owner].barcodes, tuple)
            if owner is not None and owner != row.sku and not releasing:
                reading.add(row.line, "barcodes", f"barcode {code} belongs to {owner!r}")


def _check_twins(rows: list[ImportRow], catalog: Snapshot, reading: _Reading) -> None:
    final: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    for item in catalog.items.values():
        if item.parent_sku is not None and item.attributes is not None:
            final[item.parent_sku][item.sku] = item.attributes
    for row in rows:
        if row.parent_sku is not None and isinstance(row.attributes, dict):
            final[row.parent_sku][row.sku] = row.attributes
    for row in rows:
        if row.parent_sku is None or not isinstance(row.attributes, dict):
            continue
        twins = [sku for sku, attributes in final[row.parent_sku].items()
                 if attributes == row.attributes and sku != row.sku]
        if twins:
            reading.add(row.line, "attributes", f"variant {twins[0]!r} has the same attributes")


# -- applying -----------------------------------------------------------------------------------


async def apply_import(plan: Plan, store: Store) -> None:
    """Write a checked plan inside the caller's transaction (``ImportRejected`` on a clash)."""
    for row in plan.rows:
        if isinstance(row.barcodes, tuple):
            await store.run("DELETE FROM catalog_barcodes WHERE sku = ?", (row.sku,))
    for row in plan.rows:
        try:
            await _apply_row(row, store)
        except ProblemError as error:
            column = (error.field or "").split(".")[0]
            raise ImportRejected([CsvError(row.line, column if column in COLUMNS else None,
                                           error.detail or error.code)]) from error


async def _apply_row(row: ImportRow, store: Store) -> None:
    exists = await store.item(row.sku) is not None
    if row.parent_sku is not None:
        await _apply_variant(row, store, exists)
        return
    category = (await store.category_path(row.category) if isinstance(row.category, tuple)
                else row.category)
    if exists:
        changes = ProductChanges(label=row.label, vat_rate=row.vat_rate,
                                 price=_product_price(row.price),
                                 sold_by_weight=row.sold_by_weight, category=category,
                                 active=row.active, barcodes=row.barcodes)
        await store.update_product(row.sku, changes)
        return
    item = Item(row.sku, None, _given(row.label, ""), None, _given(row.vat_rate, 0),
                _given(row.price, 0), _given(row.sold_by_weight, False),
                _given(category, None), _given(row.active, True))
    await store.create_product(item, _given(row.barcodes, ()))


async def _apply_variant(row: ImportRow, store: Store, exists: bool) -> None:
    assert row.parent_sku is not None
    if exists:
        await store.update_variant(row.parent_sku, row.sku, VariantChanges(
            attributes=row.attributes, price=row.price, active=row.active,
            barcodes=row.barcodes))
        return
    item = Item(row.sku, row.parent_sku, None, _given(row.attributes, {}), None,
                _given(row.price, None), False, None, _given(row.active, True))
    await store.create_variant(item, _given(row.barcodes, ()))


def _product_price(price: int | Keep | None) -> int | Keep:
    return KEEP if price is None else price


def _given(value: _T | Keep, default: _T) -> _T:
    return default if isinstance(value, Keep) else value


# -- writing ----------------------------------------------------------------------------------


async def export_catalog(store: Store) -> bytes:
    """The whole catalog as CSV: products by sku, each followed by its variants."""
    items = [item_of(row) for row in await store.all(
        f"SELECT {ITEM_COLUMNS} FROM catalog_items ORDER BY sku")]
    barcodes: dict[str, list[str]] = defaultdict(list)
    for code, sku in await store.all("SELECT barcode, sku FROM catalog_barcodes ORDER BY rowid"):
        barcodes[sku].append(code)
    paths = _category_paths(await store.all("SELECT id, name, parent FROM catalog_categories"))
    variants: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        if item.parent_sku is not None:
            variants[item.parent_sku].append(item)
    output = io.StringIO()
    writer = csv.writer(output, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for item in (item for item in items if item.parent_sku is None):
        for each in (item, *variants[item.sku]):
            writer.writerow([_escape(cell) for cell in _cells(each, barcodes, paths)])
    return (BOM + output.getvalue()).encode("utf-8")


def _cells(item: Item, barcodes: dict[str, list[str]], paths: dict[str, str]) -> list[str]:
    codes = "|".join(barcodes[item.sku])
    active = "oui" if item.active else "non"
    if item.parent_sku is not None:
        attributes = "|".join(f"{k}={v}" for k, v in (item.attributes or {}).items())
        price = "" if item.price is None else format_amount(item.price)
        return [item.sku, item.parent_sku, "", attributes, "", price, "", "", codes, active]
    assert item.vat_rate is not None
    assert item.price is not None
    return [item.sku, "", item.label or "", "", format_rate(item.vat_rate),
            format_amount(item.price), "oui" if item.sold_by_weight else "non",
            paths.get(item.category or "", ""), codes, active]


def _category_paths(rows: list[tuple[Any, ...]]) -> dict[str, str]:
    known = {row[0]: row for row in rows}
    paths: dict[str, str] = {}
    for ident in known:
        names: list[str] = []
        cursor, seen = ident, 0
        while cursor in known and seen <= len(known):
            names.insert(0, known[cursor][1])
            cursor, seen = known[cursor][2], seen + 1
        paths[ident] = " > ".join(names)
    return paths


