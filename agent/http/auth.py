"""Who is calling: FastAPI dependencies over ``agent.services.access``.

Use them as parameter types::

    async def route(who: CashierDep) -> …     # paired frontend + signed-in, unlocked cashier
    async def route(who: ManagerDep) -> …     # … whose role is manager or admin
    async def route(who: AdminDep) -> …       # … admin
    async def route(frontend: FrontendDep)    # a paired frontend, nobody signed in needed
    async def route(who: CashierDep, approval: Annotated[Approval, Depends(approval("void"))])

Failures: 401 ``unauthorized`` (no or unknown bearer token), 401 ``not_signed_in``, 423
``till_locked``, 403 ``role_required``, 403 ``approval_required``/``pin_wrong``.
The access service is found on ``request.app.state.access`` (set by ``create_app``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agent.errors import ProblemError
from agent.services.access import Access, Approval, Frontend, Principal, Role, User

_bearer = HTTPBearer(auto_error=False, description="The token a frontend got by pairing")


def access_of(request: Request) -> Access:
    """The box's access service."""
    access: Access = request.app.state.access
    return access


async def require_frontend(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Frontend:
    """The paired frontend making the request."""
    return await _frontend(access_of(request), credentials)


async def _frontend(access: Access, credentials: HTTPAuthorizationCredentials | None
                    ) -> Frontend:
    if credentials is None:
        raise ProblemError(401, "unauthorized", "pair this frontend and send its bearer token",
                           "Authorization")
    frontend = await access.frontend_of(credentials.credentials)
    if frontend is None:
        raise ProblemError(401, "unauthorized", "unknown or revoked token", "Authorization")
    return frontend


FrontendDep = Annotated[Frontend, Depends(require_frontend)]


async def current_principal(request: Request, frontend: FrontendDep) -> Principal:
    """The frontend and whoever is signed in on it (maybe nobody, maybe locked)."""
    return await access_of(request).principal(frontend)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def signed_in(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency: a cashier signed in on an unlocked till, with at least ``role``.

    One dependency rather than a chain of three (frontend, principal, check): each level
    costs FastAPI a resolution on every request, and these are on every selling request.
    """

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        access = access_of(request)
        principal = await access.principal(await _frontend(access, credentials))
        if principal.user is None:
            raise ProblemError(401, "not_signed_in", "sign a cashier in on this frontend")
        if principal.locked:
            raise ProblemError(423, "till_locked", "the till is locked; unlock it with a PIN")
        if not principal.user.at_least(role):
            raise ProblemError(403, "role_required", f"this needs the {role} role")
        return principal

    return check


CashierDep = Annotated[Principal, Depends(signed_in("cashier"))]
ManagerDep = Annotated[Principal, Depends(signed_in("manager"))]
AdminDep = Annotated[Principal, Depends(signed_in("admin"))]


def approval(action: str) -> Callable[..., Awaitable[Approval]]:
    """A dependency: a manager's approval of ``action`` (journal it with ``details()``)."""

    async def approve(request: Request, principal: CashierDep,
                      x_manager_approval: Annotated[str | None, Header(max_length=64)] = None,
                      ) -> Approval:
        return await access_of(request).approve(principal, action, x_manager_approval)

    return approve


def user_of(principal: Principal) -> User:
    """The signed-in user of a principal checked by ``signed_in``."""
    assert principal.user is not None
    return principal.user
