"""Who may use the HTTP API: accounts with roles, login tokens (JWT), API tokens, HTTP Basic,
and protected mode while no account exists (loopback clients only, as Redis does it)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from typing import Any, Callable

import argon2
import attrs
import jwt
import trio

from .. import clock
from ..proxies import Peer
from ..config import AuthConfig
from ..store.scope import PLATFORM
from ..store.store import Store
from ..store.tenants import standing
from .errors import ApiError

ROLES = ("viewer", "operator", "admin")  # each may do what the ones before it may
TOKEN_PREFIX = "gw_"
BASIC_CACHE_SECONDS = 60.0
ACCOUNTS_TTL = 5.0  # an account added with `gateway user add` ends protected mode within this  # argon2 is slow on purpose; curl sends Basic on every request

_hasher = argon2.PasswordHasher()


@attrs.frozen
class Principal:
    username: str
    role: str
    via: str  # loopback, bearer, token, basic
    tenant_id: int = PLATFORM  # the account's tenant: what it sees is its own and those below it
    tenant_code: str = "platform"

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


async def hash_password(password: str, limiter: trio.CapacityLimiter | None = None) -> str:
    return await trio.to_thread.run_sync(_hasher.hash, password, limiter=limiter)


async def password_ok(password_hash: str, password: str, limiter: trio.CapacityLimiter | None = None) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    return await trio.to_thread.run_sync(verify, limiter=limiter)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    def __init__(self, store: Store, config: AuthConfig):
        self.store = store
        self.config = config
        self._secret = ""
        self._basic: dict[str, tuple[float, int, str]] = {}  # sha256 of credentials -> (until, user id, hash)
        self._failures: dict[str, list[float]] = {}  # address -> times of its recent failed logins
        # One node of a cluster tells the others of each failed login (gateway/cluster/node.py), and counts
        # theirs with `count_failure`: an address is throttled by the logins it failed on any node.
        self.tell_failure: Callable[[str], None] | None = None
        self._checking: dict[str, list[Any]] = {}  # address -> [lock of its password checks, requests using it]
        # argon2 takes 64 MiB and tens of milliseconds per check: a flood of made-up credentials
        # must queue here, not take every core and the memory with it.
        self._slots = trio.CapacityLimiter(2)
        self._accounts: tuple[float, int] = (-1e9, 0)  # (when counted, how many)

    async def accounts(self) -> int:
        """How many accounts exist, counted at most every few seconds: every request asks, and a
        database round trip per request would queue behind the meter values."""
        counted_at, count = self._accounts
        if time.monotonic() - counted_at > ACCOUNTS_TTL:
            count = await self.store.users.count()
            self._accounts = (time.monotonic(), count)
        return count

    async def start(self, admin_password: str) -> None:
        """Load the token-signing key (made once, kept in the database); create or update `admin`."""
        self._secret = await self.store.users.setting("jwt_secret", secrets.token_urlsafe(48))
        if admin_password:
            admin = await self.store.users.get("admin")
            if admin is None or not await password_ok(admin["password_hash"], admin_password):
                refusal = await self.store.users.put("admin", await hash_password(admin_password, self._slots),
                                                     "admin", clock.iso())
                if refusal is not None:
                    raise RuntimeError(f"the admin account cannot be created: {refusal}")
            self._accounts = (-1e9, 0)

    # ---- who is asking -------------------------------------------------------------------

    async def principal(self, headers: Any, client: Peer) -> Principal | None:
        """The caller, from its credentials or its address; None when it gave none."""
        header = headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return await self._bearer(credentials.strip())
        if scheme.lower() == "basic" and credentials:
            return await self._basic_auth(credentials.strip(), client.address or "?")
        if header:
            raise ApiError(401, "unauthorized", "use Authorization: Bearer <token> or HTTP Basic")
        if client.local:
            if await self.accounts() == 0:  # protected mode
                return Principal("local", "admin", "loopback")
            if self.config.trust_loopback:
                return Principal("local", "admin", "loopback")
        return None

    @staticmethod
    def admit(user: dict[str, Any], via: str) -> Principal:
        """The principal of an account whose credentials are right: 401 when its tenant (or one above it) is
        disabled or has expired."""
        why = standing(user["tenants"], clock.now())
        if why is not None:
            raise ApiError(401, "unauthorized", f"{why}: its users cannot sign in")
        return Principal(user["username"], user["role"], via, user["tenant_id"], user["tenant_code"])

    async def _bearer(self, token: str) -> Principal:
        if token.startswith(TOKEN_PREFIX):
            user = await self.store.users.token_user(token_hash(token), clock.iso())
            if user is None:
                raise ApiError(401, "unauthorized", "this API token is unknown or revoked")
            return self.admit(user, "token")
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "unauthorized", "the login token has expired: log in again") from None
        except jwt.InvalidTokenError:
            raise ApiError(401, "unauthorized", "the login token is not valid") from None
        user = await self.store.users.get(claims["sub"], claims.get("tenant", PLATFORM))
        if user is None:
            raise ApiError(401, "unauthorized", "the account of this token no longer exists")
        if not hmac.compare_digest(str(claims.get("stamp", "")), user["session_stamp"]):
            raise ApiError(401, "unauthorized", "this login token has ended (logged out, or the password changed): "
                           "log in again")
        return self.admit(user, "bearer")

    async def _basic_auth(self, credentials: str, address: str) -> Principal:
        try:
            username, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            self.refuse_if_throttled(address)
            self.failed(address)
            raise ApiError(401, "unauthorized", "malformed HTTP Basic credentials") from None
        key = hashlib.sha256(credentials.encode()).hexdigest()
        user = await self.password_login(address, username, password, key)
        if user is None:
            raise ApiError(401, "unauthorized", "wrong user name or password")
        return self.admit(user, "basic")

    async def _cached(self, key: str) -> dict[str, Any] | None:
        """The account of Basic credentials checked lately, if its password is still the one checked:
        a password changed or an account deleted (also by `gateway user`) ends the cached entry."""
        cached = self._basic.get(key)
        if cached is None or cached[0] <= time.monotonic():
            self._basic.pop(key, None)
            return None
        user = await self.store.users.by_id(cached[1])
        if user is None or user["password_hash"] != cached[2]:
            del self._basic[key]
            return None
        return user

    async def password_login(self, address: str, username: str, password: str,
                             cache_key: str | None = None) -> dict[str, Any] | None:
        """The account if the password is right, else None (a failed login of `address`); 429 once
        `address` has failed auth.login_attempts times within auth.lockout_seconds.

        One check per address at a time: the throttle is read after the checks before this one have
        counted, so a flood of wrong passwords from one address checks at most login_attempts of them,
        and it holds at most one argon2 slot, leaving the other to everyone else (the slots are
        handed out in order of arrival, so each address waits its turn)."""
        if cache_key is not None and (user := await self._cached(cache_key)) is not None:
            return user
        self.refuse_if_throttled(address)
        entry = self._checking.setdefault(address, [trio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                if cache_key is not None and (user := await self._cached(cache_key)) is not None:
                    return user  # checked while this request waited
                self.refuse_if_throttled(address)
                user = await self.check_password(username, password)
                if user is None:
                    self.failed(address)
                elif cache_key is not None:
                    self._basic[cache_key] = (time.monotonic() + BASIC_CACHE_SECONDS, user["id"],
                                              user["password_hash"])
                return user
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._checking[address]

    async def check_password(self, identifier: str, password: str) -> dict[str, Any] | None:
        """The account `identifier` names (name@tenantcode, or a bare name: the platform's), if the password is
        right."""
        user = await self.store.users.login(identifier)
        if user is None:
            await hash_password(password, self._slots)  # as long as for a known user: no probing by timing
            return None
        return user if await password_ok(user["password_hash"], password, self._slots) else None

    # ---- logging in ---------------------------------------------------------------------

    def throttled(self, client: str) -> float:
        """Seconds this client must wait before trying again (0: it may try now)."""
        now = time.monotonic()
        recent = [t for t in self._failures.get(client, []) if t > now - self.config.lockout_seconds]
        if not recent:
            self._failures.pop(client, None)
            return 0.0
        self._failures[client] = recent
        if len(recent) >= self.config.login_attempts:
            return recent[0] + self.config.lockout_seconds - now
        return 0.0

    def refuse_if_throttled(self, client: str) -> None:
        wait = self.throttled(client)
        if wait > 0:
            raise ApiError(429, "too_many_requests", f"too many failed logins from {client}: try again in "
                           f"{wait:.0f} s", headers={"Retry-After": str(int(wait) + 1)})

    def failed(self, client: str) -> None:
        self.count_failure(client)
        if self.tell_failure is not None:
            self.tell_failure(client)

    def count_failure(self, client: str) -> None:
        """Count a failed login of `client` (here, or on another node of the cluster)."""
        self._failures.setdefault(client, []).append(time.monotonic())

    def issue(self, user: dict[str, Any]) -> tuple[str, str]:
        """A login token and its expiry time."""
        expires = clock.now() + timedelta(hours=self.config.token_hours)
        token = jwt.encode({"sub": user["username"], "tenant": user["tenant_id"], "role": user["role"],
                            "stamp": user["session_stamp"],
                            "iat": int(time.time()), "exp": int(expires.timestamp())}, self._secret, algorithm="HS256")
        return token, clock.iso(expires)

    @staticmethod
    def new_api_token() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)
