"""Table methods declared by how durable their call is; the store package's docstring says what each means.

    class Transactions(Table, committed=dict(get=_get, start=_start), batched=dict(touch=_touch)):
        samples = committed(_samples, after_appended=True)  # a declaration with more to say stands alone
        add_meter_values = appended("meter_values", _meter_value_rows)

- committed: an async method; returns once the batch that ran it is committed (reads too).
- batched: queued for the next batch; returns at once.
- appended: rows handed to the writer; returns at once.

A job function `fn(conn, ...)` becomes a method with fn's signature minus `conn` (and fn's docstring):
`help()` shows it, and wrong arguments fail in the caller, naming the method, before anything is queued.
A method with logic of its own stays written out and says its durability with `@durability(...)`.
A job function with a keyword-only `scope` parameter reads or changes a tenant's records: the method
passes it the caller's scope (scope.py), so no caller can forget or forge it.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from .appender import Appender, ThreadAppender
from .db import Database
from .health import StoreUnavailable
from .scope import current as current_scope

COMMITTED, BATCHED, APPENDED = "committed", "batched", "appended"


class Table:
    """A family of tables: the database (committed and batched calls) and the appender (appended rows)."""

    def __init__(self, db: Database, appender: Appender | None = None):
        self._db = db
        self._appender = appender or ThreadAppender(db)

    async def appended_committed(self) -> None:
        """Return once the rows appended before the call are committed (raises StoreUnavailable while the
        file fails the writer): what a reader of the frame log or meter values waits for first."""
        await self._appender.sync()

    def __init_subclass__(cls, committed: dict[str, Callable] | None = None,
                          batched: dict[str, Callable] | None = None, **kwargs: Any) -> None:
        """`committed` and `batched`: method name -> job function, for the methods that only forward."""
        super().__init_subclass__(**kwargs)
        for kind, jobs in ((_committed, committed), (_batched, batched)):
            for name, fn in (jobs or {}).items():
                if name in vars(cls):
                    raise TypeError(f"{cls.__qualname__}.{name} is declared twice")
                setattr(cls, name, kind(fn))
        for name, method in vars(cls).items():  # a generated method takes the name it is given here
            if getattr(method, "generated", False):
                method.__name__, method.__qualname__ = name, f"{cls.__qualname__}.{name}"


def durability(kind: str) -> Callable[[Callable], Callable]:
    """Mark a written-out method with its durability (COMMITTED, BATCHED or APPENDED)."""
    def mark(method: Callable) -> Callable:
        method.durability = kind  # type: ignore[attr-defined]
        return method
    return mark


def _arguments(fn: Callable, defaults: dict[str, Any],
               skip: int = 1) -> tuple[inspect.Signature, int, Callable[..., tuple]]:
    """The method's signature (fn's, `conn` (the first `skip` parameters) replaced by `self`, with `defaults`);
    how many positional arguments a call may give, and nothing else, to need no check (the hot path: -1 for
    none); and a function that checks a call's arguments and returns them as (args, kwargs) for fn."""
    signature = inspect.signature(fn)
    # A keyword-only `scope` is the caller's tenant scope (scope.py), filled by the method, never passed.
    params = [p for p in list(signature.parameters.values())[skip:] if not _is_scope(p)]
    unknown = set(defaults) - {p.name for p in params}
    if unknown:
        raise TypeError(f"{fn.__name__} has no parameter {', '.join(sorted(unknown))}")
    params = [p.replace(default=defaults[p.name]) if p.name in defaults else p for p in params]
    own = signature.replace(parameters=params)
    plain = len(params) if all(p.kind == p.POSITIONAL_OR_KEYWORD for p in params) else -1

    def bind(name: str, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        try:
            bound = own.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{name}(): {exc}") from None
        bound.apply_defaults()
        return bound.args, bound.kwargs

    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return own.replace(parameters=[self_param, *params]), plain, bind


def _is_scope(p: inspect.Parameter) -> bool:
    return p.name == "scope" and p.kind == p.KEYWORD_ONLY


def _takes_scope(fn: Callable) -> bool:
    """Whether fn reads or changes a tenant's records: the method then passes it the scope of the task that
    calls it (read there, before the job crosses to the database thread, where no request's scope is)."""
    return any(_is_scope(p) for p in inspect.signature(fn).parameters.values())


def _dress(method: Callable, fn: Callable, signature: inspect.Signature, kind: str, doc: str | None) -> Callable:
    if kind != COMMITTED:  # the caller gets nothing back
        signature = signature.replace(return_annotation="None")
    method.__signature__ = signature  # type: ignore[attr-defined]
    method.__doc__ = doc or fn.__doc__
    method.__module__ = fn.__module__
    method.__name__ = method.__qualname__ = fn.__name__  # until Table.__init_subclass__ names it
    method.durability = kind  # type: ignore[attr-defined]
    method.generated = True  # type: ignore[attr-defined]
    method.job = fn  # type: ignore[attr-defined]
    return method


def committed(fn: Callable, *, after_appended: bool = False, doc: str | None = None, **defaults: Any) -> Callable:
    """An async method that runs fn(conn, ...) in the database thread's next batch and returns its result once
    that batch is committed (reads too: they see every write queued before them).

    after_appended: first wait until the rows appended before the call (frames, meter values) are committed;
    for whatever reads them. `defaults` give parameters of fn a default in the method."""
    signature, plain, bind = _arguments(fn, defaults)

    if _takes_scope(fn):
        async def method(self: Table, *args: Any, **kwargs: Any) -> Any:
            args, kwargs = bind(method.__qualname__, args, kwargs)
            if after_appended:
                await self.appended_committed()
            return await self._db.run(fn, *args, scope=current_scope(), **kwargs)
    elif after_appended:
        async def method(self: Table, *args: Any, **kwargs: Any) -> Any:
            if kwargs or len(args) != plain:
                args, kwargs = bind(method.__qualname__, args, kwargs)
            await self.appended_committed()
            return await self._db.run(fn, *args, **kwargs)
    else:
        async def method(self: Table, *args: Any, **kwargs: Any) -> Any:
            if kwargs or len(args) != plain:
                args, kwargs = bind(method.__qualname__, args, kwargs)
            return await self._db.run(fn, *args, **kwargs)
    return _dress(method, fn, signature, COMMITTED, doc)


def batched(fn: Callable, *, doc: str | None = None, **defaults: Any) -> Callable:
    """A plain method that queues fn(conn, ...) for the database thread's next batch and returns at once: it is
    committed with that batch, before any later call is run; a failure is logged, not raised."""
    signature, plain, bind = _arguments(fn, defaults)
    scoped = _takes_scope(fn)

    def method(self: Table, *args: Any, **kwargs: Any) -> None:
        if kwargs or len(args) != plain:
            args, kwargs = bind(method.__qualname__, args, kwargs)
        if scoped:
            kwargs["scope"] = current_scope()
        self._db.submit(fn, *args, **kwargs)
    return _dress(method, fn, signature, BATCHED, doc)


_committed, _batched = committed, batched  # for Table.__init_subclass__, whose keywords have these names


def appended(kind: str, rows: Callable[..., list[tuple]]) -> Callable:
    """A plain method that hands rows(...) (rows of `kind`, see gateway/store/writer/rows.py) to the writer and
    returns at once: committed by the writer soon after, not before the call returns. Raises StoreUnavailable,
    keeping nothing, while the file fails the writer (the caller can still say it was not kept)."""
    signature, plain, bind = _arguments(rows, {}, skip=0)

    def method(self: Table, *args: Any, **kwargs: Any) -> None:  # on the hot path: every MeterValues
        if kwargs or len(args) != plain:
            args, kwargs = bind(method.__qualname__, args, kwargs)
        made = rows(*args, **kwargs)
        if made:
            if (fault := self._appender.fault) is not None:
                raise StoreUnavailable(fault)
            self._appender.submit(kind, made)
    return _dress(method, rows, signature, APPENDED, None)
