"""(Skeleton: the cash routes, filled in by the cash work.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from agent.http.context import AppServices


def install_cash_api(app: FastAPI, services: AppServices) -> None:
    """Add the cash routes."""
