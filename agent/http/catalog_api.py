"""(Skeleton: the catalog routes, filled in by the catalog work.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from agent.http.context import AppServices


def install_catalog_api(app: FastAPI, services: AppServices) -> None:
    """Add the catalog routes."""
