"""All SQL lives in this room. Callers await typed functions on a `Store`."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import trio

from .chargers import Chargers
from .charging_profiles import ChargingProfiles
from .commands import Commands
from .configuration import Configuration
from .db import Database, StoreClosed
from .frames import FrameLog
from .id_tags import IdTags
from .local_lists import LocalLists
from .notifications import Notifications
from .orders import Orders
from .payments import Payments
from .reservations import Reservations
from .transactions import Sample, StopOutcome, Transactions
from .users import Users

__all__ = ["Store", "open_store", "Sample", "StopOutcome", "StoreClosed"]


class Store:
    def __init__(self, db: Database, frames: FrameLog):
        self.db = db
        self.frames = frames
        self.chargers = Chargers(db)
        self.transactions = Transactions(db)
        self.id_tags = IdTags(db)
        self.notifications = Notifications(db)
        self.commands = Commands(db)
        self.configuration = Configuration(db)
        self.local_lists = LocalLists(db)
        self.reservations = Reservations(db)
        self.charging_profiles = ChargingProfiles(db)
        self.users = Users(db)
        self.orders = Orders(db)
        self.payments = Payments(db)


@asynccontextmanager
async def open_store(path: str, *, flush_interval: float = 0.5, flush_size: int = 500,
                     retention_days: float = 30.0) -> AsyncIterator[Store]:
    """Open the database (migrating it), run the frame-log writer, close cleanly."""
    db = Database(path)
    await db.open()
    frames = FrameLog(db, flush_interval, flush_size, retention_days)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(frames.run)
            try:
                yield Store(db, frames)
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await db.close()
