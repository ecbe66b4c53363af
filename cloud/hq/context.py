"""What every HQ route depends on: a database connection from the pool, and the bearer token."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from cloud.hq.problems import ProblemError
from cloud.hq.queries import Connection

_bearer = HTTPBearer(auto_error=False, description="The HQ token (``--token``), if one is set")


def pool_of(request: Request) -> AsyncConnectionPool[Any]:
    """The application's connection pool."""
    pool: AsyncConnectionPool[Any] = request.app.state.pool
    return pool


async def connection(request: Request) -> AsyncIterator[Connection]:
    """A connection from the pool for the request."""
    async with pool_of(request).connection() as conn:
        yield conn


def authorised(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Refuse the request (401) unless it bears the token, when the HQ has one."""
    token: str | None = request.app.state.token
    if token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise ProblemError(401, "unauthorized", "a valid bearer token is required")


ConnectionDep = Annotated[Connection, Depends(connection)]
