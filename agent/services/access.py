"""Who may use the till: paired frontends (bearer tokens), cashiers (PIN, role), approvals, lock.

- **Pairing**: the status page shows a 6-digit code; a frontend posts it with its name and gets a
  bearer token (only its SHA-256 is stored). The code changes after each pairing and after
  ``MAX_CODE_FAILURES`` wrong tries.
- **Users**: id, display name, role ``cashier`` < ``manager`` < ``admin``, PIN (4 to 8 digits,
  scrypt-hashed with a per-user salt). On first start one admin exists, ``admin``, with the
  PIN from ``[access] initial_admin_pin`` or a random one shown on the status page until changed.
- **Sign-in**: a cashier signs in on a paired frontend with their PIN; the session is bound to
  that frontend (one cashier per frontend). Sign-in, failed sign-in and sign-out are journaled
  (JET 1010, 1011, 40). After ``MAX_PIN_FAILURES`` wrong PINs a user is refused for
  ``PIN_LOCK_SECONDS``.
- **Lock**: a signed-in cashier locks the till; every cashier request on that frontend is then
  refused (423 ``till_locked``) until the same user, or a manager, unlocks it with a PIN.
- **Approval**: voids, returns and a drawer opened without a sale need a manager: either the
  signed-in user is one, or the request carries ``X-Manager-Approval: <user id>:<pin>``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from agent.boxdb import BoxDb
from agent.errors import ProblemError, conflict, invalid, not_found
from fiscal.journal import Clock, utc_now

Role = Literal["cashier", "manager", "admin"]
ROLES: tuple[Role, ...] = ("cashier", "manager", "admin")
MAX_CODE_FAILURES = 5
MAX_PIN_FAILURES = 5
PIN_LOCK_SECONDS = 60
PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
SCRYPT = {"n": 2**12, "r": 8, "p": 1}
INITIAL_ADMIN = "admin"

SCHEMA = """
CREATE TABLE IF NOT EXISTS frontends (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    paired_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('cashier', 'manager', 'admin')),
    pin_salt BLOB NOT NULL,
    pin_hash BLOB NOT NULL,
    initial_pin TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sign_ins (
    frontend_id TEXT PRIMARY KEY REFERENCES frontends(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    signed_in_at TEXT NOT NULL,
    locked INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class User:
    """A person who may sign in."""

    id: str
    name: str
    role: Role
    active: bool = True

    def at_least(self, role: Role) -> bool:
        """Whether this user's role is ``role`` or above."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class Frontend:
    """A paired point-of-sale frontend."""

    id: str
    name: str
    paired_at: str


@dataclass(frozen=True)
class Principal:
    """Who makes a request: the frontend, and the cashier signed in on it (if any)."""

    frontend: Frontend
    user: User | None = None
    locked: bool = False

    @property
    def operator(self) -> str:
        """What the journal records as the operator: the user's id (or the frontend's)."""
        return self.user.id if self.user else f"frontend:{self.frontend.id}"


@dataclass(frozen=True)
class Approval:
    """A manager's consent to an action (the approver is the signed-in user or another)."""

    action: str
    approver: User
    requested_by: str

    def details(self) -> dict[str, str]:
        """What to put in the journaled event's details."""
        return {"approved_by": self.approver.id, "requested_by": self.requested_by,
                "action": self.action}


def hash_pin(pin: str, salt: bytes) -> bytes:
    """The scrypt hash of a PIN."""
    return hashlib.scrypt(pin.encode(), salt=salt, **SCRYPT)


async def hash_pin_off_loop(pin: str, salt: bytes) -> bytes:
    """``hash_pin`` in a worker thread (scrypt releases the GIL).

    A PIN check takes 10–20 ms of scrypt, which the other tills must not wait for.
    """
    return await asyncio.to_thread(hash_pin, pin, salt)


def check_pin_format(pin: str, field: str = "pin") -> None:
    """Refuse a PIN that is not 4 to 8 digits."""
    if not PIN_PATTERN.match(pin):
        raise invalid("invalid_pin", "a PIN is 4 to 8 digits", field)


def token_hash(token: str) -> str:
    """What is stored of a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_code() -> str:
    """A fresh 6-digit pairing code."""
    return f"{secrets.randbelow(1_000_000):06d}"


class Access:
    """Frontends, users, sign-ins and approvals, stored in the box's working database."""

    def __init__(self, db: BoxDb, clock: Clock = utc_now) -> None:
        self.db = db
        self._clock = clock
        self.pairing_code = new_code()
        self._code_failures = 0
        # Every request asks who is calling: answered from memory. This process is the only
        # writer of these tables (one agent per data dir), and every change goes through the
        # methods below, which keep the two maps right.
        self._frontends: dict[str, Frontend] = {}
        self._principals: dict[str, Principal] = {}

    @classmethod
    async def open(cls, db: BoxDb, clock: Clock = utc_now,
                   initial_admin_pin: str | None = None) -> Access:
        """Create the tables and, on first start, the initial admin."""
        await db.create(SCHEMA)
        access = cls(db, clock)
        if await db.fetch_one("SELECT 1 FROM users LIMIT 1") is None:
            pin = initial_admin_pin or f"{secrets.randbelow(1_000_000):06d}"
            await access.add_user(INITIAL_ADMIN, "Administrateur", "admin", pin, initial=True)
        return access

    def _now(self) -> str:
        return self._clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- pairing ---------------------------------------------------------------------------------

    async def pair(self, code: str, name: str) -> tuple[Frontend, str]:
        """Pair a frontend with the current code; return it and its bearer token (shown once)."""
        if not hmac.compare_digest(code.encode(), self.pairing_code.encode()):
            self._code_failures += 1
            if self._code_failures >= MAX_CODE_FAILURES:
                self.pairing_code, self._code_failures = new_code(), 0
            raise ProblemError(403, "pairing_code_wrong", "wrong or expired pairing code", "code")
        token = secrets.token_urlsafe(32)
        frontend = Frontend(secrets.token_hex(8), name, self._now())
        await self.db.execute(
            "INSERT INTO frontends (id, name, token_hash, paired_at) VALUES (?, ?, ?, ?)",
            (frontend.id, name, token_hash(token), frontend.paired_at))
        self.pairing_code, self._code_failures = new_code(), 0
        return frontend, token

    async def frontend_of(self, token: str) -> Frontend | None:
        """The paired, not revoked frontend holding ``token``."""
        digest = token_hash(token)
        if (known := self._frontends.get(digest)) is not None:
            return known
        row = await self.db.fetch_one(
            "SELECT id, name, paired_at FROM frontends WHERE token_hash = ? "
            "AND revoked_at IS NULL", (digest,))
        frontend = None if row is None else Frontend(*row)
        if frontend is not None:
            self._frontends[digest] = frontend
        return frontend

    async def frontends(self) -> list[Frontend]:
        """Every paired frontend not revoked."""
        rows = await self.db.fetch_all("SELECT id, name, paired_at FROM frontends "
                                       "WHERE revoked_at IS NULL ORDER BY paired_at, id")
        return [Frontend(*row) for row in rows]

    async def revoke(self, frontend_id: str) -> None:
        """Revoke a frontend's token (its cashier is signed out)."""
        async with self.db.transaction() as connection:
            await connection.execute("DELETE FROM sign_ins WHERE frontend_id = ?",
                                     (frontend_id,))
            cursor = await connection.execute(
                "UPDATE frontends SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._now(), frontend_id))
            if cursor.rowcount == 0:
                raise not_found("frontend", frontend_id, "frontend_id")
        self._forget_frontend(frontend_id)

    def _forget_frontend(self, frontend_id: str) -> None:
        self._frontends = {digest: frontend for digest, frontend in self._frontends.items()
                           if frontend.id != frontend_id}
        self._principals.pop(frontend_id, None)

    # -- users -----------------------------------------------------------------------------------

    async def add_user(self, user_id: str, name: str, role: Role, pin: str, *,
                       initial: bool = False) -> User:
        """Create a user; ids are lower-case letters, digits, ``.``, ``_``, ``-``."""
        if not ID_PATTERN.match(user_id):
            raise invalid("invalid_user_id", "a user id is 1 to 32 of a-z 0-9 . _ -", "id")
        check_pin_format(pin)
        salt = secrets.token_bytes(16)
        inserted = await self.db.execute(
            "INSERT OR IGNORE INTO users (id, name, role, pin_salt, pin_hash, initial_pin, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (user_id, name, role, salt, await hash_pin_off_loop(pin, salt),
             pin if initial else None,
             self._now()))
        if inserted == 0:
            raise conflict("user_exists", f"user {user_id!r} already exists", "id")
        return User(user_id, name, role)

    async def user(self, user_id: str) -> User | None:
        """A user by id (active or not)."""
        row = await self.db.fetch_one("SELECT id, name, role, active FROM users WHERE id = ?",
                                      (user_id,))
        return None if row is None else User(row[0], row[1], row[2], bool(row[3]))

    async def users(self) -> list[User]:
        """Every user."""
        rows = await self.db.fetch_all("SELECT id, name, role, active FROM users ORDER BY id")
        return [User(row[0], row[1], row[2], bool(row[3])) for row in rows]

    async def initial_admin_pin(self) -> str | None:
        """The initial admin PIN while it has not been changed (shown on the status page)."""
        row = await self.db.fetch_one("SELECT initial_pin FROM users WHERE id = ?",
                                      (INITIAL_ADMIN,))
        return None if row is None else row[0]

    async def set_pin(self, user_id: str, pin: str) -> None:
        """Change a user's PIN (clears a shown initial PIN and the failure count)."""
        check_pin_format(pin)
        salt = secrets.token_bytes(16)
        changed = await self.db.execute(
            "UPDATE users SET pin_salt = ?, pin_hash = ?, initial_pin = NULL, failures = 0, "
            "locked_until = NULL WHERE id = ?",
            (salt, await hash_pin_off_loop(pin, salt), user_id))
        if changed == 0:
            raise not_found("user", user_id, "user_id")

    async def update_user(self, user_id: str, *, name: str | None = None,
                          role: Role | None = None, active: bool | None = None) -> User:
        """Rename, change the role, or (de)activate a user."""
        current = await self.user(user_id)
        if current is None:
            raise not_found("user", user_id, "user_id")
        updated = User(user_id, name if name is not None else current.name,
                       role if role is not None else current.role,
                       active if active is not None else current.active)
        await self.db.execute("UPDATE users SET name = ?, role = ?, active = ? WHERE id = ?",
                              (updated.name, updated.role, int(updated.active), user_id))
        if not updated.active:
            await self.db.execute("DELETE FROM sign_ins WHERE user_id = ?", (user_id,))
        self._principals.clear()
        return updated

    async def check_pin(self, user_id: str, pin: str, field: str = "pin") -> User:
        """The user if ``pin`` is theirs; count failures and refuse for a while after too many."""
        row = await self.db.fetch_one(
            "SELECT id, name, role, active, pin_salt, pin_hash, failures, locked_until "
            "FROM users WHERE id = ?", (user_id,))
        if row is None or not row[3]:
            raise ProblemError(403, "pin_wrong", "unknown user or wrong PIN", field)
        now = self._now()
        if row[7] is not None and row[7] > now:
            raise ProblemError(423, "pin_locked", f"too many wrong PINs; retry after {row[7]}",
                               field)
        if not hmac.compare_digest(await hash_pin_off_loop(pin, bytes(row[4])),
                                   bytes(row[5])):
            await self._count_failure(user_id)
            raise ProblemError(403, "pin_wrong", "unknown user or wrong PIN", field)
        if row[6]:
            await self.db.execute("UPDATE users SET failures = 0, locked_until = NULL "
                                  "WHERE id = ?", (user_id,))
        return User(row[0], row[1], row[2], True)

    async def _count_failure(self, user_id: str) -> None:
        # read now, not before the hash: other sign-ins may have failed meanwhile
        row = await self.db.fetch_one("SELECT failures FROM users WHERE id = ?", (user_id,))
        failures = (int(row[0]) if row else 0) + 1
        until = None
        if failures >= MAX_PIN_FAILURES:
            moment = self._clock().astimezone(dt.UTC) + dt.timedelta(seconds=PIN_LOCK_SECONDS)
            until, failures = moment.strftime("%Y-%m-%dT%H:%M:%SZ"), 0
        await self.db.execute("UPDATE users SET failures = ?, locked_until = ? WHERE id = ?",
                              (failures, until, user_id))

    # -- sign-in, lock ---------------------------------------------------------------------------

    async def sign_in(self, frontend: Frontend, user_id: str, pin: str) -> Principal:
        """Sign a cashier in on ``frontend`` (replacing whoever was signed in there)."""
        user = await self.check_pin(user_id, pin)
        await self.db.execute(
            "INSERT INTO sign_ins (frontend_id, user_id, signed_in_at, locked) "
            "VALUES (?, ?, ?, 0) ON CONFLICT (frontend_id) DO UPDATE SET "
            "user_id = excluded.user_id, signed_in_at = excluded.signed_in_at, locked = 0",
            (frontend.id, user.id, self._now()))
        self._principals[frontend.id] = Principal(frontend, user)
        return self._principals[frontend.id]

    async def sign_out(self, frontend: Frontend) -> User | None:
        """Sign out whoever is signed in on ``frontend``; return them."""
        principal = await self.principal(frontend)
        await self.db.execute("DELETE FROM sign_ins WHERE frontend_id = ?", (frontend.id,))
        self._principals[frontend.id] = Principal(frontend)
        return principal.user

    async def principal(self, frontend: Frontend) -> Principal:
        """The frontend and the cashier signed in on it."""
        if (known := self._principals.get(frontend.id)) is not None:
            return known
        self._principals[frontend.id] = await self._load_principal(frontend)
        return self._principals[frontend.id]

    async def _load_principal(self, frontend: Frontend) -> Principal:
        row = await self.db.fetch_one(
            "SELECT u.id, u.name, u.role, s.locked FROM sign_ins s JOIN users u "
            "ON u.id = s.user_id WHERE s.frontend_id = ? AND u.active = 1", (frontend.id,))
        if row is None:
            return Principal(frontend)
        return Principal(frontend, User(row[0], row[1], row[2]), bool(row[3]))

    async def lock(self, principal: Principal) -> None:
        """Lock the till of ``principal``'s frontend."""
        await self.db.execute("UPDATE sign_ins SET locked = 1 WHERE frontend_id = ?",
                              (principal.frontend.id,))
        self._principals.pop(principal.frontend.id, None)

    async def unlock(self, principal: Principal, user_id: str, pin: str) -> Principal:
        """Unlock with the PIN of the signed-in user or of a manager."""
        if principal.user is None:
            raise conflict("not_signed_in", "no cashier is signed in on this frontend")
        user = await self.check_pin(user_id, pin)
        if user.id != principal.user.id and not user.at_least("manager"):
            raise ProblemError(403, "role_required",
                               "only the signed-in cashier or a manager may unlock", "user_id")
        await self.db.execute("UPDATE sign_ins SET locked = 0 WHERE frontend_id = ?",
                              (principal.frontend.id,))
        self._principals.pop(principal.frontend.id, None)
        return Principal(principal.frontend, principal.user)

    # -- approvals -------------------------------------------------------------------------------

    async def approve(self, principal: Principal, action: str, header: str | None) -> Approval:
        """A manager's approval for ``action``: the signed-in user's role, or the header's PIN."""
        requested_by = principal.operator
        if principal.user is not None and principal.user.at_least("manager"):
            return Approval(action, principal.user, requested_by)
        if not header:
            raise ProblemError(403, "approval_required",
                               f"{action} needs a manager's approval (X-Manager-Approval)",
                               "X-Manager-Approval")
        user_id, _, pin = header.partition(":")
        approver = await self.check_pin(user_id, pin, "X-Manager-Approval")
        if not approver.at_least("manager"):
            raise ProblemError(403, "approval_required",
                               f"{approver.id} is not a manager", "X-Manager-Approval")
        return Approval(action, approver, requested_by)
