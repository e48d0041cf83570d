"""Which tenants' records a caller may read and change: its own tenant and those below it.

The HTTP layer sets the caller's scope once per request (`acting_as`); every store job function that
reads or changes an operator's records declares a keyword-only `scope` parameter, and the method calls.py
makes of it fills that parameter from here, in the caller's task. No route passes a scope by hand, so no
route can forget it:

    def _list(conn, status: int | None, *, scope: Scope) -> list[dict]:
        where, params = scope.where("r.tenant_id")
        ...

Outside a request (the chargers' own message loops, background tasks, the command line) the scope is
EVERYTHING: the gateway itself serves every tenant's chargers.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import attrs

PLATFORM = 1  # the tenant that exists from the first start: a single-site install never sees another


@attrs.frozen
class Scope:
    tenant_id: int = PLATFORM  # the caller's own tenant
    tenants: frozenset[int] | None = None  # every tenant the caller may see; None: all of them

    def sees(self, tenant_id: int | None) -> bool:
        """Whether a record of `tenant_id` is the caller's to see (a record of no tenant is the platform's)."""
        return self.tenants is None or (PLATFORM if tenant_id is None else tenant_id) in self.tenants

    def where(self, column: str) -> tuple[str, tuple[int, ...]]:
        """An SQL condition keeping the rows whose `column` (a tenant id) the caller may see, and its
        parameters: ("TRUE", ()) when it sees every tenant."""
        if self.tenants is None:
            return "TRUE", ()
        ids = tuple(sorted(self.tenants))
        return f"coalesce({column}, {PLATFORM}) IN ({', '.join('?' * len(ids))})", ids


EVERYTHING = Scope()

_current: contextvars.ContextVar[Scope] = contextvars.ContextVar("tenant_scope", default=EVERYTHING)


def current() -> Scope:
    """The scope of the task running: the caller's during an HTTP request, EVERYTHING elsewhere."""
    return _current.get()


@contextlib.contextmanager
def acting_as(scope: Scope) -> Iterator[Scope]:
    """Run the block (and the tasks it starts) in `scope`."""
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def enter(scope: Scope) -> None:
    """Set the scope for the rest of the current task (a request's before-hook, whose task ends with it)."""
    _current.set(scope)
