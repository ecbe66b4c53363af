"""The catalog over HTTP: products, variants, barcodes, categories, scheduled prices, CSV.

Rules in ``agent.services.catalog``; the user reference is docs/api/catalog.md. Reading needs a
signed-in cashier, changing needs a manager. Nothing is ever deleted but categories and price
changes that have not started: ``DELETE`` on a product or variant deactivates it.

Routes (under ``/v1/catalog``)::

    GET    /products?q=&category=&active=&limit=&offset=     search (label, sku, barcode)
    POST   /products                                         create
    GET    /products/{sku}              PATCH  /products/{sku}     DELETE (deactivate)
    GET    /products/{sku}/variants     POST   /products/{sku}/variants
    PATCH  /products/{sku}/variants/{variant_sku}            DELETE (deactivate)
    GET    /products/{sku}/prices       POST   /products/{sku}/prices   (sku: product or variant)
    DELETE /products/{sku}/prices/{price_id}                 cancel a change not yet started
    GET    /barcodes/{code}                                  the Sellable as it sells now
    GET    /categories                  POST   /categories
    PATCH  /categories/{category_id}    DELETE /categories/{category_id}
    GET    /export.csv                  POST   /import?dry_run=   (text/csv, ≤ 5 MB)
"""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field

from agent.errors import ProblemError, not_found
from agent.http.auth import CashierDep, ManagerDep
from agent.http.models import Body, Cents, Label, Rate
from agent.services.catalog import (
    KEEP,
    Catalog,
    Category,
    Keep,
    PriceChange,
    Product,
    ProductChanges,
    Sellable,
    Variant,
    VariantChanges,
)

if TYPE_CHECKING:
    from agent.http.context import AppServices
    from agent.services.catalog_csv import ImportRejected

MAX_CSV_BYTES = 5 * 1024 * 1024
PROBLEM_JSON = "application/problem+json"

SkuPath = Annotated[str, Path(min_length=1, max_length=64)]
CategoryPath = Annotated[str, Path(min_length=1, max_length=64)]
Sku = Annotated[str, Field(min_length=1, max_length=64)]
Barcode = Annotated[str, Field(min_length=1, max_length=64)]
Barcodes = Annotated[list[Barcode], Field(max_length=20)]
Attributes = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=32)],
         Annotated[str, Field(min_length=1, max_length=64)]],
    Field(min_length=1, max_length=8, examples=[{"taille": "M", "couleur": "bleu"}])]
CategoryId = Annotated[str, Field(min_length=1, max_length=64)]
CategoryName = Annotated[str, Field(min_length=1, max_length=64)]
Flag = Annotated[bool, Field(strict=True)]


def _in_range(moment: dt.datetime) -> dt.datetime:
    if not 2000 <= moment.year <= 2999:
        raise ValueError("a date between the years 2000 and 2999")
    return moment


Moment = Annotated[dt.datetime, AfterValidator(_in_range),
                   Field(description="ISO 8601; without an offset: the store's local time")]


# -- bodies -----------------------------------------------------------------------------------


class ProductIn(Body):
    """A new product."""

    sku: Sku
    label: Label
    vat_rate: Rate
    price: Cents = Field(description="Cents in the store's price mode; per kg by weight")
    sold_by_weight: Flag = False
    category: CategoryId | None = None
    active: Flag = True
    barcodes: Barcodes = Field(default_factory=list)


class ProductPatch(Body):
    """Changes to a product: fields left out are kept; ``category: null`` removes it."""

    label: Label | None = None
    vat_rate: Rate | None = None
    price: Cents | None = None
    sold_by_weight: Flag | None = None
    category: CategoryId | None = None
    active: Flag | None = None
    barcodes: Barcodes | None = Field(default=None, description="The whole new set")


class VariantIn(Body):
    """A new variant: its sku, attributes, and optionally its own price and barcodes."""

    sku: Sku
    attributes: Attributes
    price: Cents | None = Field(default=None, description="None: the product's price")
    active: Flag = True
    barcodes: Barcodes = Field(default_factory=list)


class VariantPatch(Body):
    """Changes to a variant: fields left out are kept; ``price: null`` → the product's."""

    attributes: Attributes | None = None
    price: Cents | None = None
    active: Flag | None = None
    barcodes: Barcodes | None = None


class CategoryIn(Body):
    """A new category (its id is made from its name when left out)."""

    name: CategoryName
    id: CategoryId | None = None
    parent: CategoryId | None = None


class CategoryPatch(Body):
    """Changes to a category: ``parent: null`` moves it to the top."""

    name: CategoryName | None = None
    parent: CategoryId | None = None


class PriceIn(Body):
    """A price from ``starts_at``, until ``ends_at`` if given."""

    price: Cents
    starts_at: Moment
    ends_at: Moment | None = None


# -- answers ----------------------------------------------------------------------------------


class VariantOut(BaseModel):
    """A variant and its price now."""

    sku: str
    product_sku: str
    attributes: dict[str, str]
    label: str
    price: int | None
    current_price: int
    active: bool
    barcodes: list[str]


class ProductOut(BaseModel):
    """A product, its price now, and its variants."""

    sku: str
    label: str
    vat_rate: int
    price: int
    current_price: int
    sold_by_weight: bool
    category: str | None
    active: bool
    barcodes: list[str]
    variants: list[VariantOut]


class ProductPageOut(BaseModel):
    """A page of products and how many match."""

    items: list[ProductOut]
    total: int
    limit: int
    offset: int


class SellableOut(BaseModel):
    """A product or variant as it sells now."""

    sku: str
    label: str
    vat_rate: int
    unit_price: int
    sold_by_weight: bool
    barcode: str | None
    category: str | None
    embedded_price: int | None
    embedded_weight_milli: int | None
    parent_sku: str | None


class CategoryOut(BaseModel):
    """A category and the names from the top down to it."""

    id: str
    name: str
    parent: str | None
    path: list[str]


class PriceChangeOut(BaseModel):
    """A scheduled price."""

    id: int
    sku: str
    price: int
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    state: Literal["scheduled", "in_force", "ended"]


class ImportOut(BaseModel):
    """Rows created and updated (or that would be, in a dry run)."""

    created: int
    updated: int
    dry_run: bool


class CsvErrorOut(BaseModel):
    """A bad cell or row: line (1 is the header), column, message."""

    line: int
    column: str | None
    message: str


class ImportProblem(BaseModel):
    """A refused CSV (nothing imported), with every error found."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
    errors: list[CsvErrorOut]


# -- shapes -----------------------------------------------------------------------------------


def variant_out(variant: Variant) -> VariantOut:
    """The JSON shape of a variant."""
    return VariantOut(sku=variant.sku, product_sku=variant.parent_sku,
                      attributes=variant.attributes, label=variant.label, price=variant.price,
                      current_price=variant.current_price, active=variant.active,
                      barcodes=list(variant.barcodes))


def product_out(product: Product) -> ProductOut:
    """The JSON shape of a product."""
    return ProductOut(sku=product.sku, label=product.label, vat_rate=product.vat_rate,
                      price=product.price, current_price=product.current_price,
                      sold_by_weight=product.sold_by_weight, category=product.category,
                      active=product.active, barcodes=list(product.barcodes),
                      variants=[variant_out(variant) for variant in product.variants])


def sellable_out(sellable: Sellable) -> SellableOut:
    """The JSON shape of a sellable."""
    return SellableOut(sku=sellable.sku, label=sellable.label, vat_rate=sellable.vat_rate,
                       unit_price=sellable.unit_price, sold_by_weight=sellable.sold_by_weight,
                       barcode=sellable.barcode, category=sellable.category,
                       embedded_price=sellable.embedded_price,
                       embedded_weight_milli=sellable.embedded_weight_milli,
                       parent_sku=sellable.parent_sku)


def category_out(category: Category) -> CategoryOut:
    """The JSON shape of a category."""
    return CategoryOut(id=category.id, name=category.name, parent=category.parent,
                       path=list(category.path))


def price_out(change: PriceChange, at: dt.datetime, zone: ZoneInfo) -> PriceChangeOut:
    """The JSON shape of a price change, its instants in the store's time zone."""
    return PriceChangeOut(id=change.id, sku=change.sku, price=change.price,
                          starts_at=change.starts_at.astimezone(zone),
                          ends_at=None if change.ends_at is None
                          else change.ends_at.astimezone(zone),
                          state=change.state(at))


def _given(value: Any, fields_set: set[str], name: str) -> Any:
    """A PATCH field: ``KEEP`` when left out (or null, for a field that cannot be null)."""
    return value if name in fields_set and value is not None else KEEP


def product_changes(body: ProductPatch) -> ProductChanges:
    """The service's changes from a PATCH body."""
    sent = body.model_fields_set
    category = body.category if "category" in sent else KEEP
    barcodes = KEEP if body.barcodes is None else tuple(body.barcodes)
    return ProductChanges(label=_given(body.label, sent, "label"),
                          vat_rate=_given(body.vat_rate, sent, "vat_rate"),
                          price=_given(body.price, sent, "price"),
                          sold_by_weight=_given(body.sold_by_weight, sent, "sold_by_weight"),
                          category=category, active=_given(body.active, sent, "active"),
                          barcodes=barcodes)


def variant_changes(body: VariantPatch) -> VariantChanges:
    """The service's changes from a PATCH body."""
    sent = body.model_fields_set
    return VariantChanges(attributes=_given(body.attributes, sent, "attributes"),
                          price=body.price if "price" in sent else KEEP,
                          active=_given(body.active, sent, "active"),
                          barcodes=KEEP if body.barcodes is None else tuple(body.barcodes))


# -- routes -----------------------------------------------------------------------------------


class CsvResponse(Response):
    """A CSV file (Starlette adds ``; charset=utf-8``)."""

    media_type = "text/csv"


CSV_BODY: dict[str, Any] = {"requestBody": {
    "required": True,
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "The catalog as CSV (see docs/api/catalog.md), at most 5 MB",
}}
PROBLEM_RESPONSE: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}


class _Context:
    """What the routes share: the catalog, the clock, the store's time zone."""

    def __init__(self, services: AppServices) -> None:
        self.catalog: Catalog = services.catalog
        self.journal = services.journal
        self.zone = ZoneInfo(services.settings.journal.timezone)

    def now(self) -> dt.datetime:
        """The box's clock."""
        return self.journal.now()

    def local(self, moment: dt.datetime) -> dt.datetime:
        """An instant; one without an offset is the store's wall-clock time."""
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=self.zone)

    async def variant(self, sku: str, variant_sku: str) -> VariantOut:
        """One variant of a product now (404 ``variant_not_found``)."""
        for variant in await self.catalog.variants(sku, self.now()):
            if variant.sku == variant_sku:
                return variant_out(variant)
        raise not_found("variant", variant_sku, "variant_sku")


def install_catalog_api(app: FastAPI, services: AppServices) -> None:
    """Add the catalog routes."""
    router = APIRouter(prefix="/v1/catalog", tags=["catalog"])
    context = _Context(services)
    _product_routes(router, context)
    _scan_routes(router, context)
    _variant_routes(router, context)
    _price_routes(router, context)
    _category_routes(router, context)
    _csv_routes(router, context)
    app.include_router(router)


def _product_routes(router: APIRouter, context: _Context) -> None:
    catalog = context.catalog

    @router.get("/products", summary="Search products (label, sku, barcode; no accents/case)")
    async def search(
            _: CashierDep, q: Annotated[str | None, Query(max_length=100)] = None,
            category: Annotated[str | None, Query(max_length=64)] = None,
            active: bool | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
            offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> ProductPageOut:
        page = await catalog.search(context.now(), q=q, category=category, active=active,
                                    limit=limit, offset=offset)
        return ProductPageOut(items=[product_out(p) for p in page.items], total=page.total,
                              limit=limit, offset=offset)

    @router.post("/products", status_code=201, summary="Create a product")
    async def create(principal: ManagerDep, body: ProductIn) -> ProductOut:
        await catalog.add_product(body.sku, body.label, body.vat_rate, body.price,
                                  barcodes=tuple(body.barcodes), category=body.category,
                                  sold_by_weight=body.sold_by_weight, active=body.active,
                                  operator=principal.operator, create_category=False)
        return product_out(await catalog.product(body.sku, context.now()))

    @router.get("/products/{sku}", summary="A product, its variants and its price now")
    async def read(_: CashierDep, sku: SkuPath) -> ProductOut:
        return product_out(await catalog.product(sku, context.now()))

    @router.patch("/products/{sku}", summary="Change a product")
    async def patch(principal: ManagerDep, sku: SkuPath, body: ProductPatch) -> ProductOut:
        await catalog.update_product(sku, product_changes(body), operator=principal.operator)
        return product_out(await catalog.product(sku, context.now()))

    @router.delete("/products/{sku}", summary="Deactivate a product (it no longer sells)")
    async def deactivate(principal: ManagerDep, sku: SkuPath) -> ProductOut:
        await catalog.update_product(sku, ProductChanges(active=False),
                                     operator=principal.operator)
        return product_out(await catalog.product(sku, context.now()))


def _scan_routes(router: APIRouter, context: _Context) -> None:
    catalog = context.catalog

    @router.get("/barcodes/{code}", summary="What a scanned barcode sells, now")
    async def by_barcode(_: CashierDep,
                         code: Annotated[str, Path(min_length=1, max_length=64)]) -> SellableOut:
        found = await catalog.by_barcode(code, context.now())
        if found is None:
            raise not_found("product", code, "code")
        return sellable_out(found)


def _variant_routes(router: APIRouter, context: _Context) -> None:
    catalog = context.catalog
    variant_path = "/products/{sku}/variants/{variant_sku}"

    @router.get("/products/{sku}/variants", summary="A product's variants")
    async def variants(_: CashierDep, sku: SkuPath) -> list[VariantOut]:
        return [variant_out(v) for v in await catalog.variants(sku, context.now())]

    @router.post("/products/{sku}/variants", status_code=201, summary="Add a variant")
    async def create(principal: ManagerDep, sku: SkuPath, body: VariantIn) -> VariantOut:
        await catalog.add_variant(sku, body.sku, body.attributes, price=body.price,
                                  barcodes=tuple(body.barcodes), active=body.active,
                                  operator=principal.operator)
        return await context.variant(sku, body.sku)

    @router.patch(variant_path, summary="Change a variant")
    async def patch(principal: ManagerDep, sku: SkuPath, variant_sku: SkuPath,
                    body: VariantPatch) -> VariantOut:
        await catalog.update_variant(sku, variant_sku, variant_changes(body),
                                     operator=principal.operator)
        return await context.variant(sku, variant_sku)

    @router.delete(variant_path, summary="Deactivate a variant")
    async def deactivate(principal: ManagerDep, sku: SkuPath,
                         variant_sku: SkuPath) -> VariantOut:
        await catalog.update_variant(sku, variant_sku, VariantChanges(active=False),
                                     operator=principal.operator)
        return await context.variant(sku, variant_sku)


def _price_routes(router: APIRouter, context: _Context) -> None:
    catalog = context.catalog
    prices_path = "/products/{sku}/prices"

    @router.get(prices_path, summary="The scheduled prices of a product or variant")
    async def prices(_: CashierDep, sku: SkuPath) -> list[PriceChangeOut]:
        at = context.now()
        return [price_out(change, at, context.zone)
                for change in await catalog.price_changes(sku)]

    @router.post(prices_path, status_code=201, summary="Schedule a price (season, promotion)")
    async def schedule(principal: ManagerDep, sku: SkuPath, body: PriceIn) -> PriceChangeOut:
        ends_at = None if body.ends_at is None else context.local(body.ends_at)
        change = await catalog.schedule_price(sku, body.price, context.local(body.starts_at),
                                              ends_at, operator=principal.operator)
        return price_out(change, context.now(), context.zone)

    @router.delete(prices_path + "/{price_id}", summary="Cancel a change not yet started")
    async def cancel(principal: ManagerDep, sku: SkuPath,
                     price_id: Annotated[int, Path(ge=1, le=2**62)]) -> PriceChangeOut:
        at = context.now()
        change = await catalog.cancel_price_change(sku, price_id, at,
                                                   operator=principal.operator)
        return price_out(change, at, context.zone)


def _category_routes(router: APIRouter, context: _Context) -> None:
    catalog = context.catalog

    @router.get("/categories", summary="Every category, with its path")
    async def categories(_: CashierDep) -> list[CategoryOut]:
        return [category_out(category) for category in await catalog.categories()]

    @router.post("/categories", status_code=201, summary="Create a category")
    async def create(principal: ManagerDep, body: CategoryIn) -> CategoryOut:
        return category_out(await catalog.add_category(
            body.name, ident=body.id, parent=body.parent, operator=principal.operator))

    @router.patch("/categories/{category_id}", summary="Rename or move a category")
    async def patch(principal: ManagerDep, category_id: CategoryPath,
                    body: CategoryPatch) -> CategoryOut:
        sent = body.model_fields_set
        name: str | Keep = body.name if body.name is not None else KEEP
        parent: str | Keep | None = body.parent if "parent" in sent else KEEP
        return category_out(await catalog.update_category(
            category_id, name=name, parent=parent, operator=principal.operator))

    @router.delete("/categories/{category_id}", summary="Delete an empty category")
    async def delete(principal: ManagerDep, category_id: CategoryPath) -> CategoryOut:
        category = await catalog.category(category_id)
        await catalog.delete_category(category_id, operator=principal.operator)
        return category_out(category)


def _csv_routes(router: APIRouter, context: _Context) -> None:
    catalog = context.catalog

    @router.get("/export.csv", response_class=CsvResponse,
                summary="The catalog as CSV (UTF-8 with BOM, ';', decimal comma)")
    async def export(_: CashierDep) -> CsvResponse:
        return CsvResponse(await catalog.export_csv(), headers={
            "Content-Disposition": 'attachment; filename="catalogue.csv"'})

    @router.post("/import", response_model=ImportOut, openapi_extra=CSV_BODY,
                 summary="Create or update products from CSV, all or nothing",
                 responses={413: PROBLEM_RESPONSE,
                            422: {"model": ImportProblem, **PROBLEM_RESPONSE}})
    async def import_csv(request: Request, principal: ManagerDep,
                         dry_run: bool = False) -> ImportOut | JSONResponse:
        from agent.services.catalog_csv import ImportRejected  # CSV loads on first use

        body = await read_limited(request, MAX_CSV_BYTES)
        try:
            result = await catalog.import_csv(body, dry_run=dry_run,
                                              operator=principal.operator)
        except ImportRejected as rejected:
            return import_problem(rejected)
        return ImportOut(created=result.created, updated=result.updated,
                         dry_run=result.dry_run)


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused (413 ``payload_too_large``) past ``limit`` bytes."""
    too_large = ProblemError(413, "payload_too_large", f"the body exceeds {limit} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def import_problem(rejected: ImportRejected) -> JSONResponse:
    """The 422 answer listing a refused file's errors."""
    errors = [CsvErrorOut(line=e.line, column=e.column, message=e.message)
              for e in rejected.errors]
    body = ImportProblem(title=HTTPStatus(422).phrase, status=422, code="invalid_csv",
                         detail=f"{len(errors)} error(s); nothing was imported", errors=errors)
    return JSONResponse(body.model_dump(), status_code=422, media_type=PROBLEM_JSON)
