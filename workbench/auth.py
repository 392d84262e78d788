"""Accounts, sessions, roles and CSRF protection of the workbench.

Passwords are kept only as argon2id hashes (argon2-cffi). A login puts the user's id in the signed session
cookie (Starlette's SessionMiddleware); every request reads the account again, so disabling it ends its
sessions. Roles are ordered viewer < engineer < reviewer: each may do what the one before it may.
Every POST carries the session's CSRF token, in the form field ``csrf_token`` or the header ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, Request
from sqlmodel import Session, select

from aoi.catalog.models import AppUser, UserRole
from aoi.settings import Settings
from workbench.db import catalog

MIN_PASSWORD_LENGTH = 8
USER_NAME_MAX = 64
ROLE_RANK = {UserRole.viewer: 0, UserRole.engineer: 1, UserRole.reviewer: 2}
# What a role may do, in the words a refusal uses.
ROLE_WORDS = {
    UserRole.viewer: "viewers read",
    UserRole.engineer: "engineers curate",
    UserRole.reviewer: "reviewers approve",
}
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified against when the name is unknown, so that a wrong name costs the same time as a wrong password.
_DUMMY_HASH: str | None = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > USER_NAME_MAX or not all(c.isalnum() or c in "._-@" for c in name):
        raise ValueError(f"a user name is 1 to {USER_NAME_MAX} letters, digits or . _ - @, not {name!r}")
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


def add_user(session: Session, name: str, role: UserRole | str, password: str) -> AppUser:
    """Create an account (committed). A duplicate name, an unknown role or a short password is a ValueError."""
    name = check_name(name)
    try:
        role = UserRole(role)
    except ValueError:
        raise ValueError(f"a role is one of {', '.join(r.value for r in UserRole)}, not {role!r}") from None
    check_password(password)
    if session.exec(select(AppUser).where(AppUser.name == name)).first() is not None:
        raise ValueError(f"user {name!r} exists already")
    user = AppUser(name=name, role=role.value, password_hash=hash_password(password))
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def find_user(session: Session, name: str) -> AppUser | None:
    return session.exec(select(AppUser).where(AppUser.name == name)).first()


def authenticate(session: Session, name: str, password: str) -> AppUser | None:
    """The enabled account with this name and password, else None (the same for every reason)."""
    user = find_user(session, name.strip())
    if user is None:
        verify_password(_dummy_hash(), password)
        return None
    if not verify_password(user.password_hash, password) or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):  # the library's parameters grew since: upgrade the hash
        user.password_hash = hash_password(password)
        session.add(user)
        session.commit()
    return user


class LoginThrottle:
    """Slows guessing: after ``free`` failures for a name (or from an address) within ``window_s``, each further
    attempt waits ``delay_s`` longer, up to ``max_delay_s``. Kept in memory: one workbench process."""

    def __init__(self, free: int = 5, window_s: float = 300.0, delay_s: float = 1.0, max_delay_s: float = 10.0):
        self.free, self.window_s, self.delay_s, self.max_delay_s = free, window_s, delay_s, max_delay_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def delay(self, *keys: str) -> float:
        now = time.monotonic()
        with self._lock:
            over = max((len(self._recent(k, now)) - self.free + 1 for k in keys), default=0)
        return min(self.max_delay_s, self.delay_s * over) if over > 0 else 0.0

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now)
                self._failures.setdefault(key, []).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def session_secret(settings: Settings) -> str:
    """The key that signs session cookies: the setting, else one random key per AOI_HOME kept owner-only."""
    if settings.workbench.secret_key is not None:
        return settings.workbench.secret_key.get_secret_value()
    path = settings.home / "workbench" / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    _write_private(path, key)
    return path.read_text().strip()  # another process may have written its key first: use the one kept


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only; an existing file is kept (O_EXCL)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")


# --- requests ------------------------------------------------------------------------------------------------


class LoginRequired(Exception):
    """Raised by ``current_user`` without a session; the app answers a redirect to /login or a 401."""

    def __init__(self, next_url: str, wants_page: bool):
        self.next_url = next_url
        self.wants_page = wants_page


class Forbidden(Exception):
    """Raised when the user's role or the CSRF token does not allow the request; the app answers 403."""

    def __init__(self, message: str):
        self.message = message


def wants_page(request: Request) -> bool:
    """A browser page request (GET, not asking for JSON), as opposed to an API call or a form POST."""
    accept = request.headers.get("accept", "")
    return request.method in SAFE_METHODS and "application/json" not in accept


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target, safe='')}"


def current_user(request: Request, db: Session = Depends(catalog)) -> AppUser:
    """The logged-in, enabled account; without one a page redirects to /login?next=..., anything else gets 401."""
    user_id = request.session.get("uid")
    user = db.get(AppUser, user_id) if isinstance(user_id, int) else None
    if user is None or user.disabled or request.session.get("pw") != _hash_tag(user.password_hash):
        request.session.pop("uid", None)
        raise LoginRequired(login_url(request), wants_page(request))
    request.state.user = user
    return user


def optional_user(request: Request, db: Session = Depends(catalog)) -> AppUser | None:
    try:
        return current_user(request, db)
    except LoginRequired:
        return None


def may(user: AppUser | None, role: UserRole | str) -> bool:
    """Whether ``user`` has ``role`` or a higher one (templates use it to show or hide controls)."""
    if user is None:
        return False
    try:
        return ROLE_RANK[UserRole(user.role)] >= ROLE_RANK[UserRole(role)]
    except ValueError:
        return False


def require(role: UserRole | str) -> Callable[..., AppUser]:
    """A dependency giving the logged-in user when their role is at least ``role``, else a 403 page."""
    needed = UserRole(role)

    def dependency(user: AppUser = Depends(current_user)) -> AppUser:
        if not may(user, needed):
            raise Forbidden(f"{ROLE_WORDS[needed]}: {user.name} is a {user.role}")
        return user

    return dependency


def log_in(request: Request, user: AppUser) -> None:
    """Start a fresh session for ``user`` (a new CSRF token too: one known before login is worthless)."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["pw"] = _hash_tag(user.password_hash)
    request.session[CSRF_FIELD] = secrets.token_urlsafe(32)


def log_out(request: Request) -> None:
    request.session.clear()


def _hash_tag(password_hash: str) -> str:
    # A short tag of the password hash: changing the password ends the sessions opened with the old one.
    return password_hash[-12:]


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request whose token does not match the session's. Applied to every route."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get(CSRF_FIELD)
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # Starlette keeps the parsed form: the route reads it again for free
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
        raise Forbidden("the form's CSRF token is missing or out of date: reload the page and try again")
