"""(Skeleton: the sales routes, filled in by the sales work.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from agent.http.context import AppServices


def install_sales_api(app: FastAPI, services: AppServices) -> None:
    """Add the sales routes."""
