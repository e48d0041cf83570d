"""Waiting for what a test means, not for a fixed time: a bounded poll of a condition.

A fixed sleep is too short on a loaded machine and too long everywhere else; `until` returns as soon as the
condition holds and fails the test (trio.TooSlowError) when it has not held within `timeout`.
"""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable

import trio

POLL = 0.01  # seconds between two looks


async def until(condition: Callable[[], Any | Awaitable[Any]], timeout: float = 5.0) -> Any:
    """The first truthy value of `condition()`, a plain or an async function, polled until `timeout` seconds."""
    with trio.fail_after(timeout):
        while True:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await trio.sleep(POLL)
