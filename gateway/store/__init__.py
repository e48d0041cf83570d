"""All SQL lives in this room. Callers await typed functions on a `Store` (store.py).

The names below are imported on first use: the writer process (writer.py) imports this package for
its standard-library modules only, and starts without Trio and the table modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .db import StoreClosed
    from .health import StorageHealth, StoreUnavailable
    from .store import Store, open_store
    from .transactions import MeterValue, StopOutcome

__all__ = ["Store", "open_store", "MeterValue", "StopOutcome", "StoreClosed", "StorageHealth", "StoreUnavailable"]
_HOMES = {"Store": "store", "open_store": "store", "MeterValue": "transactions", "StopOutcome": "transactions",
          "StoreClosed": "db", "StorageHealth": "health", "StoreUnavailable": "health"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
