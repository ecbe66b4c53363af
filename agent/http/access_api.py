"""People and access over HTTP: pairing, cashier sign-in/out, lock, users, frontends, alarm ack.

Routes (see ``agent.services.access`` for the rules)::

    POST   /v1/pairing              {code, name} → {frontend_id, token}     (no token needed)
    GET    /v1/session              who is signed in on this frontend
    POST   /v1/session              {user_id, pin}  sign in          (JET 1010; failure 1011)
    DELETE /v1/session              sign out                         (JET 40)
    POST   /v1/session/lock         lock the till
    POST   /v1/session/unlock       {user_id, pin}  the same cashier or a manager
    GET    /v1/users                manager        POST /v1/users            admin
    PATCH  /v1/users/{id}           admin          PUT  /v1/users/{id}/pin   admin or oneself
    GET    /v1/frontends            admin          DELETE /v1/frontends/{id} admin
    POST   /v1/alarms/ack           admin: acknowledge the integrity alarms (JET 1121), which
                                    lets fiscal writes resume
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import BaseModel, Field

from agent.errors import ProblemError
from agent.http.auth import AdminDep, CashierDep, FrontendDep, ManagerDep, PrincipalDep, access_of
from agent.http.models import Body
from agent.observability import Health
from agent.services.access import Principal, Role, User
from fiscal.journal import Journal
from fiscal.requests import EventRequest

SIGN_IN, SIGN_IN_FAILED, SIGN_OUT, ALARM_ACK = 1010, 1011, 40, 1121
UserId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,31}$")]


class PairIn(Body):
    """The pairing code shown on the status page and a name for this frontend."""

    code: str = Field(min_length=1, max_length=16)
    name: str = Field(min_length=1, max_length=64)


class PairOut(BaseModel):
    """The frontend's id and its bearer token (shown once)."""

    frontend_id: str
    token: str


class PinIn(Body):
    """A user and their PIN."""

    user_id: str = Field(min_length=1, max_length=32)
    pin: str = Field(min_length=1, max_length=16)


class UserOut(BaseModel):
    """A user."""

    id: str
    name: str
    role: Role
    active: bool


class UserIn(Body):
    """A new user."""

    id: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=64)
    role: Role
    pin: str = Field(min_length=1, max_length=16)


class UserPatch(Body):
    """Changes to a user."""

    name: str | None = Field(default=None, min_length=1, max_length=64)
    role: Role | None = None
    active: bool | None = None


class NewPin(Body):
    """A new PIN."""

    pin: str = Field(min_length=1, max_length=16)


class FrontendOut(BaseModel):
    """A paired frontend."""

    id: str
    name: str
    paired_at: str


class SessionOut(BaseModel):
    """The calling frontend and who is signed in on it."""

    frontend: FrontendOut
    user: UserOut | None
    locked: bool


class AckOut(BaseModel):
    """The alarms acknowledged."""

    acknowledged: list[str]


def user_out(user: User) -> UserOut:
    """The JSON shape of a user."""
    return UserOut(id=user.id, name=user.name, role=user.role, active=user.active)


def session_out(principal: Principal) -> SessionOut:
    """The JSON shape of a session."""
    frontend = principal.frontend
    return SessionOut(frontend=FrontendOut(id=frontend.id, name=frontend.name,
                                           paired_at=frontend.paired_at),
                      user=user_out(principal.user) if principal.user else None,
                      locked=principal.locked)


async def journal_event(journal: Journal, code: int, operator: str,
                        details: dict[str, Any]) -> None:
    """Journal a technical event on behalf of ``operator``."""
    await journal.record_event(EventRequest(code=code, operator=operator, details=details))


def install_access_api(app: FastAPI, journal: Journal, health: Health) -> None:
    """Add the pairing, session, user, frontend and alarm routes."""
    router = APIRouter(prefix="/v1", tags=["access"])
    _session_routes(router, journal)
    _admin_routes(router, journal, health)
    app.include_router(router)


def _session_routes(router: APIRouter, journal: Journal) -> None:
    @router.post("/pairing", summary="Pair a frontend with the code on the status page")
    async def pair(request: Request, body: PairIn) -> PairOut:
        frontend, token = await access_of(request).pair(body.code, body.name)
        return PairOut(frontend_id=frontend.id, token=token)

    @router.get("/session", summary="Who is signed in on this frontend")
    async def session(principal: PrincipalDep) -> SessionOut:
        return session_out(principal)

    @router.post("/session", summary="Sign a cashier in with their PIN")
    async def sign_in(request: Request, frontend: FrontendDep, body: PinIn) -> SessionOut:
        try:
            principal = await access_of(request).sign_in(frontend, body.user_id, body.pin)
        except ProblemError as error:
            await journal_event(journal, SIGN_IN_FAILED, body.user_id[:32],
                                {"frontend": frontend.id, "code": error.code})
            raise
        await journal_event(journal, SIGN_IN, principal.operator, {"frontend": frontend.id})
        return session_out(principal)

    @router.delete("/session", summary="Sign the cashier out")
    async def sign_out(request: Request, frontend: FrontendDep) -> SessionOut:
        user = await access_of(request).sign_out(frontend)
        if user is not None:
            await journal_event(journal, SIGN_OUT, user.id, {"frontend": frontend.id})
        return session_out(Principal(frontend))

    @router.post("/session/lock", summary="Lock the till")
    async def lock(request: Request, principal: CashierDep) -> SessionOut:
        await access_of(request).lock(principal)
        return session_out(Principal(principal.frontend, principal.user, locked=True))

    @router.post("/session/unlock", summary="Unlock the till (same cashier or a manager)")
    async def unlock(request: Request, principal: PrincipalDep, body: PinIn) -> SessionOut:
        return session_out(await access_of(request).unlock(principal, body.user_id, body.pin))


def _admin_routes(router: APIRouter, journal: Journal, health: Health) -> None:
    @router.get("/users", summary="The users")
    async def users(request: Request, _: ManagerDep) -> list[UserOut]:
        return [user_out(user) for user in await access_of(request).users()]

    @router.post("/users", status_code=201, summary="Create a user")
    async def add_user(request: Request, _: AdminDep, body: UserIn) -> UserOut:
        return user_out(await access_of(request).add_user(body.id, body.name, body.role,
                                                          body.pin))

    @router.patch("/users/{user_id}", summary="Rename, change the role, (de)activate")
    async def patch_user(request: Request, _: AdminDep, user_id: UserId,
                         body: UserPatch) -> UserOut:
        return user_out(await access_of(request).update_user(
            user_id, name=body.name, role=body.role, active=body.active))

    @router.put("/users/{user_id}/pin", summary="Set a PIN (admin, or the user's own)")
    async def set_pin(request: Request, principal: CashierDep, user_id: UserId,
                      body: NewPin) -> UserOut:
        assert principal.user is not None
        if principal.user.id != user_id and not principal.user.at_least("admin"):
            raise ProblemError(403, "role_required", "only an admin sets another's PIN")
        access = access_of(request)
        await access.set_pin(user_id, body.pin)
        user = await access.user(user_id)
        assert user is not None
        return user_out(user)

    @router.get("/frontends", summary="The paired frontends")
    async def frontends(request: Request, _: AdminDep) -> list[FrontendOut]:
        return [FrontendOut(id=f.id, name=f.name, paired_at=f.paired_at)
                for f in await access_of(request).frontends()]

    @router.delete("/frontends/{frontend_id}", summary="Revoke a frontend's token")
    async def revoke(request: Request, _: AdminDep,
                     frontend_id: Annotated[str, Path(max_length=32)]) -> AckOut:
        await access_of(request).revoke(frontend_id)
        return AckOut(acknowledged=[frontend_id])

    @router.post("/alarms/ack", summary="Acknowledge the alarms; fiscal writes resume")
    async def acknowledge(principal: AdminDep) -> AckOut:
        codes = [alarm.code for alarm in health.alarms]
        if codes:
            await journal_event(journal, ALARM_ACK, principal.operator, {"alarms": codes})
        health.alarms.clear()
        return AckOut(acknowledged=codes)
